"""The HTML page as text: data escaped for its script block, the policy, the charts."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from runner.analysis.charts import interval_chart
from runner.analysis.frames import load_frames
from runner.analysis.intervals import Estimate
from runner.analysis.leaderboard import LeaderboardRow
from runner.analysis.metrics import METRICS, GroupResult, analyse
from runner.analysis.report import TURN_FIELDS, render_html, script_json
from tests.runner.analysis.debates import HOSTILE_MOTION, HOSTILE_REASON, play_debate
from tests.runner.analysis.transcripts import Agent, Write

HOSTILE = "</script><script>alert(1)</script><!-- \u2028\u2029 & <img src=x onerror=alert(2)>"


def test_script_json_cannot_close_its_script_element() -> None:
    text = script_json({"content": HOSTILE, HOSTILE: [HOSTILE]})
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == {"content": HOSTILE, HOSTILE: [HOSTILE]}


def _page(write: Write, folder: Path, **fields: object) -> str:
    agents = [Agent("a", "model-a"), Agent("b", "model-b")]
    for i in range(3):
        write(agents=agents, turns=[("a", "Hello there friend."), ("b", HOSTILE)], repeat_index=i)
    frames = load_frames([folder])
    return render_html(frames, analyse(frames), **fields)  # type: ignore[arg-type]


def test_transcript_text_appears_only_inside_the_data_block(write: Write, folder: Path) -> None:
    page = _page(write, folder)
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert data
    assert "onerror" not in page.replace(data.group(1), "")
    assert page.count("<script") == 2  # the data block and the page's own script
    assert HOSTILE in json.loads(data.group(1))["conversations"][0]["turns"][1][1]


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_policy_allows_exactly_the_pages_own_script_and_style(
    write: Write, folder: Path
) -> None:
    page = _page(write, folder)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy
    rules = dict(part.strip().split(" ", 1) for part in policy.group(1).split(";"))
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert script and style
    assert rules["default-src"] == "'none'"
    assert rules["script-src"] == _hash(script.group(1))
    assert rules["style-src"] == _hash(style.group(1))
    assert rules["img-src"] == "data:"
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from afar


def test_a_leaderboard_travels_with_the_page(write: Write, folder: Path) -> None:
    rows = [
        LeaderboardRow(
            name="m", rating=1510, ci_low=1490, ci_high=1530, games=4, wins=3, draws=0, losses=1
        )
    ]
    page = _page(write, folder, leaderboard=rows)
    data = json.loads(re.findall(r'id="report-data">(.*?)</script>', page, re.S)[0])
    assert data["leaderboard"][0]["name"] == "m"


def test_a_model_name_is_drawn_literally_in_charts() -> None:
    name = "$x^2$ <b>bold</b>"
    group = GroupResult(
        group=name,
        key={"model": name},
        conversations=2,
        turns=4,
        metrics={m.name: Estimate(0.5, 0.4, 0.6, 2) for m in METRICS},
    )
    chart = interval_chart(METRICS[0], [group])
    assert chart is not None
    svg = base64.b64decode(chart.uri.split(",", 1)[1]).decode()
    assert "$x^2$ &lt;b&gt;bold&lt;/b&gt;" in svg
    assert "<script" not in svg


async def test_a_debates_phases_moderator_and_votes_travel_with_the_page(tmp_path: Path) -> None:
    await play_debate(tmp_path / "t")
    frames = load_frames([tmp_path / "t"])
    assert frames.moderator["content"].str.startswith(("Openings.", "Closings.")).all()
    page = render_html(frames, analyse(frames, resamples=100))
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert data and page.count("<script") == 2  # the motion and reasons opened no element
    assert "onerror" not in page.replace(data.group(1), "")
    fields = {name: i for i, name in enumerate(TURN_FIELDS)}
    c = json.loads(data.group(1))["conversations"][0]
    assert c["motion"] == HOSTILE_MOTION and c["moderator"] == {"name": "Chair", "model": None}
    said = [(t[fields["index"]], t[fields["speaker"]], t[fields["role"]]) for t in c["turns"]]
    assert said == [
        (0, "Chair", "moderator"),
        (1, 0, "proposition"),
        (2, 1, "opposition"),
        (3, "Chair", "moderator"),
        (4, 1, "opposition"),
        (5, 0, "proposition"),
    ]
    assert [t[fields["overrun"]] for t in c["turns"]] == [
        None,
        ["words"],
        ["words"],
        None,
        None,
        None,
    ]
    openings, closings = c["phases"]
    assert (openings["name"], openings["budget"], closings["first"]) == (
        "Openings",
        {"words": 3},
        3,
    )
    assert openings["speakers"][0] == {
        "speaker": "Ada",
        "turns": 1,
        "words": 5,
        "words_over": 1,
        "tokens_over": 0,
    }
    assert [(v["judge"], v["stage"], v["order"], v["vote"]) for v in c["votes"][:2]] == [
        ("juror-1", "before", "as_seated", "against"),
        ("juror-1", "before", "swapped", "against"),
    ]
    assert {v["judge"]: v["self_judged"] for v in c["votes"]} == {"juror-1": False, "juror-2": True}
    assert c["votes"][0]["reason"] == HOSTILE_REASON
    assert c["tally"]["after"] == {"for": 2, "against": 0, "undecided": 0}
    assert (c["reason"], c["rule"], c["winner"]) == ("jury", "moved", "Ada")
