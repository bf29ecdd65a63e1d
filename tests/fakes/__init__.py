"""Fakes that speak real wire formats, for tests, benchmarks and trying sparring offline."""
