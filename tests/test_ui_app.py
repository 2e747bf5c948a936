"""The Streamlit app, driven by streamlit.testing.v1.AppTest against a real SQLite store."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from oversight import study
from oversight.study import Assignment, HumanVerdict, Item, admin
from tests.helpers import ROOT, judge_id

APP = str(ROOT / "ui" / "app.py")
INJECTION = (
    "<script>alert('pwned')</script> <b>bold</b> <div style='position:fixed;inset:0'>x</div>\n"
    "[click here](https://evil.example/) ![img](https://evil.example/i.png) "
    "<button>Submit verdict</button> **not bold** <img src=x onerror=alert(1)>"
)


@pytest.fixture
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/study.db"
    monkeypatch.setenv("OVERSIGHT_STORE_URL", url)
    engine = study.connect(url)
    yield engine
    engine.dispose()


def post(engine, n: int = 3, name: str = "s", gold: int = 0, **settings) -> list[int]:
    sid = study.ensure_study(engine, name, **settings)
    items = [
        study.NewItem(
            key=f"k{i}",
            payload={"prompt": f"{i}+2=? I think it is 9.\n", "a": f"{i}+2={i + 2}.", "b": "9."},
        )
        for i in range(n)
    ]
    items += [
        study.NewItem(
            key=f"g{i}",
            payload={"prompt": f"{i}*1=?\n", "a": f"{i}*1={i}.", "b": f"{i}*1=7."},
            gold_answer="a",
        )
        for i in range(gold)
    ]
    return study.post_items(engine, sid, items)


def signed_in(token: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key="token-input").input(token)
    at.button(key="sign-in-submit").click().run()
    assert not at.exception, at.exception
    return at


def current(engine, name: str) -> tuple[Assignment, Item]:
    """The item on the judge's screen, read from the store."""
    with Session(engine) as s:
        a = s.exec(
            select(Assignment)
            .join(study.JudgeAccount, study.JudgeAccount.id == Assignment.judge_id)
            .where(study.JudgeAccount.name == name, Assignment.status == "pending")
        ).one()
        return a, s.get(Item, a.item_id)


def texts(at: AppTest) -> list[str]:
    """Untrusted text on the page: it is all shown in plain code blocks."""
    return [c.value for c in at.code]


def click_own(at: AppTest, a: Assignment, own: str) -> AppTest:
    """Click the button for the item's own answer `own` ("a"/"b"), wherever it is displayed."""
    shown = "a" if (own == "a") != a.swapped else "b"
    return at.button(key=f"pick-{shown}-{a.id}").click().run()


def test_sign_in_with_good_and_bad_tokens(store):
    post(store)
    token = study.issue_token(store, "alice")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert at.title[0].value == "Judging"
    at.text_input(key="token-input").input("ovs_wrong").run()
    at.button(key="sign-in-submit").click().run()
    assert at.error and "not valid" in at.error[0].value
    assert not [b for b in at.button if b.key == "sign-out"]
    assert "token" not in at.session_state

    at.text_input(key="token-input").input(token)
    at.button(key="sign-in-submit").click().run()
    assert not at.exception
    assert at.subheader[0].value == "Compare two answers"
    assert "alice" in [t.value for t in at.sidebar.text]
    assert not [t for t in at.title if t.value == "Study admin"]  # judges get no admin page

    at.button(key="sign-out").click().run()
    assert at.title[0].value == "Judging"


def test_answering_stores_the_verdict_with_time_and_confidence(store):
    post(store, n=2)
    at = signed_in(study.issue_token(store, "alice"))
    a, item = current(store, "alice")
    shown = item.payload["b" if a.swapped else "a"]
    assert shown in texts(at) and item.payload["prompt"].removesuffix("\n") in texts(at)
    at.pills(key=f"confidence-{a.id}").set_value("Fairly sure").run()
    click_own(at, a, "b")
    assert not at.exception
    with Session(store) as s:
        (v,) = s.exec(select(HumanVerdict)).all()
    assert v.assignment_id == a.id and v.choice == "b" and v.confidence == 0.8
    assert v.prob_a == pytest.approx(0.2) and v.seconds >= 0 and not v.timed_out
    assert [m.value for m in at.metric if m.label == "Answered"] == ["1"]
    assert any("Saved" in t.value for t in at.toast)
    a2, _ = current(store, "alice")
    assert a2.id != a.id and any(b.key == f"pick-a-{a2.id}" for b in at.button)


def test_skipping_moves_on_and_frees_the_item(store):
    (first, second) = post(store, n=2)
    at = signed_in(study.issue_token(store, "alice"))
    a, _ = current(store, "alice")
    at.button(key=f"skip-{a.id}").click().run()
    with Session(store) as s:
        assert s.get(Assignment, a.id).status == "skipped"
    a2, _ = current(store, "alice")
    assert a2.item_id != a.item_id
    click_own(at, a2, "a")
    assert any("answered everything" in s.value for s in at.success)
    assert [m.value for m in at.metric if m.label == "Answered"] == ["1"]
    # the skipped item went back to the pool, for someone else
    with Session(store) as s:
        view = study.next_assignment(store, judge_id(store, "bob"))
        assert s.get(Assignment, view.assignment_id).item_id == a.item_id


def test_gold_items_look_like_any_other_and_are_scored(store):
    post(store, n=4, gold=2, gold_rate=1.0)
    at = signed_in(study.issue_token(store, "alice"))
    results = []
    for _ in range(6):
        a, item = current(store, "alice")
        assert not any("gold" in t.lower() for t in texts(at) + [m.value for m in at.markdown])
        # right on the first gold item, wrong on the second
        own = "a" if not item.is_gold else ("a" if not results else "b")
        if item.is_gold:
            results.append(own == item.gold_answer)
        at = click_own(at, a, own)
        assert not at.exception
    assert results == [True, False]
    (row,) = admin.judge_stats(store)
    assert row["gold_answered"] == 2 and row["gold_accuracy"] == 0.5 and row["answered"] == 6


def test_admin_pages_show_progress_quality_agreement_and_export(store):
    post(store, n=4, gold=1, overlap=2, gold_rate=0.2)
    for name in ("alice", "bob"):
        jid = judge_id(store, name)
        while (v := study.next_assignment(store, jid)) is not None:
            study.submit(store, jid, v.assignment_id, "A")
    at = signed_in(study.issue_token(store, "researcher", admin=True))
    assert at.title[0].value == "Study admin"
    assert [t.label for t in at.tabs] == ["Progress", "Judges", "Agreement", "Tokens", "Export"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Judges"] == "2" and metrics["Items"] == "4" and metrics["Complete"] == "4"
    judges = at.tabs[1].dataframe[0].value
    assert list(judges["judge"]) == ["alice", "bob"]
    assert set(judges.columns) >= {"gold_accuracy", "median_seconds", "answered", "skipped"}
    agreement = at.tabs[2].dataframe
    study_row = agreement[0].value.iloc[0]
    assert study_row["items_with_2plus"] == 4
    assert 0.0 <= study_row["percent_agreement"] <= 1.0
    assert list(agreement[1].value[["judge_a", "judge_b"]].iloc[0]) == ["alice", "bob"]
    export = at.tabs[4]
    assert [b.label for b in export.get("download_button")] == ["Download JSONL", "Download CSV"]
    n = len(study.export_rows(store))
    assert n >= 8 and any(f"{n} verdicts" in m.value for m in export.markdown)


def test_admin_issues_and_revokes_tokens(store):
    post(store)
    judge_at = signed_in(study.issue_token(store, "alice"))
    assert judge_at.subheader[0].value == "Compare two answers"
    admin = signed_in(study.issue_token(store, "researcher", admin=True))

    admin.text_input(key="issue-name").input("carol")
    admin.button(key="issue-submit").click().run()
    (token,) = [c.value for c in admin.code]
    assert token.startswith("ovs_") and study.authenticate(store, token).name == "carol"
    admin.button(key="hide-token").click().run()
    assert not admin.code

    admin.selectbox(key="revoke-who").select("alice")
    admin.button(key="revoke-submit").click().run()
    assert any("Revoked 1 token(s) of alice" in s.value for s in admin.success)
    # alice's next click finds herself signed out
    judge_at.run()
    assert judge_at.title[0].value == "Judging"
    assert judge_at.warning and "no longer valid" in judge_at.warning[0].value
    assert "alice" not in admin.selectbox(key="revoke-who").options


def test_model_output_is_shown_literally(store):
    sid = study.ensure_study(store, "s")
    study.post_items(
        store,
        sid,
        [study.NewItem(key="x", payload={"prompt": INJECTION, "a": INJECTION, "b": "plain"})],
    )
    study.post_items(
        store,
        sid,
        [
            study.NewItem(
                key="y",
                kind="critique_pairwise",
                payload={
                    "prompt": "p",
                    "a": "1",
                    "b": "2",
                    "a_critique": INJECTION,
                    "b_critique": "ok",
                },
            )
        ],
    )
    at = signed_in(study.issue_token(store, "alice"))
    for _ in range(2):
        a, item = current(store, "alice")
        # every untrusted string arrives as a plain-text element, character for character
        assert texts(at).count(INJECTION) == (2 if item.kind == "pairwise" else 1)
        # ... and none reaches an element that renders markdown or HTML
        rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
        assert not any("evil" in r or "<script" in r or "pwned" in r for r in rendered)
        assert not at.get("html") and not at.get("image")
        at = click_own(at, a, "a")
    assert any("answered everything" in s.value for s in at.success)


def test_time_limit_shows_a_countdown_and_late_verdicts_are_timeouts(store):
    post(store, n=2, time_limit_s=30)
    at = signed_in(study.issue_token(store, "alice"))
    a, _ = current(store, "alice")
    assert any("s left for this item" in p.proto.text for p in at.get("progress"))
    with Session(store) as s:  # the judge went for coffee
        row = s.get(Assignment, a.id)
        row.assigned_at -= 120
        s.add(row)
        s.commit()
    click_own(at, a, "a")
    with Session(store) as s:
        (v,) = s.exec(select(HumanVerdict)).all()
    assert v.timed_out and v.choice is None and v.seconds >= 120
    # the countdown noticed first and recorded the timeout; the late click changed nothing
    assert any(t.value.startswith("Time") for t in at.toast)


def test_unknown_item_kind_is_reported_and_skippable(store):
    sid = study.ensure_study(store, "s")
    study.post_items(store, sid, [study.NewItem(key="z", kind="hologram", payload={"x": 1})])
    at = signed_in(study.issue_token(store, "alice"))
    assert "hologram" in at.error[0].value
    a, _ = current(store, "alice")
    at.button(key=f"skip-{a.id}").click().run()
    assert any("answered everything" in s.value for s in at.success)


def test_command_line_issues_revokes_and_exports(store, tmp_path, capsys):
    from ui.cli import main as cli

    url = str(store.url)
    cli(["token", "alice", "--url", url])
    token = capsys.readouterr().out.strip()
    ident = study.authenticate(store, token)
    assert ident is not None and ident.name == "alice" and not ident.is_admin
    cli(["--url", url, "token", "root", "--admin"])
    assert study.authenticate(store, capsys.readouterr().out.strip()).is_admin
    post(store, n=1)
    v = study.next_assignment(store, ident.judge_id)
    study.submit(store, ident.judge_id, v.assignment_id, "A")
    cli(["export", str(tmp_path / "v.jsonl"), "--url", url])
    cli(["export", str(tmp_path / "v.csv"), "--url", url])
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 1
    assert (tmp_path / "v.csv").read_text().startswith("verdict_id,")
    cli(["revoke", "alice", "--url", url])
    assert "revoked 1 token(s) of alice" in capsys.readouterr().out
    assert study.authenticate(store, token) is None


def test_each_kind_has_a_renderer_that_shows_model_text_literally(store):
    sid = study.ensure_study(store, "s")
    turns = [
        {"speaker": "a", "text": INJECTION, "step": 1, "quote": "2+2", "verified": True},
        {"speaker": "b", "text": "no", "step": None, "quote": INJECTION, "verified": False},
        {"speaker": "a", "text": "last", "step": None, "quote": None, "verified": None},
        {"speaker": "judge", "side": "a", "step": 0, "quote": "1+1", "right": True, "text": "t"},
    ]
    kinds = {
        "critique_pairwise": {"prompt": "p", "a": INJECTION, "b": "2", "a_critique": None},
        "debate": {"prompt": "p", "a": "1+1", "b": INJECTION + " 2+2", "turns": turns},
        "argued": {"prompt": "p", "answer": INJECTION, "argument": [INJECTION, "two"]},
        "subquestion": {"prompt": INJECTION, "answer": "3"},
    }
    study.post_items(
        store, sid, [study.NewItem(key=k, kind=k, payload=p) for k, p in kinds.items()]
    )
    titles = {
        "critique_pairwise": "Compare two answers",
        "debate": "Judge a debate",
        "argued": "Check an argued answer",
        "subquestion": "Check an answer to a sub-question",
    }
    at = signed_in(study.issue_token(store, "alice"))
    for _ in kinds:
        a, item = current(store, "alice")
        assert at.subheader[0].value == titles[item.kind]
        assert texts(at).count(INJECTION) == {"argued": 2, "debate": 2}.get(item.kind, 1)
        rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
        assert not any("evil" in r or "<script" in r or "pwned" in r for r in rendered)
        assert not at.get("html") and not at.get("image")
        if item.kind == "critique_pairwise":
            assert "(none)" in texts(at)
        if item.kind == "debate":
            speaks = "B" if a.swapped else "A"  # the first turn is a's side's, as displayed
            other = "A" if a.swapped else "B"
            assert f"**Turn 1, for answer {speaks}**" in rendered
            notes = [c.value for c in at.caption]
            assert f"Says step 2 of answer {other} is wrong." in notes
            assert f"Quote checked: it appears word for word in answer {other}." in notes
            assert f"Quote checked: it does NOT appear in answer {speaks}." in notes
            # the judge's probe names the answer it tested as displayed: a's is shown as `speaks`
            assert f"**Checked between rounds: step 1 of answer {speaks} is right**" in rendered
        if item.kind in ("argued", "subquestion"):
            assert not [b for b in at.button if b.key == f"pick-a-{a.id}"]
            at.pills(key=f"confidence-{a.id}").set_value("Fairly sure").run()
            button = "reject" if item.kind == "argued" else "accept"
            at = at.button(key=f"{button}-{a.id}").click().run()
        else:
            at = click_own(at, a, "b")
        assert not at.exception, at.exception
    assert any("answered everything" in s.value for s in at.success)
    with Session(store) as s:
        got = {
            i.kind: (v.choice, v.prob_a) for v, i in s.exec(select(HumanVerdict, Item).join(Item))
        }
    assert got == {
        "critique_pairwise": ("b", 0.0),
        "debate": ("b", 0.0),
        "argued": ("reject", pytest.approx(0.2)),
        "subquestion": ("accept", 0.8),
    }
