"""Exact units: prices in integer ticks, sizes in integer lots, money in integer units.

Every asset's money is counted in ``MONEY_SCALE`` units per whole coin (1e-8, like a
satoshi). An instrument is valid only if one tick times one lot is a whole number of
money units, so every fill's notional ``price_ticks * qty_lots * unit_notional`` is an
exact integer. Rates (fees, margin ratios) are integers in parts per ``RATE_SCALE``.

Rounding and exact products live in :mod:`cascadelab.arith`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MONEY_DECIMALS = 8
MONEY_SCALE = 10**MONEY_DECIMALS
"""Money units per whole unit of any asset (1 USDT = 100,000,000 units)."""

SECOND_NS = 1_000_000_000
"""Nanoseconds per second: every clock in the project counts integer nanoseconds."""
HOUR_NS = 3_600 * SECOND_NS

RATE_DECIMALS = 6
RATE_SCALE = 10**RATE_DECIMALS
"""Rates are integers in millionths: 0.02% = 200, a 0.01% rebate = -100."""


class UnitError(ValueError):
    """A decimal value that cannot be represented exactly in the requested unit."""


def to_decimal(value: str | int | Decimal, what: str = "value") -> Decimal:
    """Parse a decimal string (never a float) exactly; names ``what`` on failure."""
    if isinstance(value, float):
        raise UnitError(f"{what}: give a decimal string, not the float {value!r} (floats are inexact)")
    try:
        d = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError) as exc:
        raise UnitError(f"{what}: {value!r} is not a decimal number") from exc
    if not d.is_finite():
        raise UnitError(f"{what}: {value!r} is not a finite number")
    return d


def decimal_to_units(value: str | int | Decimal, unit: str | Decimal, what: str = "value") -> int:
    """Convert a decimal amount to an integer count of ``unit``; error if not a whole multiple."""
    d = to_decimal(value, what)
    u = to_decimal(unit, "unit")
    q = d / u
    if q != q.to_integral_value():
        raise UnitError(f"{what}: {d} is not a whole multiple of {u}")
    return int(q)


def units_to_decimal(count: int, unit: str | Decimal) -> Decimal:
    """Convert an integer count of ``unit`` back to an exact decimal."""
    return (Decimal(int(count)) * to_decimal(unit, "unit")).normalize()


def money_to_units(value: str | int | Decimal, what: str = "money") -> int:
    """Whole-coin decimal amount to integer money units (exact or error)."""
    return decimal_to_units(value, Decimal(1) / MONEY_SCALE, what)


def units_to_money(units: int) -> Decimal:
    """Integer money units to an exact decimal amount of the asset."""
    return Decimal(int(units)).scaleb(-MONEY_DECIMALS)


def rate_to_units(value: str | Decimal, what: str = "rate") -> int:
    """A rate given as a decimal fraction ("0.0002" = 0.02%) to integer millionths."""
    return decimal_to_units(value, Decimal(1) / RATE_SCALE, what)
