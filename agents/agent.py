"""An agent: who speaks, with which model and persona, and how it sees the conversation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.backends.base import Message
from agents.backends.config import GenerateConfig


@dataclass(frozen=True, slots=True)
class Utterance:
    """What the agent view needs of a turn."""

    speaker: str
    content: str


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    model: str
    persona: str = ""
    opening: str | None = None
    max_turns: int | None = None
    options: GenerateConfig = field(default_factory=GenerateConfig)
    host: str | None = None

    def view(
        self,
        turns: Sequence[Utterance],
        *,
        label_others: bool,
        window: int | None = None,
        kickoff: str = "Please begin.",
    ) -> list[Message]:
        """The conversation from this agent's side, as chat messages.

        Its persona is the system message, its own turns are ``assistant`` and everyone
        else's are ``user`` (prefixed ``Name: `` when ``label_others``, i.e. when more than
        two agents talk). Consecutive turns by others merge into one user message, since
        many chat templates require roles to alternate (likewise one agent's turns in a
        row, when the others have reached their turn limits). Without a ``window`` the result
        only ever grows at the end between this agent's turns, which keeps the prompt
        prefix stable for the server's prompt cache.
        """
        visible = turns[-window:] if window else turns
        messages: list[Message] = []
        if self.persona:
            messages.append({"role": "system", "content": self.persona})
        for turn in visible:
            if turn.speaker == self.name:
                role, text = "assistant", turn.content
            else:
                role = "user"
                text = f"{turn.speaker}: {turn.content}" if label_others else turn.content
            last = messages[-1] if messages else None
            if last is not None and last["role"] == role:
                last["content"] = f"{last['content']}\n\n{text}"
            else:
                messages.append({"role": role, "content": text})  # type: ignore[typeddict-item]
        # Chat templates expect a user message before the first assistant one; an agent that
        # speaks first (or opened with a scripted line) is given the scenario's kickoff.
        first = 1 if self.persona else 0
        if len(messages) == first or messages[first]["role"] == "assistant":
            messages.insert(first, {"role": "user", "content": kickoff})
        return messages
