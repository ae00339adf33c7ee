"""A notice after intake: amended into new versions, cancelled, or recorded and sent to nobody.

On both databases. Signed messages are checked with PyJWT against the published JWKS only;
webhooks go to a real loopback receiver.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from app.notices import retention
from app.worker.loop import http_client, run_once
from tests.helpers.messages import inbox, subscribe, verified
from tests.helpers.notices import CONCERNS, NO_SMS, PLAN, amend, cancel, edited, ok, sent, tracked
from tests.helpers.receiver import running_receiver

RECIPIENTS = {"N07", "SMS-LEEDS"}  # whom the example notice discloses to
CANCELLATION_CLAIMS = {"iss", "aud", "iat", "jti", "notice_id", "supersedes", "reason"}


def history(status: dict[str, Any]) -> list[tuple]:
    return [(v["id"], v["version"], v["status"], v["status_reason"]) for v in status["history"]]


async def assert_cancellation(api, item, code, *, notice_id, supersedes, reason) -> None:
    """An inbox item is a signed cancellation of `supersedes`, for this reason, and no more."""
    assert item["kind"] == "cancellation"
    assert (item["notice_id"], item["supersedes"]) == (notice_id, supersedes)
    header, claims = await verified(api, item["jws"], code)
    assert header["typ"] == "cancellation+jwt" and set(claims) == CANCELLATION_CLAIMS
    assert (claims["jti"], claims["notice_id"]) == (item["id"], notice_id)
    assert (claims["supersedes"], claims["reason"]) == (supersedes, reason)


async def log(world) -> list[dict[str, Any]]:
    """Every log entry about a notice, in the order written, but the consents it carried (which
    become consent records of their own, tested with them)."""
    headers = await world.headers("AUDIT")
    response = await world.api.get("/v1/audit/entries", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items = response.json()["items"]
    return [e for e in items if e["notice_id"] and e["action"] != "consent.recorded"]


async def notices(world) -> list[tuple]:
    return await world.sql(
        "SELECT version, status, status_reason, cancelled_at, purged_at FROM release_notice"
        " ORDER BY version, status"
    )


# --- amendments ------------------------------------------------------------------------------


async def test_an_amendment_is_a_new_version_superseding_each_recipients_message(
    world, api, example
):
    first = ok(await world.post_notice(example))
    body = edited(example, {"/safeguarding/concerns": CONCERNS})
    second = ok(await amend(world, first["id"], body))

    assert second["id"] != first["id"]
    assert (second["series_id"], second["version"]) == (first["id"], 2)
    assert (second["status"], second["status_reason"]) == ("accepted", None)
    before, after = sent(first), sent(second)
    assert set(after) == RECIPIENTS and sent(second, "cancellation") == {}

    old, new = await tracked(world, first["id"]), await tracked(world, second["id"])
    assert (old["status"], old["status_reason"]) == ("superseded", "amended")
    assert (old["superseded_by"], old["supersedes"]) == (second["id"], None)
    assert (new["supersedes"], new["superseded_by"]) == (first["id"], None)
    assert (new["cancelled_at"], new["purged_at"]) == (None, None)
    assert sent(new) == after and sent(old) == before
    assert sent(new, "disclosure", "supersedes") == before
    expected = [(first["id"], 1, "superseded", "amended"), (second["id"], 2, "accepted", None)]
    assert history(old) == history(new) == expected

    for code in RECIPIENTS:
        items = await inbox(world, code)
        assert [(m["id"], m["kind"], m["notice_id"], m["supersedes"]) for m in items] == [
            (before[code], "disclosure", first["id"], None),
            (after[code], "disclosure", second["id"], before[code]),
        ]
        header, claims = await verified(api, items[1]["jws"], code)
        assert header["typ"] == "disclosure+jwt"
        assert (claims["jti"], claims["notice_id"]) == (after[code], second["id"])
        assert (claims["supersedes"], claims["sub"]) == (before[code], "A1234BC")
        assert claims["disclosure"]["safeguarding"]["concerns"] == CONCERNS
        _, original = await verified(api, items[0]["jws"], code)
        assert "supersedes" not in original
        assert original["disclosure"]["safeguarding"] == example["safeguarding"]


# How a recipient can lose its disclosure in an amendment: (changes, who loses, who is new).
LOSSES = {
    "removed from the release plan": (NO_SMS, "SMS-LEEDS", None),
    "its consent refused": ({"/consent/0/decision": "refused"}, "SMS-LEEDS", None),
    "another probation provider": ({PLAN + "probation_provider": "N99"}, "N07", "N99"),
}


@pytest.mark.parametrize("case", list(LOSSES))
async def test_a_recipient_that_loses_its_disclosure_gets_a_cancellation(world, api, example, case):
    changes, lost, newcomer = LOSSES[case]
    first = ok(await world.post_notice(example))
    second = ok(await amend(world, first["id"], edited(example, changes)))
    before, cancelled = sent(first), sent(second, "cancellation")

    assert list(cancelled) == [lost]
    disclosed = {code: m for code, m in sent(second).items() if m}
    assert set(disclosed) == RECIPIENTS - {lost} | ({newcomer} if newcomer else set())
    items = await inbox(world, lost)
    if case == "its consent refused":  # a refusal takes effect at once, as a withdrawal does
        withdrawn = items.pop(1)
        assert (withdrawn["kind"], withdrawn["supersedes"]) == ("consent_withdrawn", before[lost])
        assert items[0]["jws"] is None and items[0]["revoked_at"] is None  # withheld from now
    assert [m["id"] for m in items] == [before[lost], cancelled[lost]]
    amended = {"notice_id": second["id"], "reason": "amended_not_shared"}
    await assert_cancellation(api, items[1], lost, supersedes=before[lost], **amended)
    status = await tracked(world, second["id"])
    assert sent(status, "cancellation") == cancelled
    assert sent(status, "cancellation", "supersedes") == {lost: before[lost]}
    if newcomer:  # a recipient new to the series supersedes nothing
        [item] = await inbox(world, newcomer)
        assert (item["id"], item["supersedes"]) == (disclosed[newcomer], None)
        assert "supersedes" not in (await verified(api, item["jws"], newcomer))[1]


async def test_an_amendment_to_a_release_not_into_the_community_cancels_every_disclosure(
    world, api, example
):
    first = ok(await world.post_notice(example))
    changes = {"/release/reason": "deported", PLAN + "probation_provider": "N00"}
    second = ok(await amend(world, first["id"], edited(example, changes)))

    assert (second["status"], second["status_reason"]) == ("not_routed", "release_reason_deported")
    assert set(sent(second, "cancellation")) == RECIPIENTS and sent(second) == {}
    for code in RECIPIENTS:
        [_, item] = await inbox(world, code)
        assert item["id"] == sent(second, "cancellation")[code]
        amended = {"notice_id": second["id"], "reason": "amended_not_shared"}
        await assert_cancellation(api, item, code, supersedes=sent(first)[code], **amended)
    assert (await world.counts())["disclosure"] == 2  # the first version's only
    entries = [e for e in await log(world) if e["notice_id"] == second["id"]]
    steps = [(e["action"], e["details"].get("kind")) for e in entries]
    expected = [("notice.amended", None), ("notice.not_routed", None)]
    assert steps == expected + [("message.signed", "cancellation")] * 2
    status = await tracked(world, second["id"])
    assert sent(status, "cancellation", "supersedes") == sent(first)
    assert history(status)[-1] == (second["id"], 2, "not_routed", "release_reason_deported")


# --- cancellations ---------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["entered_in_error", "release_cancelled", "other"])
async def test_a_cancellation_tells_every_recipient_holding_a_disclosure(
    world, api, example, reason
):
    first = ok(await world.post_notice(example))
    cancelled = ok(await cancel(world, first["id"], reason))

    assert (cancelled["id"], cancelled["version"]) == (first["id"], 1)
    assert (cancelled["status"], cancelled["status_reason"]) == ("cancelled", f"cancelled_{reason}")
    told = sent(cancelled, "cancellation")
    assert set(told) == RECIPIENTS and sent(cancelled) == {}
    for code in RECIPIENTS:
        [_, item, *rest] = await inbox(world, code)
        assert item["id"] == told[code]
        await assert_cancellation(
            api, item, code, notice_id=first["id"], supersedes=sent(first)[code], reason=reason
        )
        # Entered in error, its consents are void: what relied on one is withdrawn as well.
        relied = reason == "entered_in_error" and code == "SMS-LEEDS"
        assert [(m["kind"], m["supersedes"]) for m in rest] == [
            ("consent_withdrawn", item["supersedes"])
        ] * relied
    status = await tracked(world, first["id"])
    assert status["cancelled_at"] is not None and status["superseded_by"] is None
    assert history(status) == [(first["id"], 1, "cancelled", f"cancelled_{reason}")]
    assert sent(status, "cancellation") == told


# --- what is refused, changing nothing -------------------------------------------------------


async def series(world, example) -> dict[str, str]:
    """Notices in each closed state, and an open one: their ids by what they are now."""
    purged = ok(await world.post_notice(example))
    async with world.sessions() as session, session.begin():  # the oldest notice, past retention
        await retention.purge(session, older_than=timedelta(0), now=datetime.now(UTC), limit=1)
    first = ok(await world.post_notice(example))
    latest = ok(await amend(world, first["id"], example))
    gone = ok(await world.post_notice(example))
    ok(await cancel(world, gone["id"]))
    assert (await tracked(world, purged["id"]))["purged_at"] is not None
    closed = {"superseded": first["id"], "cancelled": gone["id"], "purged": purged["id"]}
    return {**closed, "latest": latest["id"], "unknown": str(uuid.uuid4())}


OTHER_PERSON = {"/person/noms_number": "B9876CD"}
# fmt: off
# case: (what is asked, of which notice, by whom, status, members the problem must have). In
# the expected members "@role" is that notice's id; "errors" lists the failing pointers.
REFUSALS = {
    "amend a superseded version": ("amend", "superseded", "MDI", 409,
        {"latest_version": "@latest", "notice_status": "superseded"}),
    "cancel a superseded version": ("cancel", "superseded", "MDI", 409,
        {"latest_version": "@latest", "notice_status": "superseded"}),
    "amend a cancelled notice": ("amend", "cancelled", "MDI", 409, {"notice_status": "cancelled"}),
    "cancel a cancelled notice": ("cancel", "cancelled", "MDI", 409,
        {"notice_status": "cancelled"}),
    "amend a purged notice": ("amend", "purged", "MDI", 409, {"title": "Notice purged"}),
    "cancel a purged notice": ("cancel", "purged", "MDI", 409, {"title": "Notice purged"}),
    "amend another prison's notice": ("amend", "latest", "LPI", 404, {}),
    "cancel another prison's notice": ("cancel", "latest", "LPI", 404, {}),
    "amend an unknown notice": ("amend", "unknown", "MDI", 404, {}),
    "cancel an unknown notice": ("cancel", "unknown", "MDI", 404, {}),
    "cancel for an unknown reason": ("cancel:bored", "latest", "MDI", 422, {"errors": ["/reason"]}),
    "amend to another person": ("amend:other", "latest", "MDI", 422,
        {"errors": ["/person/noms_number"]}),
}
# fmt: on


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_refused_change_is_a_problem_and_changes_nothing(world, example, case):
    asked, target, code, status, expected = REFUSALS[case]
    ids = await series(world, example)
    await world.headers(code)  # its client and token, made before the counting
    counts, rows = await world.counts(), await notices(world)

    body = edited(example, {"/release/prison_code": code})  # its own prison, so intake passes
    if asked == "amend":
        response = await amend(world, ids[target], body, code)
    elif asked == "amend:other":
        response = await amend(world, ids[target], edited(body, OTHER_PERSON), code)
    else:
        reason = asked.partition(":")[2] or "entered_in_error"
        response = await cancel(world, ids[target], reason, code)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    for member, value in expected.items():
        if member == "errors":
            assert [e["pointer"] for e in problem["errors"]] == value
        else:
            assert problem[member] == (ids[value[1:]] if value.startswith("@") else value)
    assert ("latest_version" in problem) == ("latest_version" in expected)
    assert await world.counts() == counts
    assert await notices(world) == rows


async def test_of_concurrent_amendments_of_one_version_exactly_one_wins(world, api, example):
    first = ok(await world.post_notice(example))
    await world.headers("MDI")  # one client and token, made before the rush
    bodies = [edited(example, {"/safeguarding/concerns": f"{CONCERNS} ({n})"}) for n in range(4)]
    responses = await asyncio.gather(*(amend(world, first["id"], body) for body in bodies))

    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 409, 409, 409], [r.text for r in responses]
    [(winner, body)] = [
        (r.json(), b) for r, b in zip(responses, bodies, strict=True) if r.status_code == 202
    ]
    losers = [r.json() for r in responses if r.status_code == 409]
    assert {p["latest_version"] for p in losers} == {winner["id"]}
    rows = [row[:3] for row in await notices(world)]
    assert rows == [(1, "superseded", "amended"), (2, "accepted", None)]
    items = await inbox(world, "N07")
    assert [(m["id"], m["supersedes"]) for m in items] == [
        (sent(first)["N07"], None),
        (sent(winner)["N07"], sent(first)["N07"]),
    ]
    _, claims = await verified(api, items[1]["jws"], "N07")
    assert claims["disclosure"]["safeguarding"]["concerns"] == body["safeguarding"]["concerns"]


# --- notices sent to nobody ------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["released_to_hospital", "transferred", "deported"])
async def test_a_release_not_into_the_community_is_recorded_and_sent_to_nobody(
    world, example, reason
):
    # Unregistered codes: the plan of a release that routes nowhere is not even looked up.
    plan = {PLAN + "probation_provider": "N00", PLAN + "substance_misuse_service": "X1"}
    notice = ok(await world.post_notice(edited(example, {"/release/reason": reason, **plan})))

    assert (notice["status"], notice["status_reason"]) == ("not_routed", f"release_reason_{reason}")
    assert (notice["version"], notice["series_id"], notice["recipients"]) == (1, notice["id"], [])
    counts = await world.counts()
    assert counts["release_notice"] == 1
    assert (counts["disclosure"], counts["message"], counts["delivery"]) == (0, 0, 0)
    status = await tracked(world, notice["id"])
    assert status["recipients"] == []
    assert history(status) == [(notice["id"], 1, "not_routed", f"release_reason_{reason}")]
    entries = await log(world)
    assert [e["action"] for e in entries] == ["notice.received", "notice.not_routed"]
    assert entries[0]["details"]["recipients"] == []
    assert entries[1]["details"] == {"reason": f"release_reason_{reason}"}


# --- webhooks and the log --------------------------------------------------------------------


async def deliver(world, settings, receiver, secrets: dict[str, str], expected: int) -> list:
    """Run the worker once; each event received, checked, as (recipient, type, typ, data)."""
    seen = len(receiver.requests)
    async with http_client() as client:
        assert (
            await run_once(world.sessions, client, settings, data_keys=world.data_keys) == expected
        )
    got = []
    for request in receiver.wait_for(seen + expected)[seen:]:
        code = request.path.rsplit("/", 1)[-1]
        Webhook(secrets[code]).verify(request.body, request.headers)
        event = json.loads(request.body)
        data = event["data"]
        header, claims = await verified(world.api, data["jws"], code)
        assert request.headers["webhook-id"] == data["message_id"] == claims["jti"]
        assert data["notice_id"] == claims["notice_id"]
        assert data.get("supersedes") == claims.get("supersedes")
        got.append((code, event["type"], header["typ"], data))
    return sorted(got, key=lambda g: g[0])


async def test_each_step_reaches_the_recipients_as_its_own_webhook_event(world, example, settings):
    with running_receiver() as receiver:
        secrets = {
            code: await subscribe(world, code, f"{receiver.url}/{code}") for code in RECIPIENTS
        }
        first = ok(await world.post_notice(example))
        events = await deliver(world, settings, receiver, secrets, 2)
        second = ok(await amend(world, first["id"], edited(example, NO_SMS)))
        events += await deliver(world, settings, receiver, secrets, 2)
        third = ok(await cancel(world, second["id"], "release_cancelled"))
        events += await deliver(world, settings, receiver, secrets, 1)

    one, two = sent(first), {**sent(second), **sent(second, "cancellation")}
    created = ("disclosure.created", "disclosure+jwt")
    cancelled = ("notice.cancelled", "cancellation+jwt")
    assert [(code, t, typ, d["message_id"], d.get("supersedes")) for code, t, typ, d in events] == [
        ("N07", *created, one["N07"], None),
        ("SMS-LEEDS", *created, one["SMS-LEEDS"], None),
        ("N07", *created, two["N07"], one["N07"]),
        ("SMS-LEEDS", *cancelled, two["SMS-LEEDS"], one["SMS-LEEDS"]),
        ("N07", *cancelled, sent(third, "cancellation")["N07"], two["N07"]),
    ]
    assert [d["notice_id"] for *_, d in events] == [first["id"]] * 2 + [second["id"]] * 3
    assert all("supersedes" not in d for *_, d in events[:2])  # absent, not null
    status = await tracked(world, second["id"])  # its three messages, each delivered once
    assert len(status["recipients"]) == 3
    for recipient in status["recipients"]:
        assert [(d["state"], d["attempts"]) for d in recipient["deliveries"]] == [("delivered", 1)]


async def test_cancelling_after_an_amendment_tells_only_current_holders_and_logs_each_step(
    world, example
):
    first = ok(await world.post_notice(example))
    second = ok(await amend(world, first["id"], edited(example, NO_SMS)))
    third = ok(await cancel(world, second["id"], "other"))

    v1, v2 = first["id"], second["id"]
    assert third["id"] == v2
    assert list(sent(third, "cancellation")) == ["N07"]  # SMS-LEEDS was told by the amendment
    assert [(m["kind"], m["supersedes"]) for m in await inbox(world, "N07")] == [
        ("disclosure", None),
        ("disclosure", sent(first)["N07"]),
        ("cancellation", sent(second)["N07"]),
    ]
    assert [m["kind"] for m in await inbox(world, "SMS-LEEDS")] == ["disclosure", "cancellation"]
    assert history(await tracked(world, v1)) == [
        (v1, 1, "superseded", "amended"),
        (v2, 2, "cancelled", "cancelled_other"),
    ]

    who = {str(v): k for k, v in world.ids.items()}
    entries = await log(world)
    assert [e["notice_id"] for e in entries] == [v1] * 5 + [v2] * 6
    assert [
        (e["action"], who.get(e["subject_organisation_id"]), e["details"].get("kind"))
        for e in entries
    ] == [
        ("notice.received", None, None),
        ("disclosure.decided", "N07", None),  # every recipient decided and signed for ...
        ("disclosure.decided", "SMS-LEEDS", None),
        ("message.signed", "N07", "disclosure"),  # ... before any inbox is numbered
        ("message.signed", "SMS-LEEDS", "disclosure"),
        ("notice.amended", None, None),
        ("disclosure.decided", "N07", None),
        ("message.signed", "N07", "disclosure"),
        ("message.signed", "SMS-LEEDS", "cancellation"),
        ("notice.cancelled", None, None),
        ("message.signed", "N07", "cancellation"),
    ]
    by_action = {e["action"]: e for e in entries}  # the last of each
    amended = by_action["notice.amended"]["details"]
    assert (amended["version"], amended["supersedes"], amended["recipients"]) == (2, v1, ["N07"])
    assert by_action["notice.cancelled"]["details"] == {"reason": "other", "version": 2}
    assert by_action["notice.cancelled"]["actor_organisation_id"] == str(world.ids["MDI"])
    assert by_action["message.signed"]["details"]["supersedes"] == sent(second)["N07"]
