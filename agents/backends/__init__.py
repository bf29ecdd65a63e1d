"""Backend registry: names to implementations, and the ``auto`` choice.

Backend modules are imported lazily so that a missing optional engine (llama-cpp-python)
only matters to the user who asks for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

import httpx

from agents.backends.base import Backend, BackendSettings
from agents.errors import ConfigError, EngineMissing

BACKENDS: dict[str, str] = {
    "ollama": "agents.backends.ollama:OllamaBackend",
    "local": "agents.backends.local:LocalBackend",
    "openai": "agents.backends.openai:OpenAIBackend",
}
CHOICES = ("auto", *BACKENDS)

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


def normalize_host(host: str, default_port: int = 11434) -> str:
    """Turn OLLAMA_HOST-style values (``0.0.0.0``, ``host:port``, URLs) into a base URL."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    netloc, _, path = rest.partition("/")
    if netloc.startswith("0.0.0.0"):  # a listen address, not one to connect to
        netloc = "127.0.0.1" + netloc[len("0.0.0.0") :]
    if ":" not in netloc.rsplit("]", 1)[-1]:
        netloc = f"{netloc}:{default_port}"
    return f"{scheme}://{netloc}" + (f"/{path}" if path else "")


def ollama_host(hosts: tuple[str, ...] = ()) -> str:
    """``--host`` first, then OLLAMA_HOST, then ollama's default address."""
    if hosts:
        return normalize_host(hosts[0])
    return normalize_host(os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST)


def local_engine_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


@dataclass(frozen=True, slots=True)
class Choice:
    name: str
    reason: str


async def probe_ollama(host: str, wait: float = 1.5) -> bool:
    """True when an ollama server answers ``GET /api/version`` at ``host``."""
    try:
        async with httpx.AsyncClient(timeout=wait) as client:
            response = await client.get(f"{host}/api/version")
            return response.status_code == 200 and "version" in response.json()
    except (httpx.HTTPError, ValueError):
        return False


async def choose_backend(requested: str, settings: BackendSettings) -> Choice:
    """Resolve ``auto``: ollama if a server answers, else the embedded engine if installed."""
    if requested != "auto":
        if requested not in BACKENDS:
            choices = ", ".join(CHOICES)
            raise ConfigError(f"unknown backend {requested!r}; expected one of {choices}")
        return Choice(requested, f"--backend {requested}")
    host = ollama_host(settings.hosts)
    if await probe_ollama(host):
        return Choice("ollama", f"an ollama server answered at {host}")
    if local_engine_installed():
        return Choice("local", f"no ollama server answered at {host}; using the embedded engine")
    raise EngineMissing(
        f"no ollama server answered at {host} and the embedded engine is not installed: "
        "start ollama (or set OLLAMA_HOST / --host), or install it with "
        "pip install 'sparring[local]'"
    )


def create_backend(name: str, settings: BackendSettings, **extra: Any) -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; expected one of {', '.join(CHOICES)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    backend: Backend = getattr(module, class_name)(settings, **extra)
    return backend
