"""Lossless ingest (CONTRACT section 1): what a charger got wrong is taken (202), archived as sent
with its anomalies, counted, and kept out of the state it cannot change. The reference gateway
drops any event that does not get a 2xx, so a 400 here would be a lost kWh."""
from __future__ import annotations

import pytest

from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, finalized, send, session_when
from tests.support import eventually, unique_id

TAKEN = [
    ({"type": "ConnectorStatusChanged", "connectorId": 1, "errorCode": "NoError"}, "missing_status"),
    ({"type": "ConnectorStatusChanged", "connectorId": 1, "status": "Sleeping", "errorCode": "NoError"}, "unknown_status"),
    ({"type": "ConnectorStatusChanged", "connectorId": 1, "status": "Faulted", "errorCode": "Vendor42"}, "unknown_error_code"),
    ({"type": "TransactionStarted", "connectorId": 1, "transactionId": 1, "idTag": "x" * 21}, "id_tag_too_long"),
    ({"type": "TransactionStarted", "transactionId": 1, "idTag": "A"}, "missing_connectorId"),
    ({"type": "MeterSample", "transactionId": 1, "samples": [{"value": "twelve"}]}, "non_numeric_sample"),
    ({"type": "MeterSample", "transactionId": 1, "samples": ["12"]}, "invalid_sample"),
    ({"type": "MeterSample", "transactionId": 1, "samples": []}, "missing_samples"),
    ({"type": "ChargerBooted", "model": "M", "ocppVersion": "1.6J"}, "missing_vendor"),
    ({"type": "ChargerBooted", "vendor": 7, "model": "M"}, "invalid_field"),
    ({"type": "CommandAck", "commandType": "Reset"}, "missing_uniqueId"),
    ({"type": "ChargerHeartbeat", "ts": "yesterday"}, "unreadable_ts"),
    ({"type": "ChargerHeartbeat", "ts": "2026-11-25T10:00:00"}, "ts_without_offset"),
    ({"type": "ChargerHeartbeat", "ts": "1970-01-01T00:00:07Z"}, "implausible_ts"),
    ({"type": "ChargerHeartbeat", "ts": "0001-01-01T00:00:00+14:00"}, "implausible_ts"),
    ({"type": "ChargerHeartbeat", "ts": "9999-12-31T23:59:59-14:00"}, "implausible_ts"),
    ({"type": "TransactionEnded", "transactionId": 1, "reason": "Local\u0000"}, "nul_character"),
]


async def archived(pg, cp: str) -> list:
    return await pg.fetch("SELECT body, anomalies, ts, received_at FROM ingest.events WHERE charge_point_id = $1", cp)


def anomaly_count(metrics: str, kind: str, anomaly: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("cpms_event_anomalies_total{") and f'anomaly="{anomaly}"' in line and f'type="{kind}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(("fields", "anomaly"), TAKEN, ids=[a for _, a in TAKEN])
async def test_a_charger_mistake_is_taken_archived_as_sent_flagged_and_counted(api, pg, fields, anomaly):
    cp = unique_id("LOSSLESS")
    event = {"chargePointId": cp, **fields}
    before = anomaly_count((await api.anonymous("GET", "/metrics"))[1], event["type"], anomaly)
    status, body = await api.gateway("POST", "/v1/gateway/events", event)
    assert status == 202, body
    rows = await eventually(lambda: archived(pg, cp))
    assert anomaly in rows[0]["anomalies"] and anomaly in rows[0]["body"]["anomalies"]
    kept = {k: rows[0]["body"][k] for k in event}
    if anomaly == "nul_character":
        assert kept["reason"] == "Local\ufffd"  # Postgres cannot hold NUL; everything else is as sent
    else:
        assert kept == event
    after = anomaly_count((await api.anonymous("GET", "/metrics"))[1], event["type"], anomaly)
    assert after == before + 1


async def test_an_unreadable_or_implausible_ts_gives_way_to_the_receipt_time(api, pg):
    cp = unique_id("CLOCK")
    await send(api, {"type": "ChargerHeartbeat", "chargePointId": cp, "ts": "1970-01-01T00:00:07Z"})
    row = (await eventually(lambda: archived(pg, cp)))[0]
    assert row["ts"] == row["received_at"]
    assert row["body"]["ts"] == "1970-01-01T00:00:07Z"  # kept as sent
    _, charger = await eventually(lambda: _charger(api, cp))
    assert charger["lastHeartbeatAt"] == row["body"]["receivedAt"]
    assert charger["clockSkewSeconds"] is None  # no plausible ts yet


async def test_clock_skew_is_the_last_plausible_offset_of_the_chargers_own_clock(api, pg):
    cp = unique_id("SKEW")
    # A charger whose clock runs two hours behind, then one at 1970 (not plausible: skew stays),
    # and a heartbeat, which the gateway stamps with its own clock: it says nothing of the charger's.
    from datetime import UTC, datetime, timedelta

    behind = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    ids = await send(api, ev.status(cp, 1, "Available", ts=behind), ev.status(cp, 1, "Preparing", ts="1970-01-01T00:00:09Z"),
                     ev.heartbeat(cp, ts=datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")))
    await applied(pg, ids)
    _, charger = await _charger(api, cp)
    assert -7202 < charger["clockSkewSeconds"] < -7198


async def test_an_unknown_status_leaves_the_connector_as_it_was(api, pg):
    cp = unique_id("STATUS")
    ids = await send(api, ev.status(cp, 1, "Available", ts="2026-11-25T10:00:00Z"),
                     ev.status(cp, 1, "Sleeping", ts="2026-11-25T10:00:05Z"))
    await applied(pg, ids)
    status, body = await api.admin("GET", f"/v1/chargers/{cp}/connectors")
    assert status == 200 and [(c["status"], c["updatedAt"]) for c in body["items"]] == [("Available", "2026-11-25T10:00:00Z")]


async def test_a_non_numeric_sample_changes_no_energy_and_a_long_id_tag_loses_no_session(api, pg):
    cp = unique_id("SAMPLES")
    long_tag = "LOADGEN-0000000000001"  # 21 characters, as a real load generator sends it
    start = ev.started(cp, 5, meter_start=1000, ts="2026-11-25T10:00:00Z") | {"idTag": long_tag}
    ids = await send(api, start, ev.sample(cp, 5, "4000", "2026-11-25T10:10:00Z"),
                     ev.sample(cp, 5, "NaN", "2026-11-25T10:20:00Z"), ev.sample(cp, 5, "lots", "2026-11-25T10:30:00Z"),
                     ev.ended(cp, 5, ts="2026-11-25T10:40:00Z"))
    await applied(pg, ids)
    session = await session_when(api, cp, 5, finalized)
    assert (session["energyWh"], session["energySource"]) == (3000, "MeterValues.Register")
    assert session["idTag"] == long_tag


async def _charger(api, cp: str):
    status, body = await api.admin("GET", f"/v1/chargers/{cp}")
    return (status, body) if status == 200 else None
