"""Money as billing systems want it: Decimal amounts in a currency's minor units.

Never floats. Rounding is half up, to the currency's ISO 4217 minor unit. Amounts a
config gives are at most `MAX_AMOUNT`, percentages at most `PERCENT_PLACES` decimals:
a credit, fee x percent / 100, is then exact in Decimal's 28 significant digits (at
most 13 + 3 digits of fee times 3 + 6 of percent), never rounded along the way.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units where they are not 2.
_MINOR_UNITS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


MAX_AMOUNT = Decimal(10) ** 12
PERCENT_PLACES = 6


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit (2 unless ISO 4217 says otherwise)."""
    return _MINOR_UNITS.get(currency, 2)


def quantise(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up to the currency's minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)
