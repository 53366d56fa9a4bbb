"""The ``echo`` backend: the output is the rendered prompt itself, at once.

It calls no model, so a suite's assertions can be checked on fixed texts (promptfoo's
``echo`` provider does the same): with a prompt of ``{{ text }}`` every case's output is
its ``text`` variable. A prompt of one message echoes that message's content; a longer
chat echoes the messages as JSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from workbench.backends.base import Backend, ChatRequest, Chunk, Done


class EchoBackend(Backend):
    """Answers with the prompt it was given."""

    name = "echo"
    max_concurrency = 64
    free = True

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk | Done]:
        messages = request.messages
        if len(messages) == 1:
            text = messages[0].get("content", "")
        else:
            text = json.dumps(messages, indent=2, ensure_ascii=False)  # as promptfoo's echo
        yield Chunk(text, self.clock())
        yield Done(input_tokens=None, output_tokens=None)

    def describe(self) -> dict[str, Any]:
        return {"provider": "echo"}
