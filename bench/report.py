"""``sparring report`` on many conversations: time, peak memory and page size, printed.

Generates N conversations (default 1,000 and 10,000; ten turns each, four models in two
scenarios, some conceding, some switching language), then for each size runs, each in a
fresh process so peak memory is its own:

- the baseline: reading every transcript with the typed reader (runner.transcript), and
- ``sparring report DIR -o report.html`` (the real command: read, measure, bootstrap,
  draw, write),

and prints wall time and peak resident memory of both, the report's time and memory as
multiples of the baseline's, the HTML file's size against the transcripts', and, when
Debian's chromium and chromedriver are installed, how long the page takes to open in
headless Chromium (until its script has drawn the tables and the first conversation).

Run: .venv/bin/python bench/report.py [--sizes 1000 10000] [--turns 10]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.transcript import AgentInfo, EndRecord, Outcome, RunRecord, TurnRecord  # noqa: E402

MODELS = ("qwen:0.5b", "llama3.2:1b", "smollm2:135m", "gemma3:270m")
WORDS = (
    "cities villages people always never better worse because the a of and quiet loud "
    "clean air trains cars work life cheap expensive friends neighbours think believe "
    "argument point wrong right really simply everyone nobody"
).split()
GERMAN = "Das stimmt nicht, die Stadt ist viel zu laut und teuer für alle Menschen hier."


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(5, 16))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!"])


def _turn(rng: random.Random, model: str) -> str:
    if model == "gemma3:270m" and rng.random() < 0.2:
        return GERMAN
    return " ".join(_sentence(rng) for _ in range(rng.choice([1, 1, 2, 3])))


def write_conversation(folder: Path, i: int, rng: random.Random, turns: int) -> int:
    """One transcript file; returns its size in bytes."""
    pair = (MODELS[0], MODELS[1]) if i % 2 else (MODELS[2], MODELS[3])
    cid = f"{i:012x}"
    agents = [
        AgentInfo(name="A", model=pair[0], persona="Argue, one sentence per turn."),
        AgentInfo(name="B", model=pair[1], persona="Argue, one sentence per turn."),
    ]
    run = RunRecord(
        run_id="bench",
        conversation_id=cid,
        scenario="debate" if i % 3 else "i-lost",
        scenario_hash="sha256:bench",
        repeat_index=i,
        repeat=1,
        seed=i,
        order="round_robin",
        max_turns=turns,
        agents=agents,
        backend="ollama",
        sparring_version="bench",
        started_at="2026-01-01T00:00:00Z",
    )
    lines = [run.model_dump_json()]
    concede = rng.random() < 0.4
    count = rng.randint(turns // 2, turns) if concede else turns
    for index in range(count):
        speaker = agents[index % 2]
        last = concede and index == count - 1
        content = "Fine. I lost." if last else _turn(rng, speaker.model)
        tokens = len(content.split()) + 2
        lines.append(
            TurnRecord(
                conversation_id=cid,
                index=index,
                round=index // 2 + 1,
                speaker=speaker.name,
                model=speaker.model,
                content=content,
                started_at="t",
                ended_at="t",
                ttft_ms=rng.uniform(20, 400),
                latency_ms=rng.uniform(200, 3000),
                prompt_tokens=50 + 20 * index,
                completion_tokens=tokens,
                done_reason="stop",
            ).model_dump_json()
        )
    loser = agents[(count - 1) % 2].name if concede else None
    winner = agents[count % 2].name if concede else None
    end = EndRecord(
        conversation_id=cid,
        status="success",
        turns=count,
        ended_at="t",
        outcome=Outcome(
            winner=winner,
            loser=loser,
            reason="end_rule" if concede else "max_turns",
            rule="concession" if concede else None,
            turn=count - 1,
        ),
    )
    lines.append(end.model_dump_json())
    text = "\n".join(lines) + "\n"
    path = folder / f"bench_{cid}.jsonl"
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def child(kind: str, folder: str, output: str) -> None:
    """Runs in its own process: the measured work, then its figures as one JSON line."""
    start = time.perf_counter()
    if kind == "read":
        from runner.transcript import iter_transcripts

        turns = sum(len(t.turns) for t in iter_transcripts([folder]))
        extra: dict[str, Any] = {"turns": turns}
    else:
        from runner.cli import main

        code = main(["report", folder, "-o", output])
        extra = {"exit": code}
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **extra}))


def measure(kind: str, folder: Path, output: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(folder), str(output)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def open_in_chromium(page: Path) -> float | None:
    """Seconds from navigation until the page's script has drawn it, or None."""
    chromium, driver_path = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    if not (chromium.exists() and driver_path.exists()):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    flags = (
        "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync"
    )
    for flag in flags.split():
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(str(driver_path)))
        try:
            driver.set_page_load_timeout(300)
            start = time.perf_counter()
            driver.get(page.as_uri())
            WebDriverWait(driver, 300).until(
                lambda d: d.execute_script("return document.body.dataset.ready") == "1"
            )
            return time.perf_counter() - start
        finally:
            driver.quit()


def bench(size: int, turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "transcripts"
        folder.mkdir()
        rng = random.Random(size)
        input_bytes = sum(write_conversation(folder, i, rng, turns) for i in range(size))
        page = Path(tmp) / "report.html"
        base = measure("read", folder, page)
        report = measure("report", folder, page)
        html_bytes = page.stat().st_size
        opened = open_in_chromium(page)
    mb = 1024 * 1024
    print(f"\n{size:,} conversations, {base['turns']:,} turns, {input_bytes / mb:.1f} MB")
    print(
        f"  baseline, reading the transcripts: {base['seconds']:.1f} s, "
        f"peak {base['peak_mb']:.0f} MB"
    )
    print(
        f"  sparring report -o report.html:    {report['seconds']:.1f} s, "
        f"peak {report['peak_mb']:.0f} MB"
    )
    print(
        f"  report/baseline: time x{report['seconds'] / base['seconds']:.1f}, "
        f"peak memory x{report['peak_mb'] / base['peak_mb']:.1f}; "
        f"per conversation {1000 * report['seconds'] / size:.1f} ms"
    )
    print(
        f"  report.html: {html_bytes / mb:.1f} MB "
        f"({html_bytes / input_bytes:.2f} x the transcripts' size)"
    )
    if opened is not None:
        print(f"  headless Chromium, open until drawn: {opened:.1f} s")
    else:
        print("  (chromium not installed: opening time not measured)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FOLDER", "OUTPUT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    for size in args.sizes:
        bench(size, args.turns)


if __name__ == "__main__":
    main()
