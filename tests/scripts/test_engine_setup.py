"""scripts/engine.py: which llama.cpp build a machine gets, and the set-up's engine check.

The check's crashes here are real: a stand-in engine, run as the child process the check
starts, dies of SIGSEGV (an invalid read) until the set-up has "rebuilt" it.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("setup_engine", ROOT / "scripts" / "engine.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


engine = _load()

SAPPHIRE_RAPIDS = """\
processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma bmi1 bmi2 avx2 avx512f avx512_fp16 \
amx_tile amx_int8 amx_bf16
"""
OLD_X86 = """\
model name\t: Intel(R) Xeon(R) CPU E5-2670
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx
"""


def test_the_default_build_is_portable_and_never_native() -> None:
    build = engine.default_build(SAPPHIRE_RAPIDS, "x86_64")
    assert build.name == "portable" and "-DGGML_NATIVE=OFF" in build.cmake_args
    assert "AMX" not in build.cmake_args  # ggml leaves AMX and AVX-512 off without native
    assert engine.default_build("", "aarch64").cmake_args == "-DGGML_NATIVE=OFF"


def test_a_cpu_without_avx2_gets_the_baseline_build() -> None:
    build = engine.default_build(OLD_X86, "x86_64")
    assert build.name == "baseline"
    for flag in ("AVX", "AVX2", "FMA", "F16C", "AVX512", "AMX_TILE"):
        assert f"-DGGML_{flag}=OFF" in build.cmake_args


def test_builds_with_other_flags_never_share_a_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    keys = {engine.build_named(name).key for name in ("portable", "baseline", "native")}
    assert len(keys) == 3 and all(engine.VERSION in key for key in keys)
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=ON")
    custom = engine.wanted_build(None, SAPPHIRE_RAPIDS, {})
    assert custom.name == "custom" and custom.key not in keys


def test_a_build_the_check_settled_on_stays_on_that_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    settled = {"build": "baseline", "cpu": engine.cpu_fingerprint(SAPPHIRE_RAPIDS)}
    assert engine.wanted_build(None, SAPPHIRE_RAPIDS, settled).name == "baseline"
    # Another CPU (the venv moved, or a new machine): the default again, and a new check.
    other = OLD_X86.replace("avx", "avx avx2 fma f16c bmi2")
    assert engine.wanted_build(None, other, settled).name == "portable"


def test_a_wheel_is_built_once_per_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engine.CACHE_ENV, str(tmp_path))
    built: list[str] = []

    def builder(python: Path, build: object, folder: Path) -> Path:
        built.append(folder.name)
        folder.mkdir(parents=True)
        wheel = folder / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
        wheel.write_bytes(b"wheel")
        return wheel

    portable = engine.build_named("portable")
    first = engine.wheel_for(Path(sys.executable), portable, builder)
    assert engine.wheel_for(Path(sys.executable), portable, builder) == first
    engine.wheel_for(Path(sys.executable), engine.build_named("baseline"), builder)
    assert len(built) == 2 and built[0].endswith(portable.key.rsplit("-", 1)[1])


# --- the check, against a stand-in engine that crashes -----------------------------------

# The stand-in engine: it crashes, for real, unless "fixed" (what a rebuild made it).
STAND_IN = """\
import ctypes, pathlib, sys
if not pathlib.Path(sys.argv[1]).exists():
    ctypes.string_at(0)
print("embedded engine ok: 1 token in 0.1 s")
"""


def _venv(tmp_path: Path, build: str) -> Path:
    venv = tmp_path / "venv"
    venv.mkdir()
    engine.write_stamp(venv, {"version": engine.VERSION, "build": build, "wheel": "ab"})
    return venv


def _stand_in(fixed: Path) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    """The check's child: the stand-in engine, fixed once ``fixed`` exists."""

    def run(python: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", STAND_IN, str(fixed)], capture_output=True, text=True
        )

    return run


def test_a_crashing_engine_is_rebuilt_portable_and_checked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = _venv(tmp_path, "portable")
    fixed = tmp_path / "fixed"
    rebuilt: list[str] = []

    def reinstall(venv: Path, build: Any) -> None:
        rebuilt.append(build.name)
        engine.write_stamp(venv, {"version": engine.VERSION, "build": build.name, "wheel": "cd"})
        fixed.touch()

    status = engine.check(
        venv, cpuinfo=SAPPHIRE_RAPIDS, runner=_stand_in(fixed), reinstall=reinstall
    )
    out = capsys.readouterr().out.splitlines()
    assert status == 0 and rebuilt == ["baseline"]
    [crash] = [line for line in out if "SIGSEGV" in line]
    assert "portable build" in crash and "Platinum 8481C" in crash and "rebuilding" in crash
    assert out[-1].startswith("embedded engine ok")
    stamp = json.loads((venv / engine.STAMP).read_text())
    assert stamp["build"] == "baseline"
    assert stamp["checked"] == stamp["cpu"] == engine.cpu_fingerprint(SAPPHIRE_RAPIDS)

    # Checked on this CPU: not run again.
    def never(python: Path) -> subprocess.CompletedProcess[str]:
        raise AssertionError("checked again")

    assert engine.check(venv, cpuinfo=SAPPHIRE_RAPIDS, runner=never, reinstall=reinstall) == 0


def test_an_engine_that_crashes_in_every_build_is_one_line_and_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = _venv(tmp_path, "baseline")
    status = engine.check(
        venv,
        cpuinfo=SAPPHIRE_RAPIDS,
        runner=_stand_in(tmp_path / "never"),
        reinstall=lambda *_: pytest.fail("nothing left to rebuild"),
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "SIGSEGV" in err[0] and "--backend ollama" in err[0]
    assert "checked" not in json.loads((venv / engine.STAMP).read_text())


def test_an_engine_that_cannot_be_checked_is_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(python: Path) -> subprocess.CompletedProcess[str]:
        code = "import sys; print('cannot check the embedded engine: no model', file=sys.stderr)"
        return subprocess.run(
            [sys.executable, "-c", code + "; sys.exit(1)"], capture_output=True, text=True
        )

    venv = _venv(tmp_path, "portable")
    status = engine.check(
        venv, cpuinfo=SAPPHIRE_RAPIDS, runner=missing, reinstall=lambda *_: pytest.fail("no")
    )
    assert status == 1
    expected = "engine check: cannot check the embedded engine: no model"
    assert capsys.readouterr().err.strip() == expected


@pytest.mark.realmodel
def test_the_check_generates_a_token_on_the_installed_engine() -> None:
    done = engine.run_check(Path(sys.executable))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("embedded engine ok: 1 token")


@pytest.mark.realmodel
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 instruction sets only")
def test_the_installed_engine_holds_no_instruction_a_vm_may_withhold() -> None:
    # The crash this build prevents needs a CPU this machine may not be: check the code.
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib" / "libggml-cpu.so"
    code = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(lib)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"\bv\w+\s.*%ymm", code)  # AVX2 kept: the portable build, not baseline
    assert not re.search(r"%zmm|%k[1-7]\b|\bldtilecfg\b|\btdpb", code)  # no AVX-512, no AMX
