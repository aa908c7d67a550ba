"""OCPI 2.2.1 tariffs through the API: accepted as OCPI writes them (the per-kWh body unchanged),
refused with the field named, applied to the sessions that start while they are in force (cost
and its breakdown on the session, the amount on the settlement), and quoted for a CDR."""
from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.chargers.test_reference_gateway import register, settlement_of
from tests.ingest import gateway_events as ev
from tests.sessions.flows import applied, send, session_when
from tests.support import eventually, unique_id

# Prices as strings here, sent as the JSON numbers OCPI writes (`ocpi_json`), digit for digit.
DAY_NIGHT = {
    "currency": "EUR", "type": "REGULAR", "country_code": "NL", "party_id": "CPO", "id": "day-night",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": "1.00", "vat": "19.0", "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": "0.40", "vat": "19.0", "step_size": 1}],
         "restrictions": {"start_time": "07:00", "end_time": "22:00"}},
        {"price_components": [{"type": "ENERGY", "price": "0.20", "vat": "19.0", "step_size": 1}]},
    ],
    "min_price": {"excl_vat": "1.50"},
}


def ocpi_json(tariff: dict) -> str:
    return re.sub(r'"(price|vat|excl_vat|incl_vat|min_power|max_power)": "(-?[0-9.]+)"', r'"\1": \2', json.dumps(tariff))


async def post_tariff(api, site_id: str, tariff: dict) -> tuple[int, dict]:
    return await api.admin("POST", f"/v1/sites/{site_id}/tariffs", data=ocpi_json(tariff), headers={"Content-Type": "application/json"})


def stamp(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def site_with(api, tariff: dict) -> tuple[dict, dict]:
    _, site = await api.admin("POST", "/v1/sites", {"name": f"OCPI {unique_id()}"})
    status, created = await post_tariff(api, site["siteId"], tariff)
    assert status == 201, created
    return site, created


async def test_an_ocpi_tariff_is_stored_as_ocpi_and_the_per_kwh_body_still_works(api):
    site, tariff = await site_with(api, DAY_NIGHT)
    assert (tariff["pricePerKwh"], tariff["currency"], tariff["isActive"]) == (None, "EUR", True)
    assert tariff["ocpi"]["elements"][1]["price_components"][0] == {"type": "ENERGY", "price": "0.40", "vat": "19.0", "step_size": 1}
    assert tariff["ocpi"]["id"] == "day-night" and tariff["ocpi"]["min_price"] == {"excl_vat": "1.50"}
    status, per_kwh = await api.admin("POST", f"/v1/sites/{site['siteId']}/tariffs", {"pricePerKwh": "0.30", "currency": "USD"})
    assert status == 201 and per_kwh["pricePerKwh"] == "0.30"
    assert per_kwh["ocpi"] == {"currency": "USD", "elements": [{"price_components": [
        {"type": "ENERGY", "price": "0.30", "step_size": 1}]}]}
    _, history = await api.admin("GET", f"/v1/sites/{site['siteId']}/tariffs")
    assert [t["tariffId"] for t in history["items"]] == [per_kwh["tariffId"], tariff["tariffId"]]


@pytest.mark.parametrize(("change", "field"), [
    (lambda t: t["elements"][1]["price_components"][0].update(price="-0.1"), "price"),
    (lambda t: t["elements"][1]["price_components"][0].update(type="KWH"), "type"),
    (lambda t: t["elements"][1]["price_components"][0].update(step_size=-1), "step_size"),
    (lambda t: t.update(currency="EURO"), "currency"),
    (lambda t: t["elements"][1].update(restrictions={"min_power": "50", "max_power": "11"}), "restrictions"),
    (lambda t: t.update(colour="green"), "colour"),
])
async def test_a_bad_ocpi_tariff_is_a_400_naming_the_field_and_writes_nothing(api, change, field):
    bad = copy.deepcopy(DAY_NIGHT)
    change(bad)
    _, site = await api.admin("POST", "/v1/sites", {"name": "Refused"})
    status, problem = await post_tariff(api, site["siteId"], bad)
    assert status == 400 and any(field in map(str, e["loc"]) for e in problem["errors"]), problem
    _, history = await api.admin("GET", f"/v1/sites/{site['siteId']}/tariffs")
    assert history["items"] == []


async def test_a_session_is_priced_by_the_ocpi_tariff_with_its_breakdown(api, pg):
    site, tariff = await site_with(api, {**DAY_NIGHT, "elements": [DAY_NIGHT["elements"][0], DAY_NIGHT["elements"][2]]})
    cp = unique_id("OCPI")
    await register(api, cp, site["siteId"])
    start = datetime.now(UTC) + timedelta(seconds=2)
    await applied(pg, await send(api, ev.started(cp, 1, meter_start=1000, ts=stamp(start)),
                                 ev.ended(cp, 1, meter_stop=13500, ts=stamp(start + timedelta(minutes=40)))))
    session = await session_when(api, cp, 1, lambda s: s["costAmount"] is not None)
    # 12.5 kWh x 0.20 = 2.50 and FLAT 1.00: 3.50 excl. VAT, x 1.19 = 4.165 -> 4.17
    assert (session["tariffId"], session["costAmount"], session["costCurrency"]) == (tariff["tariffId"], "4.17", "EUR")
    assert sorted((line["type"], line["volume"], line["amountExclVat"], line["amountInclVat"]) for line in session["costBreakdown"]) == [
        ("ENERGY", "12.5", "2.5", "2.975"), ("FLAT", "1", "1", "1.19")]
    assert (await eventually(lambda: settlement_of(api, session["sessionId"])))["amount"] == "4.17"


async def test_an_ocpi_tariff_not_yet_valid_at_the_start_is_never_applied(api, pg):
    later = stamp(datetime.now(UTC) + timedelta(days=1))
    site, _ = await site_with(api, {**DAY_NIGHT, "start_date_time": later})
    cp = unique_id("OCPI")
    await register(api, cp, site["siteId"])
    start = datetime.now(UTC) + timedelta(seconds=2)
    await applied(pg, await send(api, ev.started(cp, 1, ts=stamp(start)), ev.ended(cp, 1, meter_stop=5000, ts=stamp(start + timedelta(minutes=5)))))
    session = await session_when(api, cp, 1, lambda s: s["status"] == "Finalized")
    await eventually(lambda: _not_priced(api, session["sessionId"]))


async def _not_priced(api, session_id: str) -> bool:
    _, metrics = await api.anonymous("GET", "/metrics")
    status, session = await api.admin("GET", f"/v1/sessions/{session_id}")
    return 'cpms_billing_sessions_not_priced_total{reason="no_tariff"}' in metrics and session["costAmount"] is None


async def test_a_quote_answers_ocpi_cdr_totals(api):
    _, tariff = await site_with(api, {**DAY_NIGHT, "elements": [
        *DAY_NIGHT["elements"], {"price_components": [{"type": "PARKING_TIME", "price": "3.00", "step_size": 300}]}]})
    cdr = {
        "start_date_time": "2026-12-01T21:00:00Z", "end_date_time": "2026-12-01T23:10:00Z",
        "charging_periods": [
            {"start_date_time": "2026-12-01T21:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 1}]},
            {"start_date_time": "2026-12-01T22:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 5}, {"type": "TIME", "volume": 0.5},
                                                                        {"type": "PARKING_TIME", "volume": 0.6666666666666666}]},
        ],
    }
    status, quote = await api.admin("POST", f"/v1/tariffs/{tariff['tariffId']}/quote", cdr)
    assert status == 200, quote
    # energy: 10 kWh by day x 0.40 = 4.00 and 5 kWh by night x 0.20 = 1.00; FLAT 1.00;
    # parking 40 min x 3.00/h = 2.00 (no VAT); VAT 19% on the rest: 6.00 x 1.19 = 7.14 + 2.00
    # total_time is the whole session, charging and not (OCPI's CDR): 21:00 to 23:10
    assert quote["total_energy"] == "15" and quote["total_time"] == "2.166667" and quote["total_parking_time"] == "0.666667"
    assert quote["total_energy_cost"] == {"excl_vat": "5.00", "incl_vat": "5.95"}
    assert quote["total_fixed_cost"] == {"excl_vat": "1.00", "incl_vat": "1.19"}
    assert quote["total_parking_cost"] == {"excl_vat": "2.00", "incl_vat": "2.00"}
    assert quote["total_cost"] == {"excl_vat": "8.00", "incl_vat": "9.14"}

    status, simple = await api.admin("POST", f"/v1/tariffs/{tariff['tariffId']}/quote",
                                     {"startedAt": "2026-12-01T23:00:00Z", "endedAt": "2026-12-01T23:30:00Z", "energyWh": 2000})
    # 2 kWh x 0.20 = 0.40 + FLAT 1.00 = 1.40 < min_price 1.50: 1.50
    assert status == 200 and simple["total_cost"]["excl_vat"] == "1.50", simple
    status, _ = await api.admin("POST", f"/v1/tariffs/{tariff['tariffId']}/quote", {**cdr, "end_date_time": "2026-12-01T20:00:00Z"})
    assert status == 400
    assert (await api.admin("POST", "/v1/tariffs/0b7c6c1e-51f4-4c43-9a8e-3a0c1b4f52aa/quote", cdr))[0] == 404


async def test_charging_and_parking_time_come_from_the_connectors_statuses(api, pg):
    site, _ = await site_with(api, {"currency": "EUR", "elements": [{"price_components": [
        {"type": "ENERGY", "price": "0.20", "step_size": 1}, {"type": "TIME", "price": "1.20", "step_size": 60},
        {"type": "PARKING_TIME", "price": "6.00", "step_size": 60}]}]})
    cp = unique_id("PARK")
    await register(api, cp, site["siteId"])
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)

    def at(minutes: int) -> str:
        return stamp(t0 + timedelta(minutes=minutes))

    await applied(pg, await send(
        api, ev.status(cp, 1, "Charging", ts=at(0)), ev.started(cp, 1, ts=at(0)),
        ev.sample(cp, 1, "5000", at(20), measurand="Energy.Active.Import.Register", unit="Wh"),
        ev.status(cp, 1, "SuspendedEV", ts=at(30)), ev.status(cp, 1, "Charging", ts=at(40)),
        ev.ended(cp, 1, meter_stop=10000, ts=at(60)),
    ))
    session = await session_when(api, cp, 1, lambda s: s["costAmount"] is not None)
    lines = {line["type"]: line for line in session["costBreakdown"]}
    # 10 kWh x 0.20 = 2.00; charging 50 min x 1.20/h = 1.00; parked (SuspendedEV) 10 min x 6.00/h = 1.00
    assert (lines["ENERGY"]["volume"], lines["ENERGY"]["amountExclVat"]) == ("10", "2")
    assert (lines["TIME"]["volume"], lines["TIME"]["amountExclVat"]) == ("0.833333333333", "1")
    assert (lines["PARKING_TIME"]["volume"], lines["PARKING_TIME"]["amountExclVat"]) == ("0.166666666667", "1")
    assert session["costAmount"] == "4.00"


async def test_parking_after_the_stop_is_billed_once_the_car_leaves(api, pg):
    site, _ = await site_with(api, {"currency": "EUR", "elements": [{"price_components": [
        {"type": "ENERGY", "price": "0.20", "step_size": 1}, {"type": "PARKING_TIME", "price": "6.00", "step_size": 60}]}]})
    cp = unique_id("IDLE")
    await register(api, cp, site["siteId"])
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)

    def at(minutes: int) -> str:
        return stamp(t0 + timedelta(minutes=minutes))

    await applied(pg, await send(api, ev.status(cp, 1, "Charging", ts=at(0)), ev.started(cp, 1, ts=at(0)),
                                 ev.ended(cp, 1, meter_stop=5000, ts=at(30)), ev.status(cp, 1, "Finishing", ts=at(30))))
    charged = await session_when(api, cp, 1, lambda s: s["costAmount"] is not None)
    assert charged["costAmount"] == "1.00"  # 5 kWh x 0.20; still plugged in: no parking known yet
    # Unplugged 20 minutes after the stop: 20 min x 6.00/h = 2.00 more, while the settlement is Pending.
    await applied(pg, await send(api, ev.status(cp, 1, "Available", ts=at(50))))
    parked = await session_when(api, cp, 1, lambda s: s["costAmount"] == "3.00")
    lines = {line["type"]: line for line in parked["costBreakdown"]}
    assert (lines["PARKING_TIME"]["volume"], lines["PARKING_TIME"]["amountExclVat"]) == ("0.333333333333", "2")
    assert (await eventually(lambda: _settled_at(api, parked["sessionId"], "3.00")))
    assert parked["endedAt"] == at(30) and parked["energyWh"] == 5000


async def _settled_at(api, session_id: str, amount: str) -> bool:
    settlement = await settlement_of(api, session_id)
    return settlement is not None and settlement["amount"] == amount


def steady_zone(now: datetime) -> ZoneInfo:
    """Europe/Berlin, unless its clock changes within hours of now (a wall-clock time that shows
    twice would put the peak's start in the session twice): then India's, which never changes."""
    berlin = ZoneInfo("Europe/Berlin")
    offsets = {(now + timedelta(hours=h)).astimezone(berlin).utcoffset() for h in range(-4, 6)}
    return berlin if len(offsets) == 1 else ZoneInfo("Asia/Kolkata")


async def test_a_session_at_a_time_zoned_site_costs_what_its_quote_says_to_the_cent(api, pg):
    """Through real events: a site in Berlin with a peak element from 51 minutes into the session
    (Berlin time), a session that charges, parks and charges again across it, and a quote of the
    same periods as a CDR of them would state them, by the site's zone (the quote's default)."""
    t0 = (datetime.now(UTC) + timedelta(seconds=62)).replace(second=0, microsecond=0)  # a whole minute, after the tariff
    peak_from, zone = t0 + timedelta(minutes=51), steady_zone(t0)

    def local_minute(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%H:%M}"

    _, site = await api.admin("POST", "/v1/sites", {"name": f"Berlin {unique_id()}", "timeZone": zone.key})
    status, tariff = await post_tariff(api, site["siteId"], {"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.60", "vat": "19.0", "step_size": 1},
                              {"type": "TIME", "price": "2.40", "vat": "19.0", "step_size": 600}],
         "restrictions": {"start_time": local_minute(peak_from), "end_time": local_minute(peak_from + timedelta(hours=3))}},
        {"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "19.0", "step_size": 1},
                              {"type": "TIME", "price": "1.20", "vat": "19.0", "step_size": 60},
                              {"type": "PARKING_TIME", "price": "6.00", "vat": "19.0", "step_size": 300},
                              {"type": "FLAT", "price": "0.50", "vat": "19.0", "step_size": 1}]}]})
    assert status == 201, tariff
    cp = unique_id("TZ")
    await register(api, cp, site["siteId"])

    def at(minutes: int) -> str:
        return stamp(t0 + timedelta(minutes=minutes))

    register_at = {"measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    await applied(pg, await send(
        api, ev.status(cp, 1, "Charging", ts=at(0)), ev.started(cp, 1, ts=at(0)),
        ev.sample(cp, 1, "5000", at(15), **register_at), ev.sample(cp, 1, "7500", at(30), **register_at),
        ev.status(cp, 1, "SuspendedEV", ts=at(30)), ev.sample(cp, 1, "7500", at(45), **register_at),
        ev.status(cp, 1, "Charging", ts=at(45)), ev.ended(cp, 1, meter_stop=10000, ts=at(60)),
    ))
    session = await session_when(api, cp, 1, lambda s: s["costAmount"] is not None)
    # Off-peak (Berlin time): 8.5 kWh x 0.30 = 2.55 and 36 min charging x 1.20/h = 0.72; from 51 min
    # on, peak: 1.5 kWh x 0.60 = 0.90 and 9 min x 2.40/h = 0.36 (TIME not stepped: parking was
    # billed); parked 30-45 min: 0.25 h x 6.00 = 1.50; FLAT 0.50. 6.53 excl. VAT, x 1.19 = 7.7707.
    assert session["costAmount"] == "7.77"

    cdr = {"start_date_time": at(0), "end_date_time": at(60), "charging_periods": [
        {"start_date_time": at(0), "dimensions": [{"type": "ENERGY", "volume": 5}, {"type": "TIME", "volume": 0.25}]},
        {"start_date_time": at(15), "dimensions": [{"type": "ENERGY", "volume": 2.5}, {"type": "TIME", "volume": 0.25}]},
        {"start_date_time": at(30), "dimensions": [{"type": "PARKING_TIME", "volume": 0.25}]},
        {"start_date_time": at(45), "dimensions": [{"type": "ENERGY", "volume": 1}, {"type": "TIME", "volume": 0.1}]},
        {"start_date_time": at(51), "dimensions": [{"type": "ENERGY", "volume": 1.5}, {"type": "TIME", "volume": 0.15}]},
    ]}
    status, quote = await api.admin("POST", f"/v1/tariffs/{tariff['tariffId']}/quote", cdr)
    assert status == 200, quote
    assert quote["total_cost"] == {"excl_vat": "6.53", "incl_vat": session["costAmount"]}
    assert sorted(map(sorted_items, quote["costBreakdown"])) == sorted(map(sorted_items, session["costBreakdown"]))
    assert (await eventually(lambda: settlement_of(api, session["sessionId"])))["amount"] == "7.77"
    # The same CDR read in UTC: the peak starts hours after the session: 10 kWh x 0.30,
    # 45 min x 1.20/h, parking 1.50, FLAT 0.50 = 5.90 excl. VAT, 7.02 incl.
    status, in_utc = await api.admin("POST", f"/v1/tariffs/{tariff['tariffId']}/quote", {**cdr, "timeZone": "UTC"})
    assert status == 200 and in_utc["total_cost"] == {"excl_vat": "5.90", "incl_vat": "7.02"}, in_utc


def sorted_items(line: dict) -> tuple:
    return tuple(sorted(line.items()))


async def test_a_quote_reads_times_of_day_in_the_sites_zone_unless_told_another(api):
    _, tariff = await site_with(api, {"currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.50", "step_size": 1}], "restrictions": {"start_time": "08:00", "end_time": "18:00"}},
        {"price_components": [{"type": "ENERGY", "price": "0.20", "step_size": 1}]}]})
    # 07:30-08:30 UTC, 10 kWh: at a UTC site, 5 kWh before the peak (1.00) and 5 in it (2.50).
    simple = {"startedAt": "2026-12-01T07:30:00Z", "endedAt": "2026-12-01T08:30:00Z", "energyWh": 10000}
    quoted = lambda body: api.admin("POST", f"/v1/tariffs/{tariff['tariffId']}/quote", body)  # noqa: E731
    assert (await quoted(simple))[1]["total_cost"]["excl_vat"] == "3.50"
    # In Tokyo (UTC+9) that is 16:30-17:30: all peak, 5.00; in New York (UTC-5) 02:30-03:30: 2.00.
    assert (await quoted({**simple, "timeZone": "Asia/Tokyo"}))[1]["total_cost"]["excl_vat"] == "5.00"
    assert (await quoted({**simple, "timeZone": "America/New_York"}))[1]["total_cost"]["excl_vat"] == "2.00"
    # The site moves to Tokyo's clock (PUT): its quotes follow at once.
    site_id = tariff["siteId"]
    status, site = await api.admin("PUT", f"/v1/sites/{site_id}", {"name": "Moved", "timeZone": "Asia/Tokyo"})
    assert status == 200 and site["timeZone"] == "Asia/Tokyo"
    assert (await quoted(simple))[1]["total_cost"]["excl_vat"] == "5.00"
    for zone in ("Mars/Olympus_Mons", "", 9):
        status, problem = await quoted({**simple, "timeZone": zone})
        assert status == 400 and any("timeZone" in map(str, e["loc"]) for e in problem["errors"]), problem
