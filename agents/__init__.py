"""Who speaks: agents, their view of a conversation, and the backends that voice them."""
