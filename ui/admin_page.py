"""The researcher's page: progress per study and run, judges' quality, agreement, tokens, export."""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy.engine import Engine

from oversight import study
from oversight.study import admin


def _table(rows: list[dict], empty: str, column_config: dict[str, Any] | None = None) -> None:
    """Rows as a table (Streamlit takes a list of dicts as it is), or `empty` when none."""
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", column_config=column_config)
    else:
        st.info(empty)


def _progress(engine: Engine) -> None:
    rows = admin.study_progress(engine)
    if not rows:
        st.info("No study yet. A training run with judge=human creates one when it posts items.")
        return
    for r in rows:
        with st.container(border=True):
            st.progress(
                min(1.0, r["progress"]),
                text=f"**{r['study']}**: {r['verdicts']} of {r['verdicts_needed']} verdicts",
            )
            cols = st.columns(5)
            cols[0].metric("Items", r["items"])
            cols[1].metric("Complete", r["complete_items"])
            cols[2].metric("Being judged now", r["in_progress"])
            cols[3].metric("Gold verdicts", r["gold_verdicts"])
            cols[4].metric("Judges per item", r["overlap"])
            if r["runs"]:
                st.caption("Training runs: " + r["runs"])
    with st.expander("All columns"):
        _table(
            rows,
            "",
            column_config={
                "progress": st.column_config.ProgressColumn("progress", format="percent")
            },
        )


def _summary(engine: Engine) -> None:
    stats = admin.judge_stats(engine)
    gold = sum(r["gold_answered"] for r in stats)
    right = sum((r["gold_accuracy"] or 0) * r["gold_answered"] for r in stats)
    cols = st.columns(4)
    cols[0].metric("Judges", len(stats))
    cols[1].metric("Verdicts", sum(r["answered"] + r["timeouts"] for r in stats))
    cols[2].metric("Skips", sum(r["skipped"] for r in stats))
    cols[3].metric("Gold accuracy", f"{right / gold:.0%}" if gold else "–")


def _judges(engine: Engine) -> None:
    st.caption(
        "Gold accuracy: share of attention-check items answered correctly. "
        "Median seconds: time on item, server-measured."
    )
    _table(
        admin.judge_stats(engine),
        "No judges yet: issue tokens on the Tokens tab.",
        column_config={
            "gold_accuracy": st.column_config.NumberColumn("gold_accuracy", format="%.2f"),
            "median_seconds": st.column_config.NumberColumn("median_seconds", format="%.1f"),
        },
    )


def _agreement(engine: Engine) -> None:
    rows = admin.agreement(engine)
    studies = [{k: v for k, v in r.items() if k != "kind"} for r in rows if r["kind"] == "study"]
    pairs = [{k: v for k, v in r.items() if k != "kind"} for r in rows if r["kind"] == "pair"]
    st.markdown("**Per study** (items judged by two or more judges)")
    _table(studies, "No item has two verdicts yet (set judge.overlap >= 2).")
    st.markdown("**Per pair of judges** (Cohen's kappa on shared items)")
    _table(pairs, "No two judges share enough items yet.")


def _tokens(engine: Engine, ident: study.Identity) -> None:
    left, right = st.columns(2)
    with left, st.form("issue", clear_on_submit=True):
        st.markdown("**Issue a token**")
        name = st.text_input("Judge name", placeholder="e.g. judge-017", key="issue-name")
        is_admin = st.checkbox("Administrator", key="issue-admin")
        go = st.form_submit_button("Issue token", type="primary", key="issue-submit")
    if go:
        try:
            st.session_state["issued"] = (name.strip(), study.issue_token(engine, name, is_admin))
        except ValueError as e:
            left.error(str(e))
    issued = st.session_state.get("issued")
    if issued:
        with left:
            st.success("Token issued. Copy it now: only its hash is stored.")
            st.text(f"Judge: {issued[0]}")
            st.code(issued[1], language=None)
            if st.button("Done, hide it", key="hide-token"):
                del st.session_state["issued"]
                st.rerun()
    with right, st.form("revoke"):
        st.markdown("**Revoke a judge's tokens**")
        active = [r["judge"] for r in study.accounts(engine) if r["active_tokens"]]
        who = st.selectbox(
            "Judge", active, index=None, placeholder="choose a judge", key="revoke-who"
        )
        go = st.form_submit_button("Revoke", disabled=not active, key="revoke-submit")
    if go and who:
        n = study.revoke(engine, who)
        st.session_state["revoked"] = f"Revoked {n} token(s) of {who}."
        st.rerun()
    if msg := st.session_state.pop("revoked", None):
        right.success(msg)
        if msg.endswith(f" of {ident.name}."):
            right.warning("That was your own token: you will be signed out.")
    _table(study.accounts(engine), "No judges yet.")


def _export(engine: Engine) -> None:
    rows = study.export_rows(engine)
    st.write(f"{len(rows)} verdicts, with items, judges and timing.")
    left, right = st.columns(2)
    left.download_button(
        "Download JSONL",
        study.to_jsonl(rows),
        file_name="verdicts.jsonl",
        mime="application/jsonl",
        key="export-jsonl",
    )
    right.download_button(
        "Download CSV",
        study.to_csv(rows),
        file_name="verdicts.csv",
        mime="text/csv",
        key="export-csv",
        help="Cells that a spreadsheet would run as a formula get a leading apostrophe; "
        "the JSONL export is verbatim.",
    )


def render(engine: Engine, ident: study.Identity) -> None:
    st.title("Study admin")
    st.caption("Store: " + engine.url.render_as_string(hide_password=True))
    _summary(engine)
    tabs = st.tabs(["Progress", "Judges", "Agreement", "Tokens", "Export"])
    with tabs[0]:
        _progress(engine)
    with tabs[1]:
        _judges(engine)
    with tabs[2]:
        _agreement(engine)
    with tabs[3]:
        _tokens(engine, ident)
    with tabs[4]:
        _export(engine)
    if st.button("Refresh", key="admin-refresh"):
        st.rerun()
