"""Scenario files: their schema (:mod:`.schema`), reading YAML with every value's position
(:mod:`.source`), and the limits the command line checks as well (:mod:`.limits`)."""
