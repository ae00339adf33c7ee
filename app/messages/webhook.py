"""Webhook delivery: PURE retry planning and Standard Webhooks signing, then the HTTP send.

Nothing here touches the database; the worker owns the transaction around it.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

# httpx's timeouts bound each read, not the whole exchange: a receiver trickling one byte a
# second would hold a send open indefinitely. This bounds the whole attempt.
TOTAL_TIMEOUT_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 5.0
# At most this much of a response body is read (and thrown away: it is of no use, and may echo
# what was sent). Reading a small body lets the connection be reused; a larger one is cut off.
MAX_RESPONSE_BYTES = 64 * 1024
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, *, body: bytes) -> str:
    """One `webhook-signature` entry: v1,base64(HMAC-SHA256(key, "id.timestamp.body"))."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signatures(
    signing_secrets: Sequence[str], message_id: str, timestamp: int, *, body: bytes
) -> str:
    """The `webhook-signature` header: one entry per secret, space-separated, so that during a
    secret rotation's overlap a receiver holding either secret can verify."""
    if not signing_secrets:
        raise ValueError("a webhook is always signed")
    return " ".join(signature(s, message_id, timestamp, body=body) for s in signing_secrets)


# The webhook event type of each kind of message.
EVENT_TYPES = {
    "disclosure": "disclosure.created",
    "cancellation": "notice.cancelled",
    "consent_withdrawn": "consent.withdrawn",
    "receipt_overdue": "receipt.overdue",
    "engagement_overdue": "engagement.overdue",
    "engagement_at_risk": "engagement.at_risk",
    "care_update": "care_update.created",
}


def webhook_body(
    *,
    kind: str,
    message_id: str,
    notice_id: str,
    supersedes: str | None,
    sequence: int,
    jws: str,
    created_at: datetime,
) -> bytes:
    """The delivered JSON. Built from stored values only, so every retry sends the same bytes.

    `jws` is the stored message: a compact JWS, sent as `jws`, or (for a recipient with an
    encryption key) that JWS encrypted to it, a compact JWE of five parts, sent as `jwe`.
    """
    data: dict[str, object] = {"message_id": message_id, "notice_id": notice_id}
    if supersedes:
        data["supersedes"] = supersedes
    form = "jwe" if jws.count(".") == 4 else "jws"
    event = {
        "type": EVENT_TYPES[kind],
        "timestamp": created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {**data, "sequence": sequence, form: jws},
    }
    return json.dumps(event, separators=(",", ":")).encode()


# --- where a webhook may go ----------------------------------------------------------------


class DestinationRefused(ValueError):
    """A webhook URL that must not be called: wrong scheme, or an address that is not public."""


NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for: mapped, NAT64, 6to4 or Teredo. `::` and `::1`
    lie in ::/96 but are IPv6's own unspecified and loopback addresses (RFC 4291 2.5.5.1), not
    0.0.0.0 and 0.0.0.1: judged as themselves, `::1` is allowed by an allowance of ::1/128."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return None
    if address in NAT64 or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_allowed(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    """Public unicast addresses only, unless the operator allowed the network explicitly."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_allowed(embedded, allowed)
        if address.is_site_local:
            return False
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Destination:
    """Where one attempt connects: the vetted address, with the subscriber's host name kept for
    the Host header and TLS, so a second DNS answer (rebinding) cannot redirect the request."""

    url: str
    host: str
    sni_hostname: str | None


async def resolve_destination(url: str, allowed: Sequence[IPNetwork]) -> Destination:
    """Resolve the URL's host; refuse it unless every address it resolves to is allowed.

    Plain http is only for networks the operator allowed explicitly: anywhere else the signed
    (but not encrypted) message would cross the network in clear text. A host written as an IP
    address is its own answer, so its verdict is worked out once (_literal_destination)."""
    known = _literal_destination(url, tuple(allowed))
    if isinstance(known, str):
        raise DestinationRefused(known)
    if known is not None:
        return known
    parts, host, port = _split(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused("the host does not resolve") from exc
    addresses = sorted(
        {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos},
        key=lambda a: (a.version, int(a)),
    )
    return _vetted(parts, host, addresses, allowed=allowed)


@functools.lru_cache(maxsize=1024)
def _literal_destination(url: str, allowed: tuple[IPNetwork, ...]) -> Destination | str | None:
    """PURE: for a URL whose host is an IP address written out (no resolver: the answer cannot
    change), its Destination or the reason it is refused; None for a host name."""
    try:
        parts, host, _ = _split(url)
        if "%" in host or not _is_ip_literal(host):
            return None
        return _vetted(parts, host, [ipaddress.ip_address(host)], allowed=allowed)
    except DestinationRefused as exc:
        return str(exc)


def _split(url: str) -> tuple[SplitResult, str, int]:
    """The URL's parts, host and port, if it may be called at all: http(s), a host, and no
    credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationRefused("the URL must be http(s) with a host")
    if parts.username or parts.password:
        raise DestinationRefused("the URL must not carry credentials")
    try:
        port = parts.port
    except ValueError:
        raise DestinationRefused("the URL's port is not valid") from None
    return parts, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _vetted(
    parts: SplitResult, host: str, addresses: list[IPAddress], *, allowed: Sequence[IPNetwork]
) -> Destination:
    """PURE: where to connect, if every address the host stands for may be called."""
    if not addresses or not all(address_allowed(a, allowed) for a in addresses):
        raise DestinationRefused("the host resolves to an address that is not public")
    if parts.scheme == "http" and not all(any(a in n for n in allowed) for a in addresses):
        raise DestinationRefused("use https: plain http is only for allowed networks")
    vetted = addresses[0]
    literal = f"[{vetted}]" if vetted.version == 6 else str(vetted)
    suffix = f":{parts.port}" if parts.port else ""  # as written: none for the default port
    named = f"[{host}]" if ":" in host else host  # an IPv6 host keeps its brackets (RFC 9110)
    return Destination(
        url=urlunsplit((parts.scheme, literal + suffix, parts.path or "/", parts.query, "")),
        host=named + suffix,
        sni_hostname=None if _is_ip_literal(host) else host,
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after: str | None = None  # the receiver's Retry-After header, as given


async def send(
    client: httpx.AsyncClient,
    *,
    url: str,
    signing_secrets: Sequence[str],
    message_id: str,
    body: bytes,
    allowed: Sequence[IPNetwork],
    deadline_seconds: float = TOTAL_TIMEOUT_SECONDS,
) -> Outcome:
    """One attempt, within a hard deadline from resolution to the end of the response.

    2xx is delivered; anything else, redirects included, is a failure. At most
    MAX_RESPONSE_BYTES of the response body are read, and none of it is kept.
    """
    started = time.monotonic()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures(signing_secrets, message_id, timestamp, body=body),
    }
    try:
        async with asyncio.timeout(deadline_seconds):
            destination = await resolve_destination(url, allowed)
            extensions = (
                {"sni_hostname": destination.sni_hostname} if destination.sni_hostname else {}
            )
            async with client.stream(
                "POST",
                destination.url,
                content=body,
                headers={**headers, "host": destination.host},
                extensions=extensions,
                follow_redirects=False,
            ) as response:
                status = response.status_code
                retry_after = response.headers.get("retry-after")
                await _drain(response)
    except DestinationRefused as exc:
        return Outcome(False, None, _ms(started), f"refused: {exc}")
    except TimeoutError:
        return Outcome(False, None, _ms(started), "timed out")
    except httpx.HTTPError as exc:
        return Outcome(False, None, _ms(started), type(exc).__name__)
    except Exception as exc:  # anything else the receiver's answer provokes is a failed attempt
        return Outcome(False, None, _ms(started), f"unexpected {type(exc).__name__}")
    ok = 200 <= status < 300
    error = None if ok else "redirect (not followed)" if 300 <= status < 400 else "non-2xx response"
    return Outcome(ok, status, _ms(started), error, None if ok else retry_after)


async def _drain(response: httpx.Response) -> None:
    """Read and drop the body, up to the bound; past it, stop (the connection is then closed)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > MAX_RESPONSE_BYTES:
            return


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
