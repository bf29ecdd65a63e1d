"""Install the embedded engine (llama-cpp-python) built to run on this machine, and check it.

    python scripts/engine.py install --venv .venv [--build portable|baseline|native]
    python scripts/engine.py check --venv .venv

pip compiles llama.cpp for the CPU it runs on (``GGML_NATIVE``: ``-march=native``), so a
CPU that advertises an instruction set its virtual machine does not grant (AMX on some
cloud VMs of Intel's Sapphire Rapids generation) gets a build that dies with SIGSEGV on
the first token. This script builds llama-cpp-python with named flags instead:

    portable   native off; on x86-64, AVX, AVX2, FMA, F16C and BMI2 (x86-64-v3) kept,
               AVX-512 and AMX off. The default.
    baseline   native off and every optional x86 instruction set off: any x86-64 CPU.
    native     pip's own default, for comparison in bench/build.py only.

(``CMAKE_ARGS`` in the environment replaces the flags: a build of your own, e.g. for a GPU.)

Wheels are kept in a folder of their own, one per version and flags, beside pip's cache
(``SPARRING_ENGINE_CACHE``), and built with pip's wheel cache off: pip keys its cached
wheels by source, not by flags, so a wheel built natively before could otherwise be reused
silently. The venv records which build it has (``.sparring-engine.json``); an engine
installed any other way is replaced.

``check`` generates one token in a child process. If that child dies (a signal), it says
so in one line, rebuilds ``baseline``, and checks again; a build that passed is not
checked again on the same CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

VERSION = "0.3.36"
PACKAGE = "llama-cpp-python"
STAMP = ".sparring-engine.json"
CACHE_ENV = "SPARRING_ENGINE_CACHE"
X86 = ("x86_64", "amd64", "i686", "i386")
# x86-64-v3's extensions, which the portable build keeps: the kernel lists them in
# /proc/cpuinfo only where the OS lets processes use them.
V3_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi2")
X86_OFF = ("SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C", "AVX512", "AMX_TILE", "AMX_INT8")


@dataclasses.dataclass(frozen=True)
class Build:
    name: str
    cmake_args: str

    @property
    def key(self) -> str:
        """Names the wheel: version, flags and machine, so no two builds share a folder."""
        text = f"{VERSION} {self.cmake_args} {platform.machine()}"
        return f"{PACKAGE}-{VERSION}-{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def build_named(name: str, machine: str | None = None) -> Build:
    machine = (machine or platform.machine()).lower()
    if name == "native":
        return Build(name, "")
    if name == "portable":
        # GGML_NATIVE=OFF leaves ggml's x86 defaults on: SSE4.2, AVX, AVX2, BMI2, FMA, F16C;
        # AVX-512 and AMX stay off unless asked for.
        return Build(name, "-DGGML_NATIVE=OFF")
    if name == "baseline":
        if machine not in X86:
            return Build(name, "-DGGML_NATIVE=OFF")
        return Build(name, " ".join(["-DGGML_NATIVE=OFF", *(f"-DGGML_{f}=OFF" for f in X86_OFF)]))
    raise SystemExit(f"unknown build {name!r}: portable, baseline or native")


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_fingerprint(cpuinfo: str) -> str:
    """The CPU as a program sees it: model and flags (a new machine, a new check)."""
    wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    seen: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in wanted:
            seen.setdefault(key.strip(), value.strip())
    return hashlib.sha256(json.dumps([platform.machine(), seen]).encode()).hexdigest()[:16]


def cpu_name(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.machine()


def read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def default_build(cpuinfo: str, machine: str | None = None) -> Build:
    """``portable``, unless an x86 CPU lacks one of its extensions: then ``baseline``."""
    machine = (machine or platform.machine()).lower()
    if machine in X86 and not set(V3_FLAGS) <= cpu_flags(cpuinfo):
        return build_named("baseline", machine)
    return build_named("portable", machine)


def wanted_build(name: str | None, cpuinfo: str, stamp: dict[str, object]) -> Build:
    if os.environ.get("CMAKE_ARGS", "").strip():
        return Build("custom", os.environ["CMAKE_ARGS"].strip())
    if name:
        return build_named(name)
    recorded = stamp.get("build")
    if recorded in ("portable", "baseline") and stamp.get("cpu") == cpu_fingerprint(cpuinfo):
        return build_named(str(recorded))  # what the check settled on for this CPU
    return default_build(cpuinfo)


# --- the venv ---------------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def read_stamp(venv: Path) -> dict[str, object]:
    try:
        data = json.loads((venv / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_stamp(venv: Path, data: dict[str, object]) -> None:
    path = venv / STAMP
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def installed_version(python: Path) -> str | None:
    code = "import importlib.metadata as m; print(m.version('llama-cpp-python'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def cache_root(python: Path) -> Path:
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    done = subprocess.run(
        [str(python), "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    )
    pip_cache = done.stdout.strip()
    if done.returncode == 0 and pip_cache:
        return Path(pip_cache) / "sparring-engine"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sparring-engine"


def say(text: str) -> None:
    print(text, flush=True)


def build_wheel(python: Path, build: Build, folder: Path) -> Path:
    """Compile llama-cpp-python with ``build``'s flags into ``folder``; the wheel's path."""
    say(
        f"compiling llama.cpp ({PACKAGE} {VERSION}, {build.name} build: "
        f"{build.cmake_args or 'native'}); about 5-15 minutes on 2 cores, once per machine"
    )
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory(prefix="sparring-engine-") as tmp:
        # The source through pip's HTTP cache; the build with its wheel cache off.
        source = [f"{PACKAGE}=={VERSION}", "--no-binary", ":all:", "-d", tmp]
        subprocess.run([*pip, "download", "--quiet", "--no-deps", *source], check=True)
        (sdist,) = Path(tmp).glob("*.tar.gz")
        env = dict(os.environ, CMAKE_ARGS=build.cmake_args)
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        t0 = time.monotonic()
        out = Path(tmp, "wheel")
        subprocess.run(
            [*pip, "wheel", "--quiet", "--no-deps", "--no-cache-dir", str(sdist), "-w", str(out)],
            check=True,
            env=env,
        )
        (wheel,) = out.glob("*.whl")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / wheel.name
        shutil.move(wheel, target)
        minutes = (time.monotonic() - t0) / 60
    (folder / "build.json").write_text(
        json.dumps({**dataclasses.asdict(build), "version": VERSION, "minutes": round(minutes, 1)})
        + "\n",
        encoding="utf-8",
    )
    say(f"compiled in {minutes:.1f} min: {target}")
    return target


def wheel_for(python: Path, build: Build, builder: Callable[..., Path] = build_wheel) -> Path:
    folder = cache_root(python) / build.key
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return found[0] if found else builder(python, build, folder)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install(venv: Path, build: Build, builder: Callable[..., Path] = build_wheel) -> bool:
    """Make ``venv``'s llama-cpp-python ``build``'s wheel; True when it changed anything."""
    python = venv_python(venv)
    stamp = read_stamp(venv)
    wheel = wheel_for(python, build, builder)
    digest = sha256(wheel)
    if stamp.get("wheel") == digest and installed_version(python) == VERSION:
        return False
    if installed_version(python) is not None and stamp.get("wheel") != digest:
        say(f"replacing the installed {PACKAGE} with the {build.name} build")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(wheel)], check=True)
    subprocess.run([*pip, str(wheel)], check=True)  # its dependencies, where missing
    write_stamp(venv, {"version": VERSION, "build": build.name, "wheel": digest})
    return True


# --- the check ----------------------------------------------------------------------------


def run_check(python: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "agents.backends.local.check"],
        capture_output=True,
        text=True,
        check=False,
    )


def describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"died of {signal.Signals(-returncode).name} (signal {-returncode})"
        except ValueError:
            return f"died of signal {-returncode}"
    return f"exited with status {returncode}"


def check(
    venv: Path,
    *,
    cpuinfo: str | None = None,
    runner: Callable[[Path], subprocess.CompletedProcess[str]] = run_check,
    reinstall: Callable[[Path, Build], object] = install,
) -> int:
    """Check the engine in a child; on a crash rebuild ``baseline`` and check again."""
    cpuinfo = read_cpuinfo() if cpuinfo is None else cpuinfo
    python = venv_python(venv)
    fingerprint = cpu_fingerprint(cpuinfo)
    stamp = read_stamp(venv)
    if stamp.get("checked") == fingerprint:
        return 0
    while True:
        build = str(read_stamp(venv).get("build", "portable"))
        done = runner(python)
        if done.returncode == 0:
            say(done.stdout.strip() or "embedded engine ok")
            write_stamp(venv, {**read_stamp(venv), "checked": fingerprint, "cpu": fingerprint})
            return 0
        if done.returncode > 0:  # it could not run: not a crash of the engine
            last = (done.stderr.strip().splitlines() or [describe(done.returncode)])[-1]
            print(f"engine check: {last}", file=sys.stderr)
            return 1
        what = (
            f"engine check: llama.cpp ({build} build) {describe(done.returncode)} "
            f"generating its first token on this CPU ({cpu_name(cpuinfo)})"
        )
        if build in ("baseline", "custom"):
            print(
                f"{what}; it does so with every optional CPU instruction set off too: "
                "use ollama or an OpenAI-compatible server instead (--backend ollama|openai)",
                file=sys.stderr,
            )
            return 1
        say(f"{what}; rebuilding it with every optional instruction set off (baseline)")
        reinstall(venv, build_named("baseline"))
        write_stamp(venv, {**read_stamp(venv), "cpu": fingerprint})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["install", "check"])
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--build", choices=["portable", "baseline", "native"])
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.venv)
    cpuinfo = read_cpuinfo()
    build = wanted_build(args.build, cpuinfo, read_stamp(args.venv))
    try:
        install(args.venv, build)
    except subprocess.CalledProcessError as exc:
        cmd = shlex.join(str(part) for part in exc.cmd[:6])
        print(
            f"installing the embedded engine failed: {cmd} ... {describe(exc.returncode)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
