"""The settlement state machine through the HTTP API: every allowed and forbidden transition,
repeats, concurrent requests, validation and pagination."""
from __future__ import annotations

import asyncio

import pytest

from tests.billing.conftest import after

SUBMIT = {"chain": "XRPL", "txHash": "TX1", "externalRef": "payout-1"}
SUBMIT_OTHER = {"chain": "XRPL", "txHash": "TX2"}
FAIL = {"error": "ledger rejected the payment"}

# How to bring a fresh Pending settlement into each state, through allowed transitions.
PATHS = {
    "Pending": [],
    "Submitted": [("submitted", SUBMIT)],
    "Confirmed": [("submitted", SUBMIT), ("confirmed", None)],
    "Failed": [("submitted", SUBMIT), ("failed", FAIL)],
    "FailedBeforeSubmission": [("failed", FAIL)],
}


@pytest.fixture
async def new_settlement(billing):
    """A fresh Pending settlement (one site, one tariff, one priced session)."""
    _, tariff, cp = await billing.priced_site()

    async def make(state: str = "Pending") -> dict:
        session_id = await billing.finalize(cp, energy_wh=12345, started_at=after(tariff))
        settlement = await billing.wait_settlement(session_id)
        for action, body in PATHS[state]:
            status, settlement = await billing.transition(settlement["settlementId"], action, body)
            assert status == 200, settlement
        return settlement

    return make


# (start, action, body, expected HTTP status, status afterwards)
CASES = [
    ("Pending", "submitted", SUBMIT, 200, "Submitted"),
    ("Pending", "confirmed", None, 409, "Pending"),
    ("Pending", "failed", FAIL, 200, "Failed"),
    ("Submitted", "submitted", SUBMIT, 200, "Submitted"),          # the same again: no-op
    ("Submitted", "submitted", SUBMIT_OTHER, 409, "Submitted"),    # another transaction
    ("Submitted", "confirmed", None, 200, "Confirmed"),
    ("Submitted", "failed", FAIL, 200, "Failed"),
    ("Confirmed", "submitted", SUBMIT, 409, "Confirmed"),
    ("Confirmed", "submitted", SUBMIT_OTHER, 409, "Confirmed"),
    ("Confirmed", "confirmed", None, 200, "Confirmed"),            # no-op
    ("Confirmed", "failed", FAIL, 409, "Confirmed"),
    ("Failed", "submitted", SUBMIT_OTHER, 200, "Submitted"),       # retry with a new txHash
    ("Failed", "submitted", SUBMIT, 409, "Failed"),                # the transaction that failed
    ("Failed", "confirmed", None, 409, "Failed"),
    ("Failed", "failed", FAIL, 200, "Failed"),                     # no-op
    ("Failed", "failed", {"error": "another reason"}, 409, "Failed"),
    ("FailedBeforeSubmission", "submitted", SUBMIT, 200, "Submitted"),
    ("FailedBeforeSubmission", "confirmed", None, 409, "Failed"),
]


@pytest.mark.parametrize(("start", "action", "body", "expected", "after_status"), CASES)
async def test_every_transition(billing, new_settlement, start, action, body, expected, after_status):
    before = await new_settlement(start)
    status, answer = await billing.transition(before["settlementId"], action, body)
    assert status == expected, answer
    content_type = billing.api.last_response.content_type
    _, now = await billing.api.admin("GET", f"/v1/settlements/{before['settlementId']}")
    assert now["status"] == after_status
    if expected == 409:
        assert content_type == "application/problem+json"
        assert answer["status"] == 409 and answer["currentStatus"] == before["status"]
        assert before["status"] in answer["detail"]
        assert now == before  # nothing changed
    elif before["status"] == after_status:
        assert answer == before  # a repeat changes nothing, not even updatedAt
    else:
        assert answer == now and now["updatedAt"] > before["updatedAt"]


async def test_submission_records_the_transaction_and_a_retry_clears_the_error(billing, new_settlement):
    settlement = await new_settlement("Failed")
    assert settlement["error"] == FAIL["error"] and settlement["txHash"] == "TX1"
    status, retried = await billing.transition(settlement["settlementId"], "submitted", SUBMIT_OTHER)
    assert status == 200
    assert (retried["chain"], retried["txHash"], retried["externalRef"], retried["error"]) == ("XRPL", "TX2", None, None)
    status, confirmed = await billing.transition(settlement["settlementId"], "confirmed")
    assert status == 200 and confirmed["status"] == "Confirmed" and confirmed["amount"] == "3.70"


async def test_every_transition_is_announced(billing, new_settlement, domain_tap):
    settlement = await new_settlement("Confirmed")
    announced = await domain_tap.wait_for("settlement.", settlementId=settlement["settlementId"], status="Confirmed")
    statuses = [m["status"] for m in domain_tap.of("settlement.", settlementId=settlement["settlementId"])]
    assert statuses == ["Pending", "Submitted", "Confirmed"] and len(announced) == 1


async def test_two_different_submissions_at_once_one_wins(billing, new_settlement):
    for _ in range(5):
        settlement = await new_settlement()
        results = await asyncio.gather(
            billing.transition(settlement["settlementId"], "submitted", {"chain": "XRPL", "txHash": "A"}),
            billing.transition(settlement["settlementId"], "submitted", {"chain": "XRPL", "txHash": "B"}),
        )
        assert sorted(status for status, _ in results) == [200, 409]
        winner = next(body for status, body in results if status == 200)
        _, now = await billing.api.admin("GET", f"/v1/settlements/{settlement['settlementId']}")
        assert now["status"] == "Submitted" and now["txHash"] == winner["txHash"]


async def test_the_same_submission_twice_at_once_is_applied_once(billing, new_settlement, domain_tap):
    settlement = await new_settlement()
    results = await asyncio.gather(*(billing.transition(settlement["settlementId"], "submitted", SUBMIT) for _ in range(4)))
    assert [status for status, _ in results] == [200] * 4
    await domain_tap.wait_for("settlement.", settlementId=settlement["settlementId"], status="Submitted")
    await asyncio.sleep(0.3)  # give a (wrong) second announcement the time to show up
    assert len(domain_tap.of("settlement.", settlementId=settlement["settlementId"], status="Submitted")) == 1


async def test_submission_and_failure_at_once_end_in_a_state_the_graph_allows(billing, new_settlement):
    for _ in range(5):
        settlement = await new_settlement()
        (s_status, _), (f_status, _) = await asyncio.gather(
            billing.transition(settlement["settlementId"], "submitted", SUBMIT),
            billing.transition(settlement["settlementId"], "failed", FAIL),
        )
        _, now = await billing.api.admin("GET", f"/v1/settlements/{settlement['settlementId']}")
        # Both orders are allowed paths (Pending->Submitted->Failed, Pending->Failed->Submitted).
        assert (s_status, f_status) == (200, 200)
        assert now["status"] in ("Submitted", "Failed") and now["txHash"] == "TX1"


async def test_confirm_and_fail_at_once_never_both_win(billing, new_settlement):
    for _ in range(5):
        settlement = await new_settlement("Submitted")
        (c_status, _), (f_status, _) = await asyncio.gather(
            billing.transition(settlement["settlementId"], "confirmed"),
            billing.transition(settlement["settlementId"], "failed", FAIL),
        )
        _, now = await billing.api.admin("GET", f"/v1/settlements/{settlement['settlementId']}")
        assert sorted((c_status, f_status)) == [200, 409]
        assert now["status"] == ("Confirmed" if c_status == 200 else "Failed")


@pytest.mark.parametrize(("action", "body"), [
    ("submitted", {"chain": "XRPL"}),
    ("submitted", {"chain": "", "txHash": "TX"}),
    ("submitted", {"chain": "XRPL", "txHash": ""}),
    ("submitted", {"chain": "XRPL", "txHash": "has space"}),
    ("submitted", {"chain": "XRPL", "txHash": 42}),
    ("submitted", {"chain": "XRPL", "txHash": "TX", "amount": "lots"}),
    ("submitted", {"chain": "XRPL", "txHash": "TX", "currency": "usd"}),
    ("submitted", {"chain": "XRPL", "txHash": "TX", "memo": "extra"}),
    ("failed", {}),
    ("failed", {"error": "   "}),
])
async def test_bad_transition_bodies_are_400_and_change_nothing(billing, new_settlement, action, body):
    settlement = await new_settlement()
    status, problem = await billing.transition(settlement["settlementId"], action, body)
    assert status == 400 and problem["errors"] and all("loc" in e and "msg" in e for e in problem["errors"])
    _, now = await billing.api.admin("GET", f"/v1/settlements/{settlement['settlementId']}")
    assert now == settlement


async def test_unknown_settlements_are_404(billing):
    for settlement_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        assert (await billing.api.admin("GET", f"/v1/settlements/{settlement_id}"))[0] == 404
        assert (await billing.transition(settlement_id, "submitted", SUBMIT))[0] == 404
        assert (await billing.transition(settlement_id, "confirmed"))[0] == 404


async def test_settlements_page_by_cursor_with_a_status_filter(billing, api):
    site, tariff, cp = await billing.priced_site()
    sessions = [await billing.finalize(cp, energy_wh=1000 * (i + 1), started_at=after(tariff)) for i in range(5)]
    ids = [(await billing.wait_settlement(s))["settlementId"] for s in sessions]
    for settlement_id in ids[:3]:
        await billing.transition(settlement_id, "submitted", {"chain": "XRPL", "txHash": "T-" + settlement_id})

    async def walk(query: str, *, insert_after_first_page: bool = False) -> list[dict]:
        items, cursor, pages = [], None, 0
        while True:
            url = f"/v1/settlements?siteId={site['siteId']}&limit=2{query}" + (f"&cursor={cursor}" if cursor else "")
            status, body = await api.admin("GET", url)
            assert status == 200, body
            assert len(body["items"]) <= 2
            items += body["items"]
            pages += 1
            if pages == 1 and insert_after_first_page:
                late = await billing.finalize(cp, energy_wh=1, started_at=after(tariff))
                await billing.wait_settlement(late)
            cursor = body["nextCursor"]
            if cursor is None:
                return items

    everything = await walk("")
    assert [s["settlementId"] for s in everything] == ids[::-1]  # newest first
    submitted = await walk("&status=Submitted")
    assert sorted(s["settlementId"] for s in submitted) == sorted(ids[:3]) and {s["status"] for s in submitted} == {"Submitted"}
    pending = await walk("&status=Pending", insert_after_first_page=True)
    assert [s["settlementId"] for s in pending] == ids[3:][::-1]  # a row inserted meanwhile is neither repeated nor skipped

    for bad in ("status=Paid", "limit=0", "limit=501", "cursor=garbage", "stauts=Pending", "siteId=nope"):
        status, problem = await api.admin("GET", f"/v1/settlements?{bad}")
        assert status == 400 and problem["errors"], bad
