"""The embedded engine: GGUF models run through llama-cpp-python, each in a worker process.

backend.py   LocalBackend: names to GGUF files, configs to llama-cpp-python arguments
gguf.py      model files: built-in models, ollama's store, GGUF metadata
engine.py    a loaded model's queue and the thread that drives its worker; engines
             shared, counted, restarted when their worker dies
worker.py    where a model runs: a worker process (both ends of its pipe), or in-process
core.py      a loaded model and how one generation runs on it, in whichever process
queue.py     the order in which one loaded model serves its queued requests
context.py   one conversation side's context kept between turns
chunks.py    the pieces a prompt is evaluated in, so kept contexts replay exactly
states.py    saved contexts within one memory budget
check.py     one token in a child process: does the engine run on this machine?
"""
