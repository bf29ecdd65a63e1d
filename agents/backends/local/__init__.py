"""The embedded engine: GGUF models run through llama-cpp-python.

backend.py   LocalBackend: names to GGUF files, configs to llama-cpp-python arguments
gguf.py      model files: built-in models, ollama's store, GGUF metadata
engine.py    a loaded model and the worker that owns it; engines shared and counted
queue.py     the order in which one loaded model serves its queued requests
context.py   one conversation side's context kept between turns
chunks.py    the pieces a prompt is evaluated in, so kept contexts replay exactly
states.py    saved contexts within one memory budget
"""
