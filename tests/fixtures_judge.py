"""A stub LLM judge on localhost: an OpenAI-compatible chat endpoint (the one thing here that stands in for a
remote service). ``StubJudge(grade=...)`` answers every request with ``grade(user_message)`` (the reply's
content), or with the queued ``replies`` ``(status, content)`` first; ``seen`` records (path, Authorization,
body) of every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def scores(value: float, reason: str = "stub") -> str:
    """A judge reply in the form the gpteval metric parses."""
    return json.dumps({"answer_score": [[value]], "reason": reason})


class StubJudge:
    """The stub judge on a free localhost port, as a context manager; ``url`` ends in /v1."""

    def __init__(self, grade: Callable[[str], str] | None = None):
        self.grade = grade or (lambda user: "{}")
        self.replies: list[tuple[int, str]] = []
        self.seen: list[tuple[str, str | None, dict]] = []

    @property
    def calls(self) -> int:
        return len(self.seen)

    def __enter__(self) -> StubJudge:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                judge.seen.append((self.path, self.headers.get("Authorization"), body))
                status, content = judge.replies.pop(0) if judge.replies else (
                    200, judge.grade(body["messages"][-1]["content"]))
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
