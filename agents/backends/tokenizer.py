"""Token counts from an OpenAI-compatible server's own tokenizer, for servers whose streams
carry no usage (llama-cpp-python's server ignores ``stream_options.include_usage``).

Only the reply is counted: it is text the server tokenizes as it generated it. The prompt
is not, because the server wraps the messages in its chat template first, which cannot be
seen from outside; its count stays unknown (None) rather than a guess.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from agents.backends.hostpool import Host
from agents.backends.openai_wire import TOKENIZERS, server_root, token_list

log = structlog.get_logger("sparring.openai")


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    field: str  # the JSON key the text goes in
    offset: int  # tokens it adds to any text (a BOS token), taken off every count


class Tokenizers:
    """Finds, once per host, which tokenizer endpoint the server has (if any)."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        headers: Callable[[Host], dict[str, str] | None],
        wait: float,
    ) -> None:
        self._session = session
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=wait)
        self._found: dict[str, Endpoint | None] = {}
        self._lock = asyncio.Lock()

    async def count(self, target: Host, model: str, text: str) -> int | None:
        """Tokens in ``text`` by the server's count, or None when it cannot say."""
        endpoint = await self._endpoint(target, model)
        if endpoint is None:
            return None
        tokens = await self._tokenize(target, endpoint.url, {endpoint.field: text, "model": model})
        return None if tokens is None else max(0, len(tokens) - endpoint.offset)

    async def _endpoint(self, target: Host, model: str) -> Endpoint | None:
        async with self._lock:  # one probe per host, however many turns ask at once
            if target.url not in self._found:
                self._found[target.url] = found = await self._probe(target, model)
                if found is None:
                    log.warning(
                        "token counts unknown: the server reports no usage and has no "
                        "tokenizer endpoint",
                        host=target.url,
                    )
                else:
                    log.info(
                        "the server reports no usage: counting reply tokens with its tokenizer",
                        host=target.url,
                        endpoint=found.url,
                    )
            return self._found[target.url]

    async def _probe(self, target: Host, model: str) -> Endpoint | None:
        for path, field in TOKENIZERS:
            url = server_root(target.url) + path
            # The empty text's tokens are what the endpoint adds to every text.
            tokens = await self._tokenize(target, url, {field: "", "model": model})
            if tokens is not None:
                return Endpoint(url, field, len(tokens))
        return None

    async def _tokenize(self, target: Host, url: str, body: dict[str, Any]) -> list[Any] | None:
        try:
            async with self._session().post(
                url, json=body, headers=self._headers(target), timeout=self._timeout
            ) as r:
                if r.status != 200:
                    return None
                return token_list(json.loads(await r.text()))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
