"""Webhook delivery planning (app/messages/webhook.py): retries, signing, body, where a webhook may
go."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.messages.webhook import (
    DestinationRefused,
    address_allowed,
    new_secret,
    resolve_destination,
    signature,
    webhook_body,
)

PROPERTY = settings(max_examples=150, deadline=None)

# --- signing -----------------------------------------------------------------------------------

BODY = webhook_body(
    kind="disclosure",
    message_id="msg_1",
    notice_id="notice_1",
    supersedes=None,
    sequence=17,
    jws="aaa.bbb.ccc",
    created_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
)


def headers_for(secret: str, message_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body=body),
    }


def test_signature_verifies_with_standardwebhooks() -> None:
    secret = new_secret()
    headers = headers_for(secret, "msg_1", BODY)
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["webhook-signature"])
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda s, h, b: (s, h, b.replace(b"17", b"18")), id="body"),
        pytest.param(lambda s, h, b: (new_secret(), h, b), id="other-secret"),
        pytest.param(lambda s, h, b: (s, {**h, "webhook-id": "msg_2"}, b), id="message-id"),
        pytest.param(
            lambda s, h, b: (
                s,
                {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)},
                b,
            ),
            id="timestamp",
        ),
    ],
)
def test_signature_fails_when_anything_changes(tamper) -> None:
    secret = new_secret()
    verifier_secret, headers, body = tamper(secret, headers_for(secret, "msg_1", BODY), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(verifier_secret).verify(body, headers)


@PROPERTY
@given(
    message_id=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=40),
    body=st.text(max_size=300).map(str.encode),
    key=st.binary(min_size=24, max_size=64),
)
def test_property_signature_verifies(message_id: str, body: bytes, key: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    Webhook(secret).verify(body, headers_for(secret, message_id, body), json_parse=False)


def test_new_secret_is_a_whsec_of_32_random_bytes() -> None:
    secrets_ = {new_secret() for _ in range(20)}
    assert len(secrets_) == 20
    for secret in secrets_:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


# --- the webhook body --------------------------------------------------------------------------


def body_for(**changes) -> bytes:
    values = {
        "kind": "disclosure",
        "supersedes": None,
        "message_id": "0b8e6f9a-6a0c-4c1b-9d0e-1f2a3b4c5d6e",
        "notice_id": "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "sequence": 17,
        "jws": "eyJhbGciOiJFUzI1NiJ9.e30.sig",
        "created_at": datetime(2026, 12, 1, 9, 0, 5, 123456, tzinfo=UTC),
    }
    values.update(changes)
    return webhook_body(**values)


def test_webhook_body_is_byte_identical_for_the_same_inputs() -> None:
    assert body_for() == body_for()
    assert body_for() != body_for(sequence=18)


def test_webhook_body_timestamp_is_utc_whatever_zone_it_is_given() -> None:
    an_hour_east = timezone(timedelta(hours=1))
    shifted = datetime(2026, 12, 1, 10, 0, 5, tzinfo=an_hour_east)
    assert json.loads(body_for(created_at=shifted))["timestamp"] == "2026-12-01T09:00:05Z"


def test_webhook_body_shape() -> None:
    event = json.loads(body_for())
    assert event == {
        "type": "disclosure.created",
        "timestamp": "2026-12-01T09:00:05Z",
        "data": {
            "message_id": "0b8e6f9a-6a0c-4c1b-9d0e-1f2a3b4c5d6e",
            "notice_id": "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "sequence": 17,
            "jws": "eyJhbGciOiJFUzI1NiJ9.e30.sig",
        },
    }


@PROPERTY
@given(
    created_at=st.datetimes(datetime(2000, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)),
    sequence=st.integers(1, 2**53),
)
def test_property_webhook_body_timestamp_is_rfc3339_utc(
    created_at: datetime, sequence: int
) -> None:
    event = json.loads(body_for(created_at=created_at, sequence=sequence))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["timestamp"])
    parsed = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert parsed == created_at.replace(microsecond=0)
    assert event["data"]["sequence"] == sequence


# --- where a webhook may go --------------------------------------------------------------------

# fmt: off
REFUSED = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "255.255.255.255",  # noqa: S104
    "::1", "fe80::1", "fc00::1", "ff02::1", "2001:db8::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    # IPv6 forms of private IPv4: NAT64 (10.0.0.1, the metadata address), 6to4 (127.0.0.1),
    # Teredo (a documentation address); and deprecated site-local.
    "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "fec0::1",
]
# fmt: on
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::"]
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(
    ("address", "expected"), [*((a, False) for a in REFUSED), *((a, True) for a in ALLOWED)]
)
def test_address_allowed_without_allowed_networks(address: str, expected: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address), ()) is expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::ffff:127.0.0.1", True), ("10.1.2.3", False)],
)
def test_address_allowed_with_loopback_allowed(address: str, expected: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address), LOOPBACK) is expected


IPV6_LOOPBACK = (ipaddress.ip_network("::1/128"),)


@pytest.mark.parametrize(
    ("address", "allowed", "expected"),
    [
        ("::1", IPV6_LOOPBACK, True),
        ("::1", LOOPBACK, False),  # 127.0.0.0/8 is not IPv6's loopback
        ("::1", (ipaddress.ip_network("0.0.0.0/8"),), False),  # nor is ::1 0.0.0.1
        ("::", IPV6_LOOPBACK, False),
        ("::ffff:127.0.0.1", IPV6_LOOPBACK, False),  # IPv4's loopback, in IPv6 form
        ("::7f00:1", IPV6_LOOPBACK, False),  # 127.0.0.1, IPv4-compatible
    ],
)
def test_ipv6_loopback_is_allowed_by_its_own_network_only(
    address: str, allowed: tuple, expected: bool
) -> None:
    assert address_allowed(ipaddress.ip_address(address), allowed) is expected


async def test_a_bracketed_ipv6_host_is_called_when_allowed() -> None:
    url = "http://[::1]:9000/hooks?x=1"
    destination = await resolve_destination(url, IPV6_LOOPBACK)
    assert (destination.url, destination.host, destination.sni_hostname) == (
        url,
        "[::1]:9000",  # a Host header names an IPv6 address in brackets
        None,
    )
    for refusing in ((), LOOPBACK):
        with pytest.raises(DestinationRefused):
            await resolve_destination(url, refusing)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://user:pass@8.8.8.8/hook",
        "https://user@8.8.8.8/hook",
        "http://no-such-host.invalid/hook",
        "http://localhost/",
        "http://127.0.0.1:8080/x",
        "http://[::1]/x",
        "http:///no-host",
        "http://8.8.8.8:99999/port-out-of-range",
        # A public address, but plain http: only allowed networks may be sent clear text.
        "http://8.8.8.8/hook",
    ],
)
async def test_resolve_destination_refuses(url: str) -> None:
    with pytest.raises(DestinationRefused):
        await resolve_destination(url, ())


async def test_resolve_destination_refuses_credentials_even_to_an_allowed_network() -> None:
    with pytest.raises(DestinationRefused):
        await resolve_destination("http://user:pass@127.0.0.1:8080/x", LOOPBACK)


async def test_resolve_destination_refuses_other_private_networks_when_loopback_allowed() -> None:
    with pytest.raises(DestinationRefused):
        await resolve_destination("http://10.1.2.3/x", LOOPBACK)


@pytest.mark.parametrize(
    ("url", "pinned", "host", "sni"),
    [
        ("http://127.0.0.1:8080/x?a=1", "http://127.0.0.1:8080/x?a=1", "127.0.0.1:8080", None),
        ("https://127.0.0.1/x", "https://127.0.0.1/x", "127.0.0.1", None),
        ("https://8.8.8.8", "https://8.8.8.8/", "8.8.8.8", None),
        ("http://localhost:9/h", "http://127.0.0.1:9/h", "localhost:9", "localhost"),
    ],
)
async def test_resolve_destination_pins_the_vetted_address_and_keeps_the_host(
    url: str, pinned: str, host: str, sni: str | None
) -> None:
    allowed = (*LOOPBACK, ipaddress.ip_network("::1/128"))
    destination = await resolve_destination(url, allowed)
    assert (destination.url, destination.host) == (pinned, host)
    assert destination.sni_hostname == sni


@pytest.mark.parametrize(
    ("url", "pinned"),
    [
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("https://[2001:4860:4860::8888]/x", "https://[2001:4860:4860::8888]/x"),
    ],
)
async def test_an_ip_address_in_the_url_is_vetted_without_the_resolver(
    url: str, pinned: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop would run getaddrinfo in a thread for every attempt: a literal needs none."""

    async def no_resolver(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("resolved an IP literal")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_resolver)
    allowed = (*LOOPBACK, ipaddress.ip_network("::1/128"))
    assert (await resolve_destination(url, allowed)).url == pinned
    with pytest.raises(DestinationRefused):
        await resolve_destination("http://10.1.2.3/x", allowed)
