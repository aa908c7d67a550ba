"""Money rules: ISO 4217 currencies and their minor units, and the exact price of a session."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

# ISO 4217 minor units (digits after the decimal point) of the currencies a site may bill in.
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys((
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
        "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CNY", "COP",
        "CRC", "CUP", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
        "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD",
        "KES", "KGS", "KHR", "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MKD",
        "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK",
        "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD",
        "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SYP", "SZL", "THB", "TJS",
        "TMT", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "UYU", "UZS", "VES", "WST", "XCD", "YER",
        "ZAR", "ZMW", "ZWG",
    ), 2),
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}

MAX_PRICE_DECIMALS = 6


def minor_unit(currency: str) -> int:
    return MINOR_UNITS[currency]


def session_cost(energy_wh: Decimal, price_per_kwh: Decimal, currency: str) -> Decimal:
    """energyWh / 1000 * pricePerKwh, exact, rounded half-up to the currency's minor unit."""
    with localcontext() as ctx:
        ctx.prec = 100  # wide enough that the product is exact; only quantize rounds
        exact = (energy_wh * price_per_kwh).scaleb(-3)
        return exact.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(minor_unit(currency)))


def price_decimals(price: Decimal) -> int:
    """Decimal places a price really needs (trailing zeros do not count)."""
    exponent = price.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def price_text(price: Decimal, currency: str) -> str:
    """A price as the API shows it: at least the currency's minor-unit digits ("0.30" for 0.3 USD),
    more when it has them ("0.3456")."""
    digits = max(minor_unit(currency), price_decimals(price)) if currency in MINOR_UNITS else price_decimals(price)
    return str(price.quantize(Decimal(1).scaleb(-digits)))
