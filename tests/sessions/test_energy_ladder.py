"""Every rung of the energy ladder (CONTRACT section 2), driven by gateway events through ingest."""
from __future__ import annotations

import pytest

from tests.ingest import gateway_events as ev
from tests.sessions.flows import finalized, send, session_when
from tests.support import unique_id

T0, T1, T2, T3, END = ("2026-11-25T10:01:00Z", "2026-11-25T10:10:00Z", "2026-11-25T10:20:00Z",
                       "2026-11-25T10:30:00Z", "2026-11-25T11:00:00Z")


def interval(cp: str, tx: int, value: str, ts: str, unit: str | None = None) -> dict:
    return ev.sample(cp, tx, value, ts, measurand="Energy.Active.Import.Interval", unit=unit)


async def finalized_session(api, cp: str, *events: dict, tx: int = 1) -> dict:
    await send(api, *events)
    return await session_when(api, cp, tx, finalized)


async def test_stop_transaction_rung(api):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, meter_start=1000, ts=T0), ev.sample(cp, 1, "5000", T1),
                                      ev.ended(cp, 1, meter_stop=13345, ts=END))
    assert session["energyWh"] == 12345 and session["energySource"] == "StopTransaction"
    assert session["isEstimated"] is False
    assert (session["meterStartWh"], session["meterStopWh"]) == (1000, 13345)
    assert session["startedAt"] == T0 and session["endedAt"] == END and session["reason"] == "Local"
    assert session["connectorId"] == 1 and session["idTag"] == "RFID-0001" and session["finalizedAt"]


async def test_register_rung_takes_the_last_sample_by_its_own_ts_when_the_stop_is_absent(api):
    cp = unique_id()
    # the newest reading by ts arrives first; the older one after it must not win
    session = await finalized_session(api, cp, ev.started(cp, 1, meter_start=1000, ts=T0),
                                      ev.sample(cp, 1, "9000", T3), ev.sample(cp, 1, "4000", T1), ev.ended(cp, 1, ts=END))
    assert session["energyWh"] == 8000 and session["energySource"] == "MeterValues.Register"
    assert session["meterStopWh"] is None and session["isEstimated"] is False


async def test_register_samples_in_kwh_are_converted_to_wh(api):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, meter_start=1000, ts=T0),
                                      ev.sample(cp, 1, "13.3455", T2, unit="kWh"), ev.ended(cp, 1, ts=END))
    assert session["energyWh"] == 12345.5 and session["energySource"] == "MeterValues.Register"


async def test_interval_rung_sums_the_interval_samples(api):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, ts=T0), interval(cp, 1, "100", T1),
                                      interval(cp, 1, "0.25", T2, unit="kWh"), interval(cp, 1, "50.5", T3), ev.ended(cp, 1, ts=END))
    assert session["energyWh"] == 400.5 and session["energySource"] == "MeterValues.Interval"


async def test_missing_rung_when_nothing_measured_energy(api):
    cp = unique_id()
    power = ev.sample(cp, 1, "7200", T1, measurand="Power.Active.Import", unit="W")
    session = await finalized_session(api, cp, ev.started(cp, 1, ts=T0), power, ev.ended(cp, 1, ts=END))
    assert session["energyWh"] is None and session["energySource"] == "Missing" and session["isEstimated"] is True


async def test_a_negative_stop_reading_falls_to_the_register_rung(api):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, meter_start=5000, ts=T0), ev.sample(cp, 1, "6500", T2),
                                      ev.ended(cp, 1, meter_stop=4000, ts=END))
    assert session["energyWh"] == 1500 and session["energySource"] == "MeterValues.Register"
    assert session["meterStopWh"] == 4000


async def test_a_negative_register_reading_falls_to_the_interval_rung(api):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, meter_start=5000, ts=T0), ev.sample(cp, 1, "4000", T2),
                                      interval(cp, 1, "700", T3), ev.ended(cp, 1, ts=END))
    assert session["energyWh"] == 700 and session["energySource"] == "MeterValues.Interval"


async def test_negative_everywhere_is_missing(api):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, meter_start=5000, ts=T0), ev.sample(cp, 1, "4000", T2),
                                      interval(cp, 1, "-10", T3), ev.ended(cp, 1, meter_stop=10, ts=END))
    assert session["energyWh"] is None and session["energySource"] == "Missing" and session["isEstimated"] is True


async def test_an_absent_meter_start_counts_as_zero(api):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, ts=T0), ev.ended(cp, 1, meter_stop=777, ts=END))
    assert session["meterStartWh"] == 0 and session["energyWh"] == 777 and session["energySource"] == "StopTransaction"


@pytest.mark.parametrize("meter_stop", [None, 0])
async def test_an_absent_or_zero_stop_reading_is_shown_as_null_and_uses_the_next_rung(api, meter_stop):
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, ts=T0), ev.sample(cp, 1, "2500", T2),
                                      ev.ended(cp, 1, meter_stop=meter_stop, ts=END))
    assert session["meterStopWh"] is None and session["energyWh"] == 2500 and session["energySource"] == "MeterValues.Register"


async def test_per_phase_and_other_measurands_do_not_count_as_the_register(api):
    cp = unique_id()
    phased = ev.sample(cp, 1, "99999", T3)
    phased["samples"][0]["phase"] = "L1"
    session = await finalized_session(api, cp, ev.started(cp, 1, ts=T0), ev.sample(cp, 1, "3000", T2), phased,
                                      ev.sample(cp, 1, "16", T3, measurand="Current.Import", unit="A"), ev.ended(cp, 1, ts=END))
    assert session["energyWh"] == 3000 and session["energySource"] == "MeterValues.Register"


async def test_equal_sample_ts_take_the_one_received_last(api):
    # Whole-second timestamps tie all the time; CONTRACT's order breaks the tie by receipt.
    cp = unique_id()
    session = await finalized_session(api, cp, ev.started(cp, 1, ts=T0), ev.sample(cp, 1, "3100", T2),
                                      ev.sample(cp, 1, "3000", T2), ev.ended(cp, 1, ts=END))
    assert session["energyWh"] == 3000
