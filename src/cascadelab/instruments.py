"""Instrument specifications: what is traded, in which exact units, at which fees."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cascadelab.units import (
    MONEY_SCALE,
    RATE_SCALE,
    UnitError,
    decimal_to_units,
    money_to_units,
    rate_to_units,
    to_decimal,
    units_to_decimal,
)


class InstrumentError(ValueError):
    """An instrument spec that cannot be used; the message names the field."""


class InstrumentKind(StrEnum):
    """What an instrument is: a perpetual future or a spot pair."""

    PERPETUAL = "perpetual"
    SPOT = "spot"


@dataclass(frozen=True)
class Instrument:
    """A validated instrument; all derived integer quantities are exact.

    ``unit_notional`` is the money value (in 1e-8 units of the quote asset) of one lot
    at a price of one tick, so ``notional = price_ticks * lots * unit_notional``.
    Fee rates are integer millionths; the maker rate may be negative (a rebate).
    """

    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    unit_notional: int = field(init=False)
    min_notional_units: int = field(init=False)
    maker_rate: int = field(init=False)
    taker_rate: int = field(init=False)

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise InstrumentError(f"instrument {self.symbol!r}: field {name!r}: {why}")

        if not self.symbol or not isinstance(self.symbol, str):
            raise InstrumentError("instrument: field 'symbol': must be a non-empty string")
        for name in ("base", "quote"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                fail(name, "must be a non-empty asset code such as 'BTC' or 'USDT'")
        try:
            kind = InstrumentKind(self.kind)
        except ValueError:
            fail("kind", f"must be one of {[k.value for k in InstrumentKind]}, got {self.kind!r}")
        object.__setattr__(self, "kind", kind)
        for name in ("tick_size", "lot_size", "min_notional", "maker_fee", "taker_fee"):
            try:
                object.__setattr__(self, name, to_decimal(getattr(self, name), name))
            except UnitError as exc:
                fail(name, str(exc))
        if self.tick_size <= 0:
            fail("tick_size", f"must be > 0, got {self.tick_size}")
        if self.lot_size <= 0:
            fail("lot_size", f"must be > 0, got {self.lot_size}")
        if self.min_notional < 0:
            fail("min_notional", f"must be >= 0, got {self.min_notional}")
        unit = self.tick_size * self.lot_size * MONEY_SCALE
        if unit != unit.to_integral_value():
            fail(
                "tick_size",
                f"tick_size x lot_size = {self.tick_size * self.lot_size} must be a whole multiple "
                f"of the money unit 1e-8 so that every notional is exact",
            )
        object.__setattr__(self, "unit_notional", int(unit))
        try:
            object.__setattr__(self, "min_notional_units", money_to_units(self.min_notional, "min_notional"))
        except UnitError as exc:
            fail("min_notional", str(exc))
        for name, attr in (("maker_fee", "maker_rate"), ("taker_fee", "taker_rate")):
            try:
                object.__setattr__(self, attr, rate_to_units(getattr(self, name), name))
            except UnitError as exc:
                fail(name, f"{exc} (rates are exact to 1e-6, i.e. 0.0001%)")
            if abs(getattr(self, attr)) >= RATE_SCALE // 10:
                fail(name, f"{getattr(self, name)} is not a plausible fee rate (|rate| must be < 10%)")
        if self.taker_rate < 0:
            fail("taker_fee", f"must be >= 0, got {self.taker_fee}")
        if self.maker_rate + self.taker_rate < 0:
            fail("maker_fee", "the maker rebate may not exceed the taker fee (the venue would pay for every trade)")

    @classmethod
    def from_dict(cls, spec: dict[str, Any], source: str = "instrument spec") -> Instrument:
        """Build from a mapping such as a TOML table; unknown or missing keys are named."""
        allowed = {"symbol", "kind", "base", "quote", "tick_size", "lot_size", "min_notional", "maker_fee", "taker_fee"}
        unknown = set(spec) - allowed
        if unknown:
            raise InstrumentError(f"{source}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        missing = allowed - set(spec) - {"min_notional"}
        if missing:
            raise InstrumentError(f"{source}: missing field(s) {sorted(missing)}")
        values = {k: (str(v) if isinstance(v, (int, float)) and k != "symbol" else v) for k, v in spec.items()}
        values.setdefault("min_notional", "0")
        return cls(**values)  # type: ignore[arg-type]  # strings are validated and converted in __post_init__

    # exact conversions -----------------------------------------------------------
    def price_to_ticks(self, price: str | Decimal | int) -> int:
        """Decimal price to integer ticks; error unless it is on the tick grid."""
        return decimal_to_units(price, self.tick_size, f"{self.symbol} price")

    def ticks_to_price(self, ticks: int) -> Decimal:
        """Integer ticks back to the exact decimal price."""
        return units_to_decimal(ticks, self.tick_size)

    def qty_to_lots(self, qty: str | Decimal | int) -> int:
        """Decimal quantity to integer lots; error unless it is a whole number of lots."""
        return decimal_to_units(qty, self.lot_size, f"{self.symbol} quantity")

    def lots_to_qty(self, lots: int) -> Decimal:
        """Integer lots back to the exact decimal quantity."""
        return units_to_decimal(lots, self.lot_size)

    @property
    def lot_units(self) -> int | None:
        """Money units of the base asset in one lot (spot delivery), or None if not a whole number."""
        u = self.lot_size * MONEY_SCALE
        return int(u) if u == u.to_integral_value() else None

    def notional(self, price_ticks: int, lots: int) -> int:
        """Exact notional in money units of the quote asset."""
        return int(price_ticks) * int(lots) * self.unit_notional


def perpetual(symbol: str, tick: str, lot: str, maker: str = "0.0002", taker: str = "0.0005", **kw: Any) -> Instrument:
    """Shorthand for a USDT-margined perpetual such as ``perpetual("BTCUSDT", "0.1", "0.001")``."""
    base = kw.pop("base", symbol.removesuffix("USDT").removesuffix("USDC"))
    quote = kw.pop("quote", "USDT" if symbol.endswith("USDT") else "USDC")
    return Instrument(
        symbol,
        InstrumentKind.PERPETUAL,
        base,
        quote,
        Decimal(tick),
        Decimal(lot),
        Decimal(kw.pop("min_notional", "0")),
        Decimal(maker),
        Decimal(taker),
    )


def spot(
    symbol: str, base: str, quote: str, tick: str, lot: str, min_notional: str = "0", maker: str = "0.0001", taker: str = "0.0001"
) -> Instrument:
    """Shorthand for a spot pair such as ``spot("ETHUSDT", "ETH", "USDT", "0.01", "0.0001")`` (decimal strings, never floats)."""
    return Instrument(
        symbol,
        InstrumentKind.SPOT,
        base,
        quote,
        Decimal(tick),
        Decimal(lot),
        Decimal(min_notional),
        Decimal(maker),
        Decimal(taker),
    )
