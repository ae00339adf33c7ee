"""A real webhook receiver on loopback: records every request, answers from a script."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024  # answer bodies are written a piece at a time, counting what was taken


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    url: str
    # Status codes to answer with, in order; once spent, every request gets `then`.
    script: list[int] = field(default_factory=list)
    then: int = 204
    delay: float = 0.0  # seconds to stall before answering
    answer_headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    answer_body: bytes = b""  # sent with every answer
    requests: list[Received] = field(default_factory=list)
    # How much of the answer bodies the senders took: a sender that stops reading and hangs
    # up leaves the rest unsent (less what the sockets' buffers take).
    answer_bytes_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


@contextmanager
def running_receiver(
    script: list[int] | None = None, then: int = 204, delay: float = 0.0, host: str = "127.0.0.1"
) -> Iterator[Receiver]:
    """A receiver listening on host (an IPv4 or IPv6 loopback address), on a free port."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = state["receiver"]
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(receiver.delay)
            with receiver.lock:
                status = receiver.script.pop(0) if receiver.script else receiver.then
                receiver.requests.append(
                    Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, status
                    )
                )
            self.send_response(status)
            for name, value in receiver.answer_headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(receiver.answer_body)))
            self.end_headers()
            body = memoryview(receiver.answer_body)
            with contextlib.suppress(OSError):  # the sender may stop reading, as it should
                for start in range(0, len(body), CHUNK):
                    self.wfile.write(body[start : start + CHUNK])
                    with receiver.lock:
                        receiver.answer_bytes_sent += len(body[start : start + CHUNK])

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = Server((host, 0), Handler)
    named = f"[{host}]" if ":" in host else host
    state["receiver"] = Receiver(
        f"http://{named}:{server.server_address[1]}/hooks", list(script or []), then, delay
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
