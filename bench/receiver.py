"""A fast webhook receiver: answers every POST 204 at once and notes when each message arrived.

Run as its own process (`python -m bench.receiver PORT`), so that neither the worker nor the bare
loop it is compared with shares a core's time slices with it unfairly. Control paths:

- `GET /_stats`: `{"count": n}`, how many webhooks have arrived;
- `GET /_arrivals`: `[[webhook_id, monotonic_ns], ...]` (CLOCK_MONOTONIC is system-wide on Linux,
  so the harness may compare it with its own clock);
- `GET /_captured`: the first CAPTURE webhooks, whole (path, headers, body), for the bare loop to
  send again;
- `POST /_reset`: forget everything.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time

CAPTURE = 20_000
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


class State:
    def __init__(self) -> None:
        self.arrivals: list[tuple[str, int]] = []
        self.captured: list[dict] = []

    def control(self, method: str, path: str) -> bytes:
        if path == "/_stats":
            document: object = {"count": len(self.arrivals)}
        elif path == "/_arrivals":
            document = self.arrivals
        elif path == "/_captured":
            document = self.captured
        elif path == "/_reset" and method == "POST":
            self.__init__()
            document = {"count": 0}
        else:
            return b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        body = json.dumps(document).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        return head.encode() + b"\r\n\r\n" + body


class Receiver(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return  # the rest of the body is still on its way
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path, _ = lines[0].split(" ", 2)
            self.transport.write(self.answer(method, path, headers, body))

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if path.startswith("/_"):
            return self.state.control(method, path)
        arrived = time.monotonic_ns()
        self.state.arrivals.append((headers.get("webhook-id", ""), arrived))
        if len(self.state.captured) < CAPTURE:
            kept = {k: v for k, v in headers.items() if k.startswith(("webhook-", "content-type"))}
            body64 = base64.b64encode(body).decode()
            self.state.captured.append({"path": path, "headers": kept, "body": body64})
        return NO_CONTENT


async def serve(port: int) -> None:
    state = State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(state), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
