"""The HTML report in a real headless Chromium (Debian's chromium and chromium-driver).

The browser is required: without it these tests fail, since the page's rendering and
safety are what they prove. scripts/setup.sh installs both packages with the dev extra.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from runner.analysis.frames import load_frames
from runner.analysis.leaderboard import LeaderboardRow, Standings
from runner.analysis.metrics import METRICS, analyse
from runner.analysis.report import render_html
from runner.cli import main
from tests.runner.analysis.debates import HOSTILE_MOTION, HOSTILE_REASON, play_debate
from tests.runner.analysis.transcripts import Agent, Conversation, write_conversation

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without the background-networking flags Chromium stalls on a machine with no network.
FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync "
    "--window-size=1280,1000"
).split()
# Installed before any page script runs: records what the page's policy had to block.
WATCH = (
    "window.__violations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
)

HOSTILE_SCENARIO = "<script>window.__pwned='scenario'</script>"
HOSTILE_SPEAKER = "<img src=x onerror=\"window.__pwned='speaker'\">"
HOSTILE_MODEL = "javascript:window.__pwned='model'//"
HOSTILE_CONTENT = (
    "<script>window.__pwned='content'</script> "
    "<a href=\"javascript:window.__pwned='link'\">click me</a> "
    "<img src=x onerror=\"window.__pwned='img'\"> <svg onload=\"window.__pwned='svg'\">"
)


def _conversations() -> list[Conversation]:
    alpha, beta, gamma = (Agent(n, f"{n}:1b", persona=f"You are {n}.") for n in "ABC")
    lines = ["Cities win. Every time.", "Villages are calm.", "Nonsense, cities are better!"]
    made = []
    for opponent, repeats in ((beta, 3), (gamma, 3)):
        for i in range(repeats):
            made.append(
                Conversation(
                    agents=[alpha, opponent],
                    turns=[("A", lines[i]), (opponent.name, lines[(i + 1) % 3]), ("A", "I lost.")],
                    scenario="debate",
                    winner=opponent.name,
                    loser="A",
                    reason="end_rule",
                    rule="concession",
                    decided_at=2,
                    repeat_index=i,
                )
            )
    for i in range(2):
        made.append(
            Conversation(
                agents=[beta, gamma],
                turns=[("B", lines[i]), ("C", lines[i + 1])],
                scenario="chat",
                repeat_index=i,
            )
        )
    evil = Agent(HOSTILE_SPEAKER, HOSTILE_MODEL, persona=HOSTILE_CONTENT)
    made.append(
        Conversation(
            agents=[evil, beta],
            turns=[(HOSTILE_SPEAKER, HOSTILE_CONTENT), ("B", "Villages are calm.")],
            scenario=HOSTILE_SCENARIO,
        )
    )
    return made


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("page") / "transcripts"
    for conversation in _conversations():
        write_conversation(folder, conversation)
    html = folder.parent / "report.html"
    assert main(["report", str(folder), "-o", str(html)]) == 0
    return html


def _driver(profile: Path) -> webdriver.Chrome:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "the report's browser tests need Debian's chromium and chromium-driver "
        "(scripts/setup.sh with the dev extra installs them)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = _driver(tmp_path_factory.mktemp("profile"))
    try:
        yield driver
    finally:
        driver.quit()


def open_report(driver: webdriver.Chrome, page: Path) -> None:
    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1"
    )


def problems(driver: webdriver.Chrome) -> list[Any]:
    """Console errors and policy violations since the last look."""
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    return errors + list(driver.execute_script("return window.__violations"))


def rows(driver: webdriver.Chrome) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#conv-list .conv-row")


def viewer_ids(driver: webdriver.Chrome) -> list[str]:
    articles = driver.find_elements(By.CSS_SELECTOR, "#viewer article.conversation")
    return [a.get_attribute("data-id") or "" for a in articles]


def test_the_summary_table_and_the_charts_render(browser: webdriver.Chrome, page: Path) -> None:
    open_report(browser, page)
    body = browser.find_elements(By.CSS_SELECTOR, "#summary-table tbody tr")
    assert [r.get_attribute("data-metric") for r in body] == [m.name for m in METRICS]
    heads = browser.find_elements(By.CSS_SELECTOR, "#summary-table thead th")
    assert [h.text.split("\n")[0] for h in heads[1:]] == ["A:1b", "B:1b", "C:1b", HOSTILE_MODEL]
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart img")
    assert len(charts) >= len(METRICS)
    drawn = browser.execute_script(
        "return [...document.querySelectorAll('figure.chart img')]"
        ".every(img => img.complete && img.naturalWidth > 100)"
    )
    assert drawn
    assert browser.find_elements(By.CSS_SELECTOR, "#scenario-tables table")
    assert problems(browser) == []


def test_picking_a_conversation_shows_it_as_a_chat(browser: webdriver.Chrome, page: Path) -> None:
    open_report(browser, page)
    Select(browser.find_element(By.ID, "filter-scenario")).select_by_value("debate")
    listed = rows(browser)
    assert len(listed) == 6
    second = listed[1].get_attribute("data-id")
    listed[1].click()
    assert viewer_ids(browser) == [second]
    turns = browser.find_elements(By.CSS_SELECTOR, "#viewer .turn")
    assert len(turns) == 3
    deciding = browser.find_elements(By.CSS_SELECTOR, "#viewer .turn.deciding")
    assert len(deciding) == 1 and "I lost." in deciding[0].text
    assert "deciding turn: concession" in deciding[0].text
    assert "words" in turns[1].find_element(By.CSS_SELECTOR, ".stats").text
    assert "wins" in browser.find_element(By.CSS_SELECTOR, "#viewer .outcome").text
    assert problems(browser) == []


def test_filters_narrow_the_list_by_model_and_scenario(
    browser: webdriver.Chrome, page: Path
) -> None:
    open_report(browser, page)
    assert len(rows(browser)) == 9
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("C:1b")
    listed = rows(browser)
    assert len(listed) == 5  # three debates against A, two chats with B
    assert all("C:1b" in r.text for r in listed)
    Select(browser.find_element(By.ID, "filter-scenario")).select_by_value("chat")
    assert len(rows(browser)) == 2
    assert browser.find_element(By.ID, "list-count").text == "1–2 of 2 conversations"
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("A:1b")
    assert rows(browser) == []
    assert problems(browser) == []


def test_the_same_scenario_side_by_side_across_models(
    browser: webdriver.Chrome, page: Path
) -> None:
    open_report(browser, page)
    Select(browser.find_element(By.ID, "filter-scenario")).select_by_value("debate")
    first = rows(browser)[0]
    clicked = first.get_attribute("data-id")
    first.click()
    browser.find_element(By.ID, "side-by-side").click()
    columns = browser.find_elements(By.CSS_SELECTOR, "#viewer article.conversation")
    assert len(columns) == 2
    assert columns[0].get_attribute("data-id") == clicked
    lineups = [c.find_element(By.CSS_SELECTOR, ".agents").text for c in columns]
    assert sorted("B:1b" in lineup for lineup in lineups) == [False, True]
    assert sorted("C:1b" in lineup for lineup in lineups) == [False, True]
    assert all("run 1 of" in c.text for c in columns)  # the same run number of each
    browser.find_element(By.ID, "side-by-side").click()
    assert viewer_ids(browser) == [clicked]
    assert problems(browser) == []


def _apart_page(folder: Path, other_repeats: int) -> Path:
    """Six conversations of x:1b, short turns, against ``other_repeats`` of y:1b, long ones."""
    for model, repeats, length in (("x:1b", 6, 2), ("y:1b", other_repeats, 20)):
        pair = [Agent("A", model), Agent("B", model)]
        for i in range(repeats):
            said = " ".join(["word"] * (length + i))
            turns = [("A", said), ("B", said)]
            write_conversation(folder / "t", Conversation(pair, turns, repeat_index=i))
    html = folder / "report.html"
    assert main(["report", str(folder / "t"), "-o", str(html)]) == 0
    return html


def test_only_intervals_on_both_sides_can_be_apart(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    marked = "#summary-table td.apart"
    open_report(browser, _apart_page(tmp_path / "both", other_repeats=6))
    assert browser.find_elements(By.CSS_SELECTOR, marked)  # words per turn, at least
    open_report(browser, _apart_page(tmp_path / "one", other_repeats=1))
    heads = browser.find_elements(By.CSS_SELECTOR, "#summary-table thead th")
    assert [h.text.split("\n")[0] for h in heads[1:]] == ["x:1b", "y:1b"]
    assert browser.find_elements(By.CSS_SELECTOR, marked) == []  # y:1b has no interval
    assert problems(browser) == []


def test_a_tournament_game_is_listed_by_its_entrants(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    entrants = [Agent("stubborn", "x:1b"), Agent("gracious", "x:1b")]
    game = Conversation(entrants, [("stubborn", "No."), ("gracious", "I lost.")], game_id="g1")
    plain = Conversation([Agent("A", "x:1b"), Agent("B", "x:1b")], [("A", "Hi."), ("B", "Hi.")])
    for conversation in (game, plain):
        write_conversation(tmp_path / "t", conversation)
    html = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "t"), "-o", str(html)]) == 0
    open_report(browser, html)
    lines = sorted(r.text.split("\n")[1] for r in rows(browser))
    assert lines == ["stubborn vs gracious", "x:1b vs x:1b"]
    assert problems(browser) == []


def test_hostile_transcript_text_is_shown_as_text_and_runs_nothing(
    browser: webdriver.Chrome, page: Path
) -> None:
    open_report(browser, page)
    Select(browser.find_element(By.ID, "filter-scenario")).select_by_value(HOSTILE_SCENARIO)
    Select(browser.find_element(By.ID, "filter-model")).select_by_value(HOSTILE_MODEL)
    rows(browser)[0].click()
    for persona in browser.find_elements(By.CSS_SELECTOR, "#viewer details"):
        persona.click()  # open the persona too: it carries the payload as well
    viewer = browser.find_element(By.ID, "viewer")
    text = viewer.get_attribute("textContent") or ""
    for payload in (HOSTILE_SCENARIO, HOSTILE_SPEAKER, HOSTILE_MODEL, HOSTILE_CONTENT):
        assert payload in text
    assert browser.execute_script("return window.__pwned") is None
    injected = browser.execute_script(
        'return document.querySelectorAll(\'main script, main a[href^="javascript"], '
        "#viewer img, #viewer svg, #viewer a, [onerror], [onload]').length"
    )
    assert injected == 0
    summary = browser.find_element(By.ID, "summary-table").get_attribute("textContent") or ""
    assert HOSTILE_MODEL in summary
    assert problems(browser) == []


def _snapshot(driver: webdriver.Chrome) -> dict[str, Any]:
    return {
        "summary": driver.find_element(By.ID, "summary-table").text,
        "scenarios": driver.find_element(By.ID, "scenario-tables").text,
        "list": driver.find_element(By.ID, "conv-list").text,
        "viewer": driver.find_element(By.ID, "viewer").text,
        "charts": driver.execute_script(
            "return [...document.querySelectorAll('figure.chart img')].map(i => i.naturalWidth)"
        ),
        "requests": driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        ),
    }


def test_without_network_the_report_renders_the_same(
    browser: webdriver.Chrome, page: Path, tmp_path: Path
) -> None:
    open_report(browser, page)
    online = _snapshot(browser)
    assert online["requests"] == []  # the page asks the network for nothing
    offline = _driver(tmp_path / "offline-profile")
    with contextlib.ExitStack() as stack:
        stack.callback(offline.quit)
        offline.execute_cdp_cmd("Network.enable", {})
        offline.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        open_report(offline, page)
        assert _snapshot(offline) == online
        assert problems(offline) == []


def test_a_leaderboard_is_shown_when_given(
    browser: webdriver.Chrome, page: Path, tmp_path: Path
) -> None:
    frames = load_frames([page.parent / "transcripts"])
    flips = {"count": 3, "of": 4, "rate": 0.75, "ci_low": 0.3, "ci_high": 0.954}
    speaker_1 = {"count": 6, "of": 7, "rate": 0.857, "ci_low": 0.487, "ci_high": 0.974}
    judges = {
        "judges": [
            {
                "model": HOSTILE_MODEL, "games": 4, "verdicts": 8, "abstentions": 1,
                "order_flips": flips, "order_alpha": -0.2,
                "speaker_1": speaker_1,
                "self_judged": {
                    "games": 2, "verdicts_for_own_model": 3, "verdicts_against_own_model": 1
                },
            }
        ],
        "between_judges": None,
    }  # fmt: skip
    board = Standings(
        rows=[
            LeaderboardRow(
                name=HOSTILE_MODEL, rating=1532.4, ci_low=1490, ci_high=1570, games=9, wins=6,
                draws=1, losses=2, rank=1, rank_worst=2, tied=True,
            ),
            LeaderboardRow(
                name="B:1b", rating=1467.6, games=9, wins=2, draws=1, losses=6, rank=1,
                rank_worst=2, tied=True, errors=3, own_errors=2, refusals=1,
            ),
            LeaderboardRow(name="old", rating=1400, games=1, wins=0, draws=0, losses=1),
        ],
        method="Bradley-Terry <b>method</b>",
        judges=judges,
    )  # fmt: skip
    with_board = tmp_path / "board.html"
    with_board.write_text(render_html(frames, analyse(frames), board), encoding="utf-8")
    open_report(browser, with_board)
    assert browser.find_element(By.ID, "leaderboard").is_displayed()
    cells = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "#leaderboard-table tbody tr")
    ]
    assert cells == [
        ["1=", HOSTILE_MODEL, "1532", "[1490, 1570]", "1–2", "9", "6", "1", "2", ""],
        ["1=", "B:1b", "1468", "–", "1–2", "9", "2", "1", "6", "3 (2 own, 1 refused)"],
        ["3", "old", "1400", "–", "–", "1", "0", "0", "1", ""],  # a row without ranks
    ]
    method = browser.find_element(By.ID, "leaderboard-method").text
    assert method.startswith("Bradley-Terry <b>method</b>.")  # text, never markup
    judged = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "#judges-table tbody tr")
    ]
    assert judged == [
        [HOSTILE_MODEL, "4", "8", "1", "3 of 4 (75%, 95% 30–95%)", "-0.20",
         "6 of 7 (86%, 95% 49–97%)", "2", "3 / 1"],
    ]  # fmt: skip
    assert browser.execute_script("return window.__pwned") is None
    assert problems(browser) == []


@pytest.fixture(scope="module")
def debate_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("debate") / "transcripts"
    asyncio.run(play_debate(folder))
    html = folder.parent / "report.html"
    assert main(["report", str(folder), "-o", str(html)]) == 0
    return html


def test_a_debate_shows_its_phases_and_the_moderator_apart(
    browser: webdriver.Chrome, debate_page: Path
) -> None:
    open_report(browser, debate_page)
    viewer = browser.find_element(By.ID, "viewer")
    headings = viewer.find_elements(By.CSS_SELECTOR, "li.phase-heading")
    assert [h.text.split(" ·")[0] for h in headings] == [
        "Openings Ada, Max",
        "Closings Max, Ada",
    ]
    assert "budget 3 words" in headings[0].text
    items = viewer.find_elements(By.CSS_SELECTOR, "ol.turns > li")
    kinds = [
        "heading"
        if "phase-heading" in (i.get_attribute("class") or "")
        else i.get_attribute("data-role") or "debater"
        for i in items
    ]
    assert kinds == ["heading", "moderator", "debater", "debater"] * 2
    chair = viewer.find_elements(By.CSS_SELECTOR, ".turn.moderator")
    assert len(chair) == 2 and all("Chair" in c.text and "moderator" in c.text for c in chair)
    assert "Openings. Ada and Max, the floor is yours." in chair[0].text
    debaters = viewer.find_elements(By.CSS_SELECTOR, ".turn:not(.moderator)")
    assert [d.find_element(By.CSS_SELECTOR, ".badge.side").text for d in debaters] == [
        "proposition",
        "opposition",
        "opposition",
        "proposition",
    ]
    assert "over budget: words" in debaters[0].text and "over budget" not in debaters[2].text
    table = viewer.find_elements(By.CSS_SELECTOR, "table.phases tbody tr")
    cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in table]
    assert cells == [
        ["Openings", "Ada", "1", "5", "3 words", "words ×1"],
        ["", "Max", "1", "5", "3 words", "words ×1"],
        ["Closings", "Max", "1", "2", "–", "–"],
        ["", "Ada", "1", "2", "–", "–"],
    ]
    # The moderator is no debater: the metrics' groups are the two models only.
    heads = browser.find_elements(By.CSS_SELECTOR, "#summary-table thead th")
    assert [h.text.split("\n")[0] for h in heads[1:]] == ["ma", "mb"]
    assert problems(browser) == []


def test_a_debate_shows_each_judges_votes_and_the_outcome(
    browser: webdriver.Chrome, debate_page: Path
) -> None:
    open_report(browser, debate_page)
    viewer = browser.find_element(By.ID, "viewer")
    heads = [th.text for th in viewer.find_elements(By.CSS_SELECTOR, "table.jury thead th")]
    assert heads == [
        "judge",
        "model",
        "before, proposition first",
        "before, opposition first",
        "after, proposition first",
        "after, opposition first",
    ]
    judged = viewer.find_elements(By.CSS_SELECTOR, "table.jury tbody tr")
    cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in judged]
    assert cells == [
        ["juror-1", "j1", "against", "against", "for", "for"],
        ["juror-2", "maself-judged", "against", "against", "for", "for"],  # a badge
    ]
    flagged = [len(r.find_elements(By.CSS_SELECTOR, ".badge.warn")) for r in judged]
    assert flagged == [0, 1]  # juror-2 plays Ada's model
    tally = viewer.find_element(By.CSS_SELECTOR, "p.tally").text
    assert tally.startswith(
        "before: 0 for, 2 against, 0 undecided · after: 2 for, 0 against, 0 undecided · "
        "moved +4 towards the motion."
    )
    outcome = viewer.find_element(By.CSS_SELECTOR, ".outcome").text
    assert outcome == "Ada wins, Max loses (jury: votes moved)"
    assert viewer.find_element(By.CSS_SELECTOR, ".motion").text == "motion: " + HOSTILE_MOTION
    assert problems(browser) == []


def test_a_debates_hostile_motion_and_reasons_run_nothing(
    browser: webdriver.Chrome, debate_page: Path
) -> None:
    open_report(browser, debate_page)
    vote = browser.find_element(By.CSS_SELECTOR, "table.jury td.vote")
    assert vote.get_attribute("title") == HOSTILE_REASON  # a reason, shown as a tooltip
    text = browser.find_element(By.ID, "viewer").get_attribute("textContent") or ""
    assert HOSTILE_MOTION in text
    assert browser.execute_script("return window.__pwned") is None
    injected = browser.execute_script(
        "return document.querySelectorAll('main script, #viewer img, [onerror]').length"
    )
    assert injected == 0
    assert problems(browser) == []
