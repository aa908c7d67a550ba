"""What a CDR states of a priced session (services/billing/cdr_figures.py), on its own: the totals
are the engine's, to the cent, and the charging periods split where an element starts applying,
with the dimensions OCPI gives charging and parking."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from services.billing.cdr_figures import session_figures
from services.billing.tariff_engine import Segment, price
from tests.billing.test_tariff_engine import component, tariff

D = Decimal
MONDAY_EVENING = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)


def test_a_session_over_a_price_change_and_parked_after_is_stated_as_the_engine_priced_it():
    peak = tariff(
        {"price_components": [component("ENERGY", "0.40", vat="21"), component("PARKING_TIME", "2.00", step=60)],
         "restrictions": {"start_time": "17:00", "end_time": "20:00"}},
        {"price_components": [component("ENERGY", "0.20", vat="21"), component("PARKING_TIME", "2.00", step=60)]},
    )
    row = {"tariff_id": uuid4(), "created_at": datetime(2026, 11, 1, tzinfo=UTC)}
    segments = [Segment(MONDAY_EVENING, MONDAY_EVENING + timedelta(hours=1), D(10_000)),  # 5 kWh each side of 17:00
                Segment(MONDAY_EVENING + timedelta(hours=1), MONDAY_EVENING + timedelta(hours=1, minutes=30), D(0), charging=False)]
    priced = price(peak, segments)
    figures = session_figures(row, peak, segments, priced)

    # 5 kWh x 0.20 + 5 kWh x 0.40 = 3.00, +21% VAT on energy; parking 0.5 h x 2.00 = 1.00, no VAT
    assert figures["total_cost"] == {"excl_vat": "4.00", "incl_vat": "4.63"} == {
        "excl_vat": str(priced.total_excl_vat.quantize(D("0.01"))), "incl_vat": str(priced.cost_amount)}
    assert figures["total_energy_cost"] == {"excl_vat": "3.00", "incl_vat": "3.63"}
    assert figures["total_parking_cost"] == {"excl_vat": "1.00", "incl_vat": "1.00"}
    assert figures["total_time_cost"] == figures["total_fixed_cost"] == {"excl_vat": "0.00", "incl_vat": "0.00"}
    assert (figures["total_energy"], figures["total_time"], figures["total_parking_time"]) == ("10", "1.5", "0.5")
    assert (figures["start_date_time"], figures["end_date_time"]) == ("2026-11-30T16:30:00Z", "2026-11-30T18:00:00Z")
    assert [(p["start_date_time"], p["dimensions"]) for p in figures["charging_periods"]] == [
        ("2026-11-30T16:30:00Z", [{"type": "ENERGY", "volume": "5"}, {"type": "TIME", "volume": "0.5"}]),
        ("2026-11-30T17:00:00Z", [{"type": "ENERGY", "volume": "5"}, {"type": "TIME", "volume": "0.5"}]),
        ("2026-11-30T17:30:00Z", [{"type": "PARKING_TIME", "volume": "0.5"}]),
    ]
    assert {p["tariff_id"] for p in figures["charging_periods"]} == {figures["tariff"]["id"]} == {str(row["tariff_id"])}
    assert figures["tariff"]["last_updated"] == "2026-11-01T00:00:00Z" and figures["tariff"]["currency"] == "EUR"
