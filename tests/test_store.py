"""Storage on SQLite and on the running PostgreSQL, through the same code."""

import random
import subprocess
import sys

import pytest
from sqlalchemy import inspect

from oversight import study
from oversight.errors import ConfigError
from oversight.judges import (
    Argued,
    Comparison,
    Failure,
    JudgmentRecord,
    Oracle,
    SubAnswer,
    Transcript,
    Turn,
    item_from_payload,
)
from oversight.store import Store
from oversight.tasks import PublicProblem
from tests.helpers import correct_response, subprocess_env


def exercise(store: Store, task) -> None:
    run_id = store.start_run("r", "rlhf", "oracle", 3, {"ppo": {"steps": 2}}, "/tmp/x")
    store.log_metrics(run_id, 1, {"kl": 0.5, "score": float("nan"), "eos_rate": 1})
    oracle = Oracle()
    oracle.attach(task)
    p = task.sample(2, seed=0)
    items = [Comparison(p[0], correct_response(task, p[0]), "1+1=2."), Comparison(p[1], "x", "y")]
    outcomes = oracle.compare(items, random.Random(0))
    records = [
        JudgmentRecord(items[0], outcomes[0], "labels"),
        JudgmentRecord(items[1], Failure("timeout", "human-7"), "labels"),
    ]
    store.log_judgments(run_id, 0, records)
    store.finish_run(run_id, "finished", {"final": {"gold_accuracy": {"all": 0.75}}})

    (run,) = store.runs()
    assert (
        run.status,
        run.seed,
        run.config["ppo"]["steps"],
        run.summary["final"]["gold_accuracy"]["all"],
    ) == ("finished", 3, 2, 0.75)
    metrics = {m.name: m.value for m in store.metrics(run_id)}
    assert metrics == {"kl": 0.5, "score": None, "eos_rate": 1.0}
    j = sorted(store.judgments(run_id), key=lambda r: r.id)
    assert (
        j[0].prefers_a is True and j[0].prob_a == 1.0 and j[0].failure is None and j[0].checks >= 1
    )
    assert j[1].failure == "timeout" and j[1].prefers_a is None and j[1].judge == "human-7"
    round_trips_every_kind(store, task, run_id)


def round_trips_every_kind(store: Store, task, run_id: int) -> None:
    oracle = Oracle()
    oracle.attach(task)
    p = task.sample(1, seed=1)[0]
    good = correct_response(task, p)
    items = [
        Comparison(p, good, "1+1=2.", critique_a="No error found.", critique_b="Step 1 is wrong."),
        Argued(p, good, ("Step 1 is right.", "So is the rest.")),
        Transcript(p, good, "x", (Turn(0, "Yours is no answer.", 0, "x", True), Turn(1, "Is."))),
        SubAnswer(p, "2+2=4. Answer: 4."),
    ]
    outcomes = oracle.decide(items, random.Random(0))
    store.log_judgments(
        run_id, 5, [JudgmentRecord(i, o, "kinds") for i, o in zip(items, outcomes, strict=True)]
    )
    rows = sorted((r for r in store.judgments(run_id) if r.step == 5), key=lambda r: r.id)
    assert [r.kind for r in rows] == ["pair", "argued", "debate", "subquestion"]
    for item, o, row in zip(items, outcomes, rows, strict=True):
        back = PublicProblem(row.problem_id, row.prompt, row.difficulty, row.belief)
        assert item_from_payload(row.kind, back, row.payload) == item
        assert (row.prefers_a, row.prob_a) == (o.prefers_a, o.prob_a)
    # the old columns keep their meaning; a one-answer item's answer is its response_a
    answers = [(r.response_a, r.response_b) for r in rows]
    assert answers == [(good, "1+1=2."), (good, ""), (good, "x"), ("2+2=4. Answer: 4.", "")]


def test_sqlite_store(tmp_path, task):
    store = Store(f"sqlite:///{tmp_path}/store.db")
    exercise(store, task)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.postgres
def test_postgres_store(pg_url, task):
    store = Store(pg_url)
    exercise(store, task)
    store.engine.dispose()


def test_judgments_written_before_kinds_read_as_pairs(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/store.db")
    run_id = store.start_run("r", "rlhf", "oracle", 0, {}, "/tmp/x")
    with store.engine.begin() as c:  # a row as the code before kinds wrote it
        c.exec_driver_sql(
            "INSERT INTO judgment (run_id, step, phase, problem_id, difficulty, prompt,"
            " response_a, response_b, judge, checks, seconds)"
            " VALUES (?, 0, 'labels', 'p', 1, 'q', 'a', 'b', 'j', 0, 0)",
            (run_id,),
        )
    (row,) = store.judgments(run_id)
    assert row.kind == "pair" and (row.response_a, row.response_b) == ("a", "b")


def test_unreachable_database_is_one_clear_error():
    with pytest.raises(ConfigError, match="cannot open store"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigError, match="cannot open store"):
        Store("sqlite:////nonexistent-dir/x/store.db")


def test_the_study_brings_its_own_tables_to_a_shared_store(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    engine = study.connect(url)
    ours = {t.__tablename__ for t in study.TABLES}
    assert set(inspect(engine).get_table_names()) == {"run"} | ours
    store = Store(url)  # a training run on the same store adds its own, and keeps the study's
    assert set(inspect(store.engine).get_table_names()) == {"run", "metric", "judgment"} | ours
    engine.dispose()
    store.engine.dispose()


def test_the_store_and_simulated_judges_do_not_load_the_study():
    code = (
        "import sys\n"
        "import oversight.judges, oversight.store\n"
        "from oversight.judges import SimulatedRater\n"
        "SimulatedRater(name='rater', competence=2)\n"
        "assert not any(m.startswith('oversight.study') for m in sys.modules), sorted(sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
