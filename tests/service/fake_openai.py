"""A local OpenAI-compatible server on a real socket, answering from a reply function.

For outage tests: it can serve completions, chat or both, and can be made to fail (503) from a
given moment on (``dead``), or to die after it answered the instruction stage of a batch.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from generators.backends.openai_endpoints import CONTINUE_INSTRUCTION

MODEL = "served-model"
INSTRUCTION_PROMPT = "Come up with a series of tasks"


@dataclass
class FakeOpenAI:
    """What the server does; change the fields while it runs."""

    replies: Callable[[str], str]
    completions: bool = True  # serves /v1/completions (else 404 there)
    chat: bool = False  # serves /v1/chat/completions (else 404 there)
    dead: bool = False  # every request answered 503
    die_after_instructions: bool = False  # dead once an instruction prompt was answered
    seen: list[str] = field(default_factory=list)  # the prompts answered
    url: str = ""

    def _reply(self, prompt: str) -> str:
        return "!" if prompt == "Hi" else self.replies(prompt)  # the backend's route probe

    def answer(self, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        if self.dead:
            return 503, {}
        if path.endswith("/completions") and "/chat/" not in path and self.completions:
            prompt = str(body["prompt"])
            text = self._reply(prompt)
            choice: dict[str, object] = {"text": text, "finish_reason": "stop"}
        elif path.endswith("/chat/completions") and self.chat:
            messages = body["messages"]
            assert isinstance(messages, list)
            prompt = str(messages[-1]["content"]).removeprefix(CONTINUE_INSTRUCTION + "\n\n")
            text = self._reply(prompt)
            choice = {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        else:
            return 404, {}
        self.seen.append(prompt)
        if self.die_after_instructions and prompt.startswith(INSTRUCTION_PROMPT):
            self.dead = True
        usage = {"prompt_tokens": 1, "completion_tokens": 1}
        return 200, {"choices": [choice], "usage": usage}


@contextmanager
def serving(fake: FakeOpenAI, port: int = 0) -> Iterator[FakeOpenAI]:
    """Run ``fake`` on 127.0.0.1:``port`` (0: any free port) until the block ends."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if fake.dead:
                self._send(503, {})
            elif self.path == "/v1/models":
                self._send(200, {"data": [{"id": MODEL, "root": "/models/fake"}]})
            elif self.path == "/version":
                self._send(200, {"version": "0.0-fake"})
            elif self.path == "/health":
                self._send(200, {})
            else:
                self._send(404, {})

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(size) or b"{}")
            self._send(*fake.answer(self.path, body))

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
