"""Scenarios, the async orchestrator, transcripts, analysis and the CLI."""

__version__ = "0.1.0"
