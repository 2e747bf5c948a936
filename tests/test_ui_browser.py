"""End to end in a real browser: Debian's Chromium, driven by Selenium through chromedriver.

The app runs under `streamlit run` on a SQLite store; a judge signs in, answers one item with
the mouse and one with the keyboard, and the verdicts are then read back from the database.
Screenshots of the judge and admin pages go to test-artifacts/ui/ (look at them).
`make test` installs chromium and chromium-driver when they are missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import Session, select

from oversight import study
from oversight.study import Assignment, HumanVerdict
from oversight.tasks.arithmetic import render_response
from oversight.tasks.base import truth_access
from tests.helpers import ROOT

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("OVERSIGHT_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "ui"
INJECTION = "<script>alert('pwned')</script> [click](https://evil.example/) ![x](https://evil.example/x.png) <b>bold</b>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_server(tmp_path):
    """`streamlit run ui/app.py` on a fresh store; yields (base URL, engine)."""
    url = f"sqlite:///{tmp_path}/study.db"
    engine = study.connect(url)
    port = free_port()
    env = os.environ | {"OVERSIGHT_STORE_URL": url}
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "ui" / "app.py"),
            "--server.headless=true",
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
            "--client.toolbarMode=viewer",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "streamlit.log").read_text()
            assert time.monotonic() < deadline, "streamlit did not start"
            time.sleep(0.3)
        yield base, engine
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        engine.dispose()


@pytest.fixture
def browser(tmp_path):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver: "
            "`make test` installs them (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with an explicit driver path Selenium never downloads
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, xpath: str, timeout: float = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.XPATH, xpath)))


def sign_in(driver, base: str, token: str, screenshot: str | None = None) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base)
    box = wait_for(driver, "//input[@type='password']")
    if screenshot:
        driver.save_screenshot(str(ARTIFACTS / screenshot))
    box.send_keys(token)
    driver.find_element(By.XPATH, "//button[.//p[text()='Sign in']]").click()


def verdicts(engine) -> list[HumanVerdict]:
    with Session(engine) as s:
        return list(s.exec(select(HumanVerdict).order_by(HumanVerdict.id)))


def wait_verdicts(engine, n: int, timeout: float = 30) -> list[HumanVerdict]:
    end = time.monotonic() + timeout
    while len(vs := verdicts(engine)) < n:
        assert time.monotonic() < end, f"{len(vs)} verdicts in the store, expected {n}"
        time.sleep(0.2)
    return vs


def test_judge_answers_in_a_real_browser(app_server, browser, task):
    from selenium.webdriver.common.by import By

    base, engine = app_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = next(q for q in task.sample(200, seed=3, split="browser") if q.difficulty == 3)
    with truth_access():  # the test builds a right and a wrong answer, as the harness would
        steps = list(task.truth.get(p.id).steps)
    wrong = steps[:-1] + [steps[-1][:-1] + str(p.belief)]
    sid = study.ensure_study(engine, "browser-study", overlap=1)
    study.post_items(
        engine,
        sid,
        [
            study.NewItem(
                key="arith",
                payload={
                    "prompt": p.prompt,
                    "a": render_response(steps),
                    "b": render_response(wrong),
                },
            ),
            study.NewItem(
                key="inject", payload={"prompt": "Which is safer?", "a": INJECTION, "b": "ok"}
            ),
        ],
    )
    token = study.issue_token(engine, "alice")
    admin_token = study.issue_token(engine, "researcher", admin=True)

    sign_in(browser, base, token, screenshot="sign_in.png")
    wait_for(browser, "//h3[contains(., 'Compare two answers')]")
    wait_for(browser, f"//code[contains(., '{render_response(steps)}')]")
    time.sleep(0.5)  # let the fonts settle for the picture
    browser.save_screenshot(str(ARTIFACTS / "judge.png"))

    with Session(engine) as s:
        first = s.exec(select(Assignment)).one()
    browser.find_element(By.XPATH, "//button[.//p[text()='A is better']]").click()
    (v,) = wait_verdicts(engine, 1)
    # "A" on screen is the item's own a unless this judge saw the pair swapped
    assert v.assignment_id == first.id and v.choice == ("b" if first.swapped else "a")
    assert v.seconds > 0 and not v.timed_out

    # The next item carries script, a link and an image: all of it shows as text.
    wait_for(browser, "//code[contains(., 'alert(')]")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "<script>alert('pwned')</script>" in body and "[click](https://evil.example/)" in body
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href*='evil'], img[src*='evil']")
    assert not browser.find_elements(By.XPATH, "//b[text()='bold']")
    browser.save_screenshot(str(ARTIFACTS / "judge_injection.png"))
    # answered with the keyboard shortcut this time
    browser.find_element(By.TAG_NAME, "body").send_keys("b")
    vs = wait_verdicts(engine, 2)
    with Session(engine) as s:
        second = s.get(Assignment, vs[1].assignment_id)
    assert vs[1].choice == ("a" if second.swapped else "b")
    wait_for(browser, "//*[contains(., 'answered everything')]")
    # new work shows up by itself: training posts while judges wait
    study.post_items(
        engine,
        sid,
        [study.NewItem(key="late", payload={"prompt": "1+1=?", "a": "1+1=2.", "b": "3."})],
    )
    wait_for(browser, "//code[contains(., '1+1=?')]", timeout=30)

    sign_in(browser, base, admin_token)
    wait_for(browser, "//h1[contains(., 'Study admin')]")
    wait_for(browser, "//*[contains(., 'browser-study')]")
    time.sleep(1.0)  # the dataframe canvas draws after the page
    browser.save_screenshot(str(ARTIFACTS / "admin.png"))
    browser.find_element(By.XPATH, "//*[@role='tab'][contains(., 'Judges')]").click()
    time.sleep(1.0)
    browser.save_screenshot(str(ARTIFACTS / "admin_judges.png"))
    shots = ("sign_in.png", "judge.png", "judge_injection.png", "admin.png", "admin_judges.png")
    for name in shots:
        assert (ARTIFACTS / name).stat().st_size > 10_000


def test_debate_and_argued_items_in_a_real_browser(app_server, browser, task):
    from selenium.webdriver.common.by import By

    base, engine = app_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = next(q for q in task.sample(200, seed=3, split="browser") if q.difficulty == 3)
    with truth_access():
        steps = list(task.truth.get(p.id).steps)
    wrong = [steps[0][:-1] + str((int(steps[0][-1]) + 1) % 10), *steps[1:]]
    right, bad = render_response(steps), render_response(wrong)
    turns = [
        {
            "speaker": "a",
            "text": "Step 1 is wrong.",
            "step": 0,
            "quote": wrong[0],
            "verified": True,
        },
        {"speaker": "b", "text": INJECTION, "step": 1, "quote": "7*7=7", "verified": False},
        {
            "speaker": "judge",
            "side": "b",
            "step": 0,
            "quote": wrong[0],
            "right": False,
            "text": "t",
        },
    ]
    sid = study.ensure_study(engine, "browser-kinds", overlap=1)
    study.post_items(
        engine,
        sid,
        [
            study.NewItem(
                key="debate",
                kind="debate",
                payload={"prompt": p.prompt, "a": right, "b": bad, "turns": turns},
            ),
            study.NewItem(
                key="argued",
                kind="argued",
                payload={"prompt": p.prompt, "answer": bad, "argument": ["Step 1 is right."]},
            ),
        ],
    )
    sign_in(browser, base, study.issue_token(engine, "alice"))
    wait_for(browser, "//h3[contains(., 'Judge a debate')]")
    wait_for(browser, "//*[contains(., 'it does NOT appear in answer')]")
    wait_for(browser, "//*[contains(., 'Checked between rounds: step 1 of answer')]")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "<script>alert('pwned')</script>" in body
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href*='evil'], img[src*='evil']")
    time.sleep(0.5)
    browser.save_screenshot(str(ARTIFACTS / "judge_debate.png"))
    browser.find_element(By.XPATH, "//button[.//p[text()='A wins']]").click()
    (v,) = wait_verdicts(engine, 1)
    with Session(engine) as s:
        first = s.get(Assignment, v.assignment_id)
    assert v.choice == ("b" if first.swapped else "a")

    wait_for(browser, "//h3[contains(., 'Check an argued answer')]")
    time.sleep(0.5)
    browser.save_screenshot(str(ARTIFACTS / "judge_argued.png"))
    browser.find_element(By.TAG_NAME, "body").send_keys("n")  # the Reject key
    vs = wait_verdicts(engine, 2)
    assert vs[1].choice == "reject" and vs[1].prob_a == 0.0
    for name in ("judge_debate.png", "judge_argued.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
