"""A tournament's hosts: models bound and checked per host, and a server that is down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.backends.scripted import ScriptedBackend
from agents.errors import BackendUnavailable, ConfigError
from runner.model.pool import BackendPool
from runner.settings import RunSettings
from runner.tournament import hosts as hosts_module
from runner.tournament.hosts import Hosts
from runner.tournament.spec import load_tournament
from tests.runner.tournament.helpers import write_tournament


class Watch:
    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []

    def paused(self, host: str, message: str, wait: float) -> None:
        self.said.append(("paused", message))

    def resumed(self, host: str) -> None:
        self.said.append(("resumed", host))


class Flaky(ScriptedBackend):
    """Once ``answers`` are given, answers each ``list_models`` with the next of them: an
    exception to raise, or None for its models."""

    def __init__(self) -> None:
        super().__init__(models=["m1", "m2", "m3"], host="box")
        self.answers: list[Exception | None] = []

    async def list_models(self) -> Any:
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        return await super().list_models()


async def no_wait(seconds: float) -> None:
    """The probe's back-off, without the waiting."""


async def connected(tmp_path: Path, backend: ScriptedBackend) -> Hosts:
    tournament = load_tournament(write_tournament(tmp_path))
    hosts = Hosts(tournament, BackendPool.fixed(backend, RunSettings()), pull=False)
    await hosts.connect(())
    return hosts


async def test_connect_binds_every_model_and_records_what_the_engine_said(tmp_path: Path) -> None:
    backend = ScriptedBackend(models=["m1", "m2", "m3"], host="box", concurrency=2)
    hosts = await connected(tmp_path, backend)
    [host] = list(hosts)
    assert sorted(host.models) == ["m1", "m2", "m3"]
    assert all(m.info is not None and m.info.name == name for name, m in host.models.items())
    assert host.cap == 2 * backend.conversations_per_slot


async def test_a_missing_model_names_the_engine_and_its_role(tmp_path: Path) -> None:
    backend = ScriptedBackend(models=["m1", "m2"], host="box")
    with pytest.raises(ConfigError) as info:
        await connected(tmp_path, backend)
    assert info.value.problems == ["scripted at box: entrant model 'm3' not found; pull it"]


async def test_a_server_that_is_down_is_probed_until_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = Flaky()
    hosts = await connected(tmp_path, backend)
    backend.answers = [BackendUnavailable("refused"), BackendUnavailable("refused again"), None]
    monkeypatch.setattr(hosts_module.asyncio, "sleep", no_wait)
    watch = Watch()
    [host] = list(hosts)
    await hosts.probe(host, "connection refused", watch)
    assert [said for said, _ in watch.said] == ["paused", "paused", "paused", "resumed"]
    assert watch.said[1][1] == "refused"  # each pause says what the last probe was told
    assert not host.paused


async def test_a_failure_that_is_no_engine_error_is_a_bug_and_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = Flaky()
    hosts = await connected(tmp_path, backend)
    backend.answers = [RuntimeError("a bug in sparring")]
    monkeypatch.setattr(hosts_module.asyncio, "sleep", no_wait)
    [host] = list(hosts)
    with pytest.raises(RuntimeError, match="a bug in sparring"):
        await hosts.probe(host, "connection refused", Watch())
    assert not host.paused  # the host is not left paused behind the error
