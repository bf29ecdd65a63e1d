"""Running many conversations: the plan (:mod:`.plan`), the orchestrator
(:mod:`.orchestrator`), a batch from the command line (:mod:`.batch`), its tally
(:mod:`.tally`), the preview of first requests (:mod:`.preview`) and the replay of one
transcript (:mod:`.replay`)."""
