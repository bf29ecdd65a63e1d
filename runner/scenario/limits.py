"""How large a scenario may be: checked by the schema and by the command line's options."""

MAX_TURNS = 10_000  # turns in one conversation
MAX_REPEAT = 1_000_000  # runs of one scenario
MAX_AGENTS = 64
MAX_NAME = 64  # characters in an agent's name
