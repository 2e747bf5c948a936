"""Item kinds, one small renderer each: how an item looks and what answer it collects.

A renderer draws one `ItemView` and returns the judge's `Response` once they decide, else None.
Skipping, timing and storing are the judge page's job, the same for every kind. A new kind
(critique-assisted comparison, debate transcript, amplification sub-question) is a new class
registered under its name; nothing else changes.

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
    """"A" or "B" as displayed"""
    confidence: float | None = None


class ItemRenderer(Protocol):
    kind: str

    def render(self, item: ItemView) -> Response | None: ...


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


def choose_between_two(
    item: ItemView, question: str = "Which answer is better?"
) -> Response | None:
    """The shared A/B decision: optional confidence, then one click (or the A / B key)."""
    aid = item.assignment_id
    st.markdown(f"**{question}**")
    confidence = st.pills(
        "How sure are you? (optional)",
        list(CONFIDENCE_LEVELS),
        key=f"confidence-{aid}",
    )
    left, right = st.columns(2)
    pick_a = left.button(
        "A is better", key=f"pick-a-{aid}", type="primary", width="stretch", shortcut="a"
    )
    pick_b = right.button(
        "B is better", key=f"pick-b-{aid}", type="primary", width="stretch", shortcut="b"
    )
    if not (pick_a or pick_b):
        return None
    return Response("A" if pick_a else "B", CONFIDENCE_LEVELS.get(confidence or ""))


@register
class Pairwise:
    """The prompt and two answers side by side; the judge picks the better one."""

    kind = "pairwise"

    def render(self, item: ItemView) -> Response | None:
        p = item.payload
        section("Question", p.get("prompt", ""), key=f"question-{item.assignment_id}")
        left, right = st.columns(2)
        with left:
            section("Answer A", p.get("a", ""), key=f"answer-a-{item.assignment_id}")
        with right:
            section("Answer B", p.get("b", ""), key=f"answer-b-{item.assignment_id}")
        return choose_between_two(item)


@register
class CritiqueAssisted:
    """Pairwise plus an AI critique of each answer (AI-assisted evaluation)."""

    kind = "critique_pairwise"

    def render(self, item: ItemView) -> Response | None:
        p = item.payload
        aid = item.assignment_id
        section("Question", p.get("prompt", ""), key=f"question-{aid}")
        for side, col in zip("ab", st.columns(2), strict=True):
            with col:
                section(f"Answer {side.upper()}", p.get(side, ""), key=f"answer-{side}-{aid}")
                section(
                    f"Critique of answer {side.upper()}",
                    p.get(f"{side}_critique", "(none)"),
                    key=f"critique-{side}-{aid}",
                )
        return choose_between_two(item)


def renderer_for(kind: str) -> ItemRenderer | None:
    return RENDERERS.get(kind)
