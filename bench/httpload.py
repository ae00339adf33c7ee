"""A lean HTTP/1.1 load generator: keep-alive connections over asyncio streams.

httpx costs about as much CPU per request as a bare FastAPI endpoint spends serving one, and the
load generator shares this machine's two cores with the server under test. So the load is made
here with pre-built request bytes and a minimal response parser, the same for the exchange and
for the baseline it is compared with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

Request = tuple[str, str, dict[str, str], bytes]  # method, path, headers, body


@dataclass(frozen=True)
class Sample:
    sent_ns: int  # time.monotonic_ns() as the request was written
    done_ns: int  # ... and as its whole response had been read
    status: int
    body: bytes
    tag: object = None

    @property
    def latency_ms(self) -> float:
        return (self.done_ns - self.sent_ns) / 1e6


KEEP_IDLE = 2.0  # seconds a keep-alive connection is reused after; uvicorn closes at 5


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"content-length: {len(body)}")
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self._writer.drain()
        return await self._response()

    async def _response(self) -> tuple[int, bytes]:
        assert self._reader is not None
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        body = await (self._chunks() if chunked else self._reader.readexactly(length))
        if close:
            self.close()
        return status, body

    async def _chunks(self) -> bytes:
        assert self._reader is not None
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n")).strip(), 16):
            parts.append(await self._reader.readexactly(size + 2))
        await self._reader.readuntil(b"\r\n")
        return b"".join(p[:-2] for p in parts)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def send(connection: Connection, request: Request, tag: object = None) -> Sample:
    method, path, headers, body = request
    sent = time.monotonic_ns()
    status, answer = await connection.request(method, path, headers, body)
    return Sample(sent, time.monotonic_ns(), status, answer, tag)


async def closed_loop(
    host: str,
    port: int,
    make: Callable[[], tuple[Request, object]],
    *,
    clients: int,
    seconds: float | None = None,
    requests: int | None = None,
    reconnect_every: int | None = None,
) -> tuple[list[Sample], float]:
    """`clients` connections, each sending its next request as soon as the last is answered,
    for `seconds` or until `requests` have been sent: the samples and the elapsed seconds.

    With `reconnect_every`, each client opens a new connection after that many requests (the
    clients at staggered points): behind one port served by several processes, a connection
    stays with the process that accepted it, and a burst of new ones can all land on one
    process; connections made again and again go to whichever process accepts first, as new
    clients would."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds if seconds else float("inf")
    budget = [requests if requests is not None else float("inf")]
    samples: list[Sample] = []

    async def client(index: int) -> None:
        connection = Connection(host, port)
        sent = index * (reconnect_every or 0) // clients  # staggered
        try:
            while loop.time() < deadline and budget[0] > 0:
                budget[0] -= 1
                request, tag = make()
                samples.append(await send(connection, request, tag))
                sent += 1
                if reconnect_every and sent % reconnect_every == 0:
                    connection.close()  # the next request connects again
        finally:
            connection.close()

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return samples, time.monotonic() - started


async def open_loop(
    host: str,
    port: int,
    make: Callable[[], tuple[Request, object]],
    *,
    rate: float,
    seconds: float,
) -> list[Sample]:
    """Requests sent at a steady `rate` a second whatever the answers' pace (no coordinated
    omission), each on a keep-alive connection idle for less than KEEP_IDLE seconds (the
    server closes those idle longer) or a new one. A request whose connection fails is a
    sample with status 0, never lost."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[Connection, float]] = []
    samples: list[Sample] = []
    pending: set[asyncio.Task] = set()

    async def one(request: Request, tag: object) -> None:
        connection, since = idle.pop() if idle else (Connection(host, port), loop.time())
        if loop.time() - since > KEEP_IDLE:
            connection.close()  # reconnects on its next request
        sent = time.monotonic_ns()
        try:
            samples.append(await send(connection, request, tag))
        except (OSError, asyncio.IncompleteReadError):
            connection.close()
            samples.append(Sample(sent, time.monotonic_ns(), 0, b"", tag))
        idle.append((connection, loop.time()))

    start = loop.time()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(*make()))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    for connection, _ in idle:
        connection.close()
    return samples


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least the first
    return ordered[int(rank) - 1]
