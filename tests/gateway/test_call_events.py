"""What a charger's call becomes for ingest, without a socket: transaction ids that a resend
keeps and one charger never gets twice within 24 h, event ids that tell a resend from a new
message, and each call's events as CONTRACT section 1 lists them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from services.gateway import call_events

CP = "CP-EVENTS"
NOW = datetime.now(UTC).replace(microsecond=0)


def start(at: datetime | str, connector: int = 1, **fields) -> dict:
    ts = at if isinstance(at, str) else at.isoformat().replace("+00:00", "Z")
    return {"connectorId": connector, "idTag": "RFID-1", "meterStart": 0, "timestamp": ts, **fields}


def test_a_resend_gets_the_same_transaction_id_and_another_start_another():
    first = call_events.transaction_id(CP, start(NOW))
    assert call_events.transaction_id(CP, start(NOW)) == first
    assert call_events.transaction_id(CP, start(NOW + timedelta(seconds=1))) != first
    assert call_events.transaction_id(CP, start(NOW, connector=2)) != first
    assert 1 <= first < 2**30


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 86_400), st.integers(0, 86_400), st.integers(0, 15), st.integers(0, 15))
def test_one_charger_never_gets_an_id_twice_within_a_day(a: int, b: int, connector_a: int, connector_b: int):
    if (a, connector_a) == (b, connector_b):
        return
    ids = {call_events.transaction_id(CP, start(NOW + timedelta(seconds=s), connector=c)) for s, c in ((a, connector_a), (b, connector_b))}
    assert len(ids) == 2


@pytest.mark.parametrize("ts", ["1970-01-01T00:00:07Z", "garbage", (NOW + timedelta(days=3)).isoformat()])
def test_an_implausible_charger_clock_gives_an_id_from_the_message(ts: str):
    tx = call_events.transaction_id(CP, start(ts))
    assert 2**30 <= tx < 2**31
    assert call_events.transaction_id(CP, start(ts)) == tx
    assert call_events.transaction_id(CP, start(ts, meterStart=5)) != tx


def test_event_ids_tell_a_resend_from_a_new_message():
    payload = start(NOW)
    assert call_events.call_key(CP, "StartTransaction", payload) == call_events.call_key(CP, "StartTransaction", dict(reversed(payload.items())))
    assert call_events.call_key(CP, "StartTransaction", payload) != call_events.call_key("CP-OTHER", "StartTransaction", payload)
    # no timestamp of the charger's: two boots an hour apart are two events
    one = call_events.call_key(CP, "BootNotification", {}, NOW)
    assert one != call_events.call_key(CP, "BootNotification", {}, NOW + timedelta(hours=1))
    made = call_events.identified(one, [{"type": "A"}, {"type": "B"}])
    assert made[0]["eventId"] != made[1]["eventId"] and all(len(e["eventId"]) <= 200 for e in made)


def test_a_stop_brings_its_samples_first_then_its_end():
    received = NOW
    made = call_events.transaction_ended(CP, {"transactionId": 7, "meterStop": 900, "timestamp": "2026-11-25T10:30:00.5Z",
                                          "reason": "Local", "transactionData": [
                                              {"timestamp": "2026-11-25T10:15:00Z", "sampledValue": [{"value": "450"}]}]}, received)
    assert [e["type"] for e in made] == ["MeterSample", "TransactionEnded"]
    assert made[0] == {"type": "MeterSample", "chargePointId": CP, "transactionId": 7, "samples": [{"value": "450"}],
                       "ts": "2026-11-25T10:15:00Z"}
    assert made[1] == {"type": "TransactionEnded", "chargePointId": CP, "transactionId": 7, "meterStopWh": 900,
                       "ts": "2026-11-25T10:30:00.5Z", "reason": "Local"}


def test_a_field_that_cannot_be_read_is_named():
    with pytest.raises(call_events.Unreadable) as unreadable:
        call_events.status_changed(CP, {"connectorId": "1", "status": "Available", "errorCode": "NoError"}, NOW)
    assert unreadable.value.field == "connectorId"
    with pytest.raises(call_events.Unreadable):
        call_events.transaction_started(CP, start(NOW, meterStart=1.5), 1, NOW)


def test_the_gateways_own_time_has_milliseconds():
    assert call_events.stamp(datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)) == "2026-11-25T10:00:00.123Z"
