"""Reading a backend's reply stream back in the backend tests."""

from __future__ import annotations

from agents.backends.base import Backend, ChatRequest, Delta, Final


async def collect(backend: Backend, request: ChatRequest) -> tuple[list[str], Final]:
    """The text deltas of one reply, and its one final event."""
    deltas: list[str] = []
    finals: list[Final] = []
    async for event in backend.chat(request):
        if isinstance(event, Delta):
            deltas.append(event.text)
        else:
            finals.append(event)
    assert len(finals) == 1
    return deltas, finals[0]
