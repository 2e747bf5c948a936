"""Sign-in and routing: a judge's token opens the judge page, an admin's the admin page.

The token is kept in this browser session's server-side state and checked against the store
on every rerun, so revoking it signs the judge out at their next click.
"""

from __future__ import annotations

import os

import streamlit as st
from sqlalchemy.engine import Engine

from oversight import study
from ui import admin_page, judge_page

DEFAULT_URL = "sqlite:///study.db"
STYLE = """
<style>
  .block-container { padding-top: 3rem; max-width: 1240px; }
  .stAppDeployButton { display: none; }
  [class*="st-key-answer-"] pre, [class*="st-key-question-"] pre,
  [class*="st-key-critique-"] pre, [class*="st-key-turn-"] pre,
  [class*="st-key-argument-"] pre { background: #f4f6fa; }
  [class*="st-key-answer-"] code, [class*="st-key-question-"] code,
  [class*="st-key-critique-"] code, [class*="st-key-turn-"] code,
  [class*="st-key-argument-"] code { font-size: 1.05rem; line-height: 1.6; }
  [class*="st-key-pick-"] button, [class*="st-key-accept-"] button,
  [class*="st-key-reject-"] button { min-height: 3rem; font-size: 1.05rem; }
  button[kind="primary"], button[kind="primaryFormSubmit"] {
    background: #2563eb; border-color: #2563eb;
  }
  button[kind="primary"]:hover, button[kind="primaryFormSubmit"]:hover {
    background: #1d4ed8; border-color: #1d4ed8;
  }
</style>
"""


def store_url() -> str:
    return os.environ.get("OVERSIGHT_STORE_URL", DEFAULT_URL)


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Engine:
    return study.connect(url)


def current_identity(engine: Engine) -> study.Identity | None:
    token = st.session_state.get("token")
    if not token:
        return None
    ident = study.authenticate(engine, token)
    if ident is None:
        del st.session_state["token"]
        st.session_state["signed_out_reason"] = (
            "Your access token is no longer valid (it may have been revoked). "
            "Ask the study's researcher for a new one."
        )
    return ident


def sign_in(engine: Engine) -> None:
    _, mid, _ = st.columns([1, 1.4, 1])
    with mid:
        st.title("Judging")
        st.write("Sign in with the personal access token the researcher sent you.")
        reason = st.session_state.pop("signed_out_reason", None)
        if reason:
            st.warning(reason)
        with st.form("sign-in", border=True):
            token = st.text_input(
                "Access token", type="password", placeholder="ovs_…", key="token-input"
            )
            go = st.form_submit_button(
                "Sign in", type="primary", width="stretch", key="sign-in-submit"
            )
        if go:
            if study.authenticate(engine, token) is None:
                st.error(
                    "That token is not valid. Check for a missing character, or ask for a new one."
                )
            else:
                st.session_state["token"] = token.strip()
                st.rerun()


def main() -> None:
    st.set_page_config(page_title="Oversight judging", page_icon="⚖️", layout="wide")
    st.markdown(STYLE, unsafe_allow_html=True)  # our own static CSS; never model text
    url = store_url()
    engine = get_engine(url)
    ident = current_identity(engine)
    if ident is None:
        sign_in(engine)
        return
    with st.sidebar:
        st.markdown("**Signed in as**")
        st.text(ident.name)  # names are typed by the admin; shown literally all the same
        st.caption("Administrator" if ident.is_admin else "Judge")
        if st.button("Sign out", key="sign-out"):
            del st.session_state["token"]
            st.rerun()
    if ident.is_admin:
        admin_page.render(engine, ident)
    else:
        judge_page.render(engine, ident)
