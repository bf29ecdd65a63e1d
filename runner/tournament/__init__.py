"""Tournaments: many games between entrants on one scenario, resumable, scheduled by model,
optionally judged, rated with intervals.

Layers, each depending only on those before it: ``spec`` (the YAML file), ``games``
(pairings, ids, seeds, each game's scenario), ``ledger`` (the output folder: exactly-once
results), ``schedule`` (ordering games by the models they need), ``judge`` (verdicts),
``ratings`` (Bradley-Terry: the leaderboard's rows; ``fit``, its numerics, loads when
ratings are computed), ``table`` (results played elsewhere, as pair counts),
``reliability`` (how far the judges can be trusted), ``hosts`` (the servers it plays on),
``work`` (a game played or judged on one), ``play`` (running it all), ``standings``
(progress and ratings read back from disk), ``display`` and ``commands`` (what the CLI's
``tournament`` and ``leaderboard`` print).
"""
