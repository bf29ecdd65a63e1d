"""Backend registry: names to implementations and what the runner needs to know of each
engine, and the ``auto`` choice.

Every engine is named here once (:data:`Name`, :data:`ENGINES`); the scenario and
tournament schemas, the command line and the runner read these rather than naming
engines themselves. Backend modules are imported lazily so that a missing optional
engine (llama-cpp-python) only matters to the user who asks for it.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import os
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import unquote

from agents.backends.base import Backend, BackendSettings
from agents.errors import ConfigError, EngineMissing

Name = Literal["ollama", "local", "openai"]
Requested = Literal["auto", "ollama", "local", "openai"]  # a Name, or auto


@dataclass(frozen=True, slots=True)
class Engine:
    target: str  # "module:Class", imported when the engine is first created
    label: str  # how messages name it; {host} is where it runs
    # It talks to servers at hosts: a recorded host says where to find it again.
    remote: bool
    # A server holds every model it was started with, rather than loading models as they
    # are asked for and keeping a few.
    serves_all: bool


ENGINES: dict[str, Engine] = {
    "ollama": Engine(
        "agents.backends.ollama:OllamaBackend", "ollama at {host}", remote=True, serves_all=False
    ),
    "local": Engine(
        "agents.backends.local.backend:LocalBackend",
        "the embedded engine",
        remote=False,
        serves_all=False,
    ),
    "openai": Engine(
        "agents.backends.openai:OpenAIBackend",
        "the OpenAI-compatible server at {host}",
        remote=True,
        serves_all=True,
    ),
}
BACKENDS: dict[str, str] = {name: engine.target for name, engine in ENGINES.items()}
CHOICES: tuple[str, ...] = get_args(Requested)
if set(get_args(Name)) != set(ENGINES) or CHOICES != ("auto", *get_args(Name)):
    raise AssertionError("the engine names of Name, Requested and ENGINES differ")


def engine_label(backend: Backend) -> str:
    """How messages name ``backend``'s engine: "the embedded engine", "ollama at URL"."""
    engine = ENGINES.get(backend.name)
    if engine is None:  # an engine outside the registry: a test's, a preview's
        return f"{backend.name} at {backend.host}"
    return engine.label.format(host=backend.host)


DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


Credentials = tuple[str, str]


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """``http://user:pass@host:1/x`` -> (``http://host:1/x``, (user, pass)).

    Hosts are recorded and printed without their credentials; backends send them as
    HTTP Basic auth (what reverse proxies in front of ollama ask for).
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        scheme, rest = "", url.strip()
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return url.strip(), None
    user, _, password = userinfo.partition(":")
    bare = f"{scheme}://{hostport}" if sep else hostport
    return bare + (slash + path if slash else ""), (unquote(user), unquote(password))


def basic_auth(credentials: Credentials) -> str:
    """The ``Authorization`` header value for HTTP Basic auth."""
    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def redact(text: str) -> str:
    """Any ``scheme://user:pass@`` in ``text`` with the credentials replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)


_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def normalize_host(host: str, default_port: int = 11434) -> str:
    """Turn OLLAMA_HOST-style values (``0.0.0.0``, ``host:port``, URLs) into a base URL
    (without credentials: see :func:`split_credentials`)."""
    host, _ = split_credentials(host)
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


def ollama_target(hosts: tuple[str, ...] = ()) -> tuple[str, Credentials | None]:
    """``--host`` first, then OLLAMA_HOST, then ollama's default address; and credentials."""
    raw = hosts[0] if hosts else os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST
    return normalize_host(raw), split_credentials(raw)[1]


def local_engine_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


@dataclass(frozen=True, slots=True)
class Choice:
    name: str
    reason: str
    # What else could have run the models, for a message when they are missing here
    # (e.g. "start ollama" when auto fell back to the embedded engine).
    alternative: str | None = None


async def probe_ollama(host: str, wait: float = 1.5, auth: Credentials | None = None) -> bool:
    """True when an ollama server answers ``GET /api/version`` at ``host``."""
    import httpx  # here, not at import: the embedded engine's workers never need it

    try:
        async with httpx.AsyncClient(timeout=wait, auth=auth) as client:
            response = await client.get(f"{host}/api/version")
            return response.status_code == 200 and "version" in response.json()
    except (httpx.HTTPError, ValueError):
        return False


async def probe_openai(url: str, wait: float = 1.5, auth: Credentials | None = None) -> bool:
    """True when ``GET {url}/models`` answers an OpenAI-style model list (``url`` ends in /v1)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=wait, auth=auth) as client:
            response = await client.get(f"{url}/models")
            body = response.json()
    except (httpx.HTTPError, ValueError):
        return False
    return response.status_code == 200 and isinstance(body, dict) and "data" in body


def _v1(url: str) -> str:
    bare = split_credentials(url)[0].strip().rstrip("/")
    bare = bare if "://" in bare else "http://" + bare
    return bare if bare.endswith("/v1") else bare + "/v1"


async def choose_backend(
    requested: str, settings: BackendSettings, *, set_by: str = "--backend"
) -> Choice:
    """Resolve ``auto``: an OpenAI-compatible server for a ``/v1`` URL; else ollama if a
    server answers; else an OpenAI-compatible server that answers ``/v1/models`` at the
    given host; else the embedded engine if installed. ``set_by`` says where a named
    backend came from, for the reason."""
    if requested != "auto":
        if requested not in BACKENDS:
            choices = ", ".join(CHOICES)
            raise ConfigError(f"unknown backend {requested!r}; expected one of {choices}")
        why = f"--backend {requested}" if set_by == "--backend" else f"{set_by}: {requested}"
        return Choice(requested, why)
    given = settings.hosts[0] if settings.hosts else None
    if given is not None and split_credentials(given)[0].rstrip("/").endswith("/v1"):
        return Choice("openai", f"the host {_v1(given)} ends in /v1: an OpenAI-compatible server")
    host, auth = ollama_target(settings.hosts)
    if await probe_ollama(host, auth=auth):
        return Choice("ollama", f"an ollama server answered at {host}")
    if given is not None and await probe_openai(_v1(given), auth=split_credentials(given)[1]):
        return Choice("openai", f"an OpenAI-compatible server answered at {_v1(given)}/models")
    tried = f"no ollama server answered at {host}" + (
        f" and no OpenAI-compatible server at {_v1(given)}" if given is not None else ""
    )
    if local_engine_installed():
        return Choice(
            "local",
            f"{tried}; using the embedded engine",
            alternative="start ollama (`ollama serve`) and run again",
        )
    raise EngineMissing(
        f"{tried}, and the embedded engine is not installed: "
        "start ollama (or set OLLAMA_HOST / --host), or install it with "
        "pip install 'sparring[local]'"
    )


def create_backend(name: str, settings: BackendSettings, **extra: Any) -> Backend:
    try:
        target = ENGINES[name].target
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; expected one of {', '.join(CHOICES)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    backend: Backend = getattr(module, class_name)(settings, **extra)
    return backend
