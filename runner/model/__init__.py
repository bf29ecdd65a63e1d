"""A model bound to an engine, and the policy every call to it follows: the backend pool
(:mod:`.pool`), one reply with timeouts and retries (:mod:`.generate`), and missing
models explained (:mod:`.missing`)."""
