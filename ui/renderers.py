"""Item kinds, one small renderer each: how an item looks and what answer it collects.

A renderer draws one `ItemView` and returns the judge's `Response` once they decide, else None.
Skipping, timing and storing are the judge page's job, the same for every kind. The kinds: a
pair (`Pairwise`), a pair with an AI critique of each answer (`CritiqueAssisted`), a debate
transcript (`Debate`), one answer with its argument (`Consultancy`) and an answer to a
sub-question (`SubQuestion`); the payload of each: `oversight.study.ItemView.payload`. A new
kind is a new class registered under its name; nothing else changes.

Model outputs are untrusted text. They go through `plain()` only, which renders them as
literal text (a plain code block): no HTML, no markdown, so an output cannot run script, restyle the page, show an
image or fake a button. Widget labels and captions (which Streamlit renders as markdown) only
ever hold our own fixed strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import streamlit as st

from oversight.study import CONFIDENCE_LEVELS, ItemView


@dataclass(frozen=True)
class Response:
    choice: str
    """"A" or "B" as displayed; "accept" or "reject" for a one-answer kind"""
    confidence: float | None = None


class ItemRenderer(Protocol):
    kind: str
    title: str
    """the page's heading while an item of this kind is shown"""
    keys: str
    """the keyboard shortcuts of its decision, for the help line under the item"""

    def render(self, item: ItemView) -> Response | None: ...


CHOOSE_KEYS = "**A** or **B** to choose"
ACCEPT_KEYS = "**Y** to accept, **N** to reject"


RENDERERS: dict[str, ItemRenderer] = {}


def register(cls: type) -> type:
    RENDERERS[cls.kind] = cls()
    return cls


def plain(text: object) -> None:
    """Show untrusted text literally: wrapped, monospace, never interpreted.

    `st.code` without a language, because `st.text` dedents and strips its input, and
    whitespace can be part of what a judge is judging.
    """
    st.code(str(text), language=None, wrap_lines=True)


def section(title: str, body: object, key: str) -> None:
    with st.container(border=True, key=key):
        st.markdown(f"**{title}**")  # our own fixed title; the body goes through plain()
        plain(body)


def _confidence(aid: int) -> float | None:
    picked = st.pills(
        "How sure are you? (optional)",
        list(CONFIDENCE_LEVELS),
        key=f"confidence-{aid}",
    )
    return CONFIDENCE_LEVELS.get(picked or "")


def choose_between_two(
    item: ItemView, question: str = "Which answer is better?", verb: str = "is better"
) -> Response | None:
    """The shared A/B decision: optional confidence, then one click (or the A / B key)."""
    aid = item.assignment_id
    st.markdown(f"**{question}**")
    confidence = _confidence(aid)
    left, right = st.columns(2)
    pick_a = left.button(
        f"A {verb}", key=f"pick-a-{aid}", type="primary", width="stretch", shortcut="a"
    )
    pick_b = right.button(
        f"B {verb}", key=f"pick-b-{aid}", type="primary", width="stretch", shortcut="b"
    )
    if not (pick_a or pick_b):
        return None
    return Response("A" if pick_a else "B", confidence)


def accept_or_reject(item: ItemView, question: str) -> Response | None:
    """The shared one-answer decision: optional confidence, then one click (or the Y / N key)."""
    aid = item.assignment_id
    st.markdown(f"**{question}**")
    confidence = _confidence(aid)
    left, right = st.columns(2)
    accept = left.button(
        "Accept", key=f"accept-{aid}", type="primary", width="stretch", shortcut="y"
    )
    reject = right.button(
        "Reject", key=f"reject-{aid}", type="primary", width="stretch", shortcut="n"
    )
    if not (accept or reject):
        return None
    return Response("accept" if accept else "reject", confidence)


def two_answers(item: ItemView) -> None:
    """The question, then answers A and B side by side."""
    p, aid = item.payload, item.assignment_id
    section("Question", p.get("prompt", ""), key=f"question-{aid}")
    for side, col in zip("ab", st.columns(2), strict=True):
        with col:
            section(f"Answer {side.upper()}", p.get(side, ""), key=f"answer-{side}-{aid}")


@register
class Pairwise:
    """The prompt and two answers side by side; the judge picks the better one."""

    kind = "pairwise"
    title = "Compare two answers"
    keys = CHOOSE_KEYS

    def render(self, item: ItemView) -> Response | None:
        two_answers(item)
        return choose_between_two(item)


@register
class CritiqueAssisted:
    """Pairwise plus an AI critique of each answer (AI-assisted evaluation)."""

    kind = "critique_pairwise"
    title = "Compare two answers"
    keys = CHOOSE_KEYS

    def render(self, item: ItemView) -> Response | None:
        p = item.payload
        aid = item.assignment_id
        section("Question", p.get("prompt", ""), key=f"question-{aid}")
        for side, col in zip("ab", st.columns(2), strict=True):
            with col:
                section(f"Answer {side.upper()}", p.get(side, ""), key=f"answer-{side}-{aid}")
                section(
                    f"Critique of answer {side.upper()}",
                    p.get(f"{side}_critique") or "(none)",  # a pair may critique one side only
                    key=f"critique-{side}-{aid}",
                )
        return choose_between_two(item)


QUOTE_NOTES = {
    True: "Quote checked: it appears word for word in answer {other}.",
    False: "Quote checked: it does NOT appear in answer {other}.",
    None: "Quote from answer {other} (not checked).",
}
"""what the check of a turn's quote found, under the quote (checked by the software, for free)"""


def _probe(turn: dict, k: int, aid: int, whose: str | None = None) -> None:
    # The judge's own check between rounds (interactive mode), drawn apart from what was argued.
    whose = whose or "answer " + {"a": "A", "b": "B"}.get(turn.get("side"), "?")
    step = turn.get("step")
    which = f"step {step + 1}" if isinstance(step, int) and not isinstance(step, bool) else "a step"
    found = "right" if turn.get("right") is True else "wrong"
    with st.container(border=True, key=f"probe-{k}-{aid}"):
        st.markdown(f"**Checked between rounds: {which} of {whose} is {found}**")
        plain(turn.get("quote", ""))


def _turn(turn: dict, k: int, aid: int) -> None:
    # Only our own strings reach markdown: the side letters come from these tables, the step is
    # formatted only when it is an int, and the turn's text and quote go through plain().
    if turn.get("speaker") == "judge":
        return _probe(turn, k, aid)
    side = {"a": "A", "b": "B"}.get(turn.get("speaker"), "?")
    other = {"A": "B", "B": "A"}.get(side, "?")
    with st.container(border=True, key=f"turn-{k}-{aid}"):
        st.markdown(f"**Turn {k + 1}, for answer {side}**")
        plain(turn.get("text", ""))
        step = turn.get("step")
        if isinstance(step, int) and not isinstance(step, bool) and step >= -1:
            which = "the last step" if step == -1 else f"step {step + 1}"
            st.caption(f"Says {which} of answer {other} is wrong.")
        if turn.get("quote") is not None:
            verified = turn.get("verified")
            note = QUOTE_NOTES[verified if isinstance(verified, bool) else None]
            st.caption(note.format(other=other))
            plain(turn["quote"])


@register
class Debate:
    """Two answers, then the debate between their sides turn by turn; the judge names the winner."""

    kind = "debate"
    title = "Judge a debate"
    keys = CHOOSE_KEYS

    def render(self, item: ItemView) -> Response | None:
        two_answers(item)
        for k, turn in enumerate(item.payload.get("turns") or []):
            _turn(turn, k, item.assignment_id)
        return choose_between_two(item, "Which side wins the debate?", verb="wins")


@register
class Consultancy:
    """One answer and the argument for it; the judge accepts or rejects the answer."""

    kind = "argued"
    title = "Check an argued answer"
    keys = ACCEPT_KEYS

    def render(self, item: ItemView) -> Response | None:
        p, aid = item.payload, item.assignment_id
        section("Question", p.get("prompt", ""), key=f"question-{aid}")
        section("Answer", p.get("answer", ""), key=f"answer-{aid}")
        for k, text in enumerate(p.get("argument") or []):
            if isinstance(text, dict):  # the judge's probe between rounds
                _probe(text, k, aid, whose="the answer")
                continue
            section(f"Argument, part {k + 1}", text, key=f"argument-{k}-{aid}")
        return accept_or_reject(item, "Is this answer correct?")


@register
class SubQuestion:
    """An answer to a sub-question of a larger problem; the judge accepts or rejects it."""

    kind = "subquestion"
    title = "Check an answer to a sub-question"
    keys = ACCEPT_KEYS

    def render(self, item: ItemView) -> Response | None:
        p, aid = item.payload, item.assignment_id
        section("Sub-question", p.get("prompt", ""), key=f"question-{aid}")
        section("Answer", p.get("answer", ""), key=f"answer-{aid}")
        return accept_or_reject(item, "Is this answer to the sub-question correct?")


def renderer_for(kind: str) -> ItemRenderer | None:
    return RENDERERS.get(kind)
