"""The judge's page: one item at a time, progress, skip, and an optional per-item time limit.

Time on item is measured by the server, from when the item was first shown to when the verdict
is stored; the countdown here is only a display of the same clock.
"""

from __future__ import annotations

import time

import streamlit as st
from sqlalchemy.engine import Engine

from oversight import study
from ui.renderers import renderer_for


def _flash(message: str) -> None:
    st.session_state["flash"] = message


def _show_flash() -> None:
    msg = st.session_state.pop("flash", None)
    if msg:
        st.toast(msg)


def _header(engine: Engine, ident: study.Identity, current: bool, title: str) -> None:
    p = study.progress(engine, ident.judge_id)
    left_n = p.waiting + current  # the item on screen counts as still to do
    done = p.answered / (p.answered + left_n) if p.answered + left_n else 1.0
    left, mid, right = st.columns([3, 1, 1])
    left.subheader(title)
    mid.metric("Answered", p.answered)
    right.metric("To do", left_n)
    st.progress(done, text=f"{p.answered} answered · {p.skipped} skipped · {left_n} to do")


@st.fragment(run_every=1.0)
def _countdown(engine: Engine, ident: study.Identity, item: study.ItemView) -> None:
    assert item.deadline is not None and item.time_limit_s
    left = item.deadline - time.time()
    if left <= 0:
        try:
            study.submit(engine, ident.judge_id, item.assignment_id, None)
            _flash("Time is up: that item was recorded as undecided.")
        except study.AssignmentGone:
            pass
        st.rerun(scope="app")
    st.progress(min(1.0, left / item.time_limit_s), text=f"⏱ {left:.0f} s left for this item")


@st.fragment(run_every=5.0)
def _idle(engine: Engine, ident: study.Identity) -> None:
    """With an empty queue, look for new work every few seconds (training posts in batches)."""
    if study.progress(engine, ident.judge_id).waiting > 0:
        st.rerun(scope="app")
    st.write("New items may arrive while the study runs; this page checks by itself.")


def render(engine: Engine, ident: study.Identity) -> None:
    _show_flash()
    item = study.next_assignment(engine, ident.judge_id)
    renderer = None if item is None else renderer_for(item.kind)
    title = "Compare two answers" if renderer is None else renderer.title
    _header(engine, ident, current=item is not None, title=title)
    if item is None:
        st.success("You have answered everything that is waiting for you. Thank you!")
        _idle(engine, ident)
        return
    with st.expander("Instructions", expanded=False):
        st.text(item.instructions)
    if item.time_limit_s:
        _countdown(engine, ident, item)
    response = None
    if renderer is None:
        st.error(f"This app cannot show items of kind {item.kind!r}; please skip it.")
    else:
        response = renderer.render(item)
    skipped = st.button(
        "Skip this item", key=f"skip-{item.assignment_id}", type="tertiary", shortcut="s"
    )
    st.caption(f"Keys: {renderer.keys}, **S** to skip." if renderer else "Keys: **S** to skip.")
    try:
        if skipped:
            study.skip(engine, ident.judge_id, item.assignment_id)
            _flash("Skipped.")
            st.rerun()
        if response is not None:
            rec = study.submit(
                engine, ident.judge_id, item.assignment_id, response.choice, response.confidence
            )
            _flash(
                "Time was up: recorded as undecided."
                if rec.timed_out
                else f"Saved ({rec.seconds:.0f} s)."
            )
            st.rerun()
    except study.AssignmentGone as e:
        _flash(f"That item was no longer yours ({e}); here is the next one.")
        st.rerun()
