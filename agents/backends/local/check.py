"""Whether the embedded engine runs on this machine: one token from the built-in model.

    python -m agents.backends.local.check

Run as a child process (``scripts/setup.sh`` does, right after installing the engine), so
that a llama.cpp build using CPU instructions this machine does not grant dies here, with
its signal as the exit status, instead of in the first conversation. Prints one line and
exits 0 when the token came; exits 1 with one line when the check could not run (the
engine or the model missing).
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    try:
        import llama_cpp

        from agents.backends.local.core import silence
        from agents.backends.local.gguf import resolve_model

        silence(llama_cpp)
        path = resolve_model("smollm2:135m").path
    except Exception as exc:  # not installed: say so in one line
        print(f"cannot check the embedded engine: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=1, verbose=False)
    out = llm.create_completion("The sky is", max_tokens=1, temperature=0)
    llm.close()
    tokens = out["usage"]["completion_tokens"]  # type: ignore[index]
    print(f"embedded engine ok: {tokens} token in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
