"""Tournaments: many games between entrants on one scenario, resumable, scheduled by model,
optionally judged, rated with intervals.

Layers, each depending only on those before it: ``spec`` (the YAML file), ``games``
(pairings, ids, seeds, each game's scenario), ``ledger`` (the output folder: exactly-once
results), ``schedule`` (ordering games by the models they need), ``judge`` (verdicts),
``ratings`` (Bradley-Terry), ``play`` (running it all) and ``status``.
"""
