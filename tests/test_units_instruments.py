"""Exact units and instrument validation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadelab.arith import ceil_div
from cascadelab.instruments import Instrument, InstrumentError, perpetual
from cascadelab.units import (
    UnitError,
    decimal_to_units,
    money_to_units,
    rate_to_units,
    units_to_decimal,
    units_to_money,
)

BTC = perpetual("BTCUSDT", tick="0.1", lot="0.001", maker="-0.0001", taker="0.0002")
SPEC = {
    "symbol": "ETHUSDT",
    "kind": "perpetual",
    "base": "ETH",
    "quote": "USDT",
    "tick_size": "0.01",
    "lot_size": "0.001",
    "min_notional": "5",
    "maker_fee": "0.0002",
    "taker_fee": "0.0005",
}


def test_exact_round_trips() -> None:
    assert BTC.price_to_ticks("122000.1") == 1_220_001
    assert BTC.ticks_to_price(1_220_001) == Decimal("122000.1")
    assert BTC.qty_to_lots("0.005") == 5 and BTC.lots_to_qty(5) == Decimal("0.005")
    assert BTC.unit_notional == 10_000  # 0.1 x 0.001 = 0.0001 USDT = 10,000 units of 1e-8
    assert BTC.notional(94_515, 5) == money_to_units("47.2575")  # 9451.5 x 0.005


@given(st.integers(-(10**12), 10**12))
def test_units_round_trip(n: int) -> None:
    assert decimal_to_units(units_to_decimal(n, "0.00001"), "0.00001") == n
    assert money_to_units(units_to_money(n)) == n


def test_off_grid_and_floats_rejected() -> None:
    with pytest.raises(UnitError, match="not a whole multiple"):
        BTC.price_to_ticks("100.05")
    with pytest.raises(UnitError, match="not the float"):
        BTC.qty_to_lots(0.1)  # type: ignore[arg-type]
    with pytest.raises(UnitError, match="not a decimal"):
        money_to_units("abc")


def test_rates() -> None:
    assert rate_to_units("0.0002") == 200 and rate_to_units("-0.0001") == -100
    assert BTC.maker_rate == -100 and BTC.taker_rate == 200
    with pytest.raises(UnitError):
        rate_to_units("0.00000001")


def test_rounding_rule() -> None:
    # the one rounding rule for amounts owed to the venue (units.round_to_venue is now arith.ceil_div)
    assert ceil_div(7, 2) == 4 and ceil_div(-7, 2) == -3 and ceil_div(6, 2) == 3


def test_from_dict_and_min_notional() -> None:
    eth = Instrument.from_dict(SPEC)
    assert eth.min_notional_units == 5 * 10**8 and eth.unit_notional == 1_000


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("tick_size", "0", "'tick_size': must be > 0"),
        ("lot_size", "-1", "'lot_size': must be > 0"),
        ("tick_size", "0.000000001", "whole multiple of the money unit"),
        ("kind", "option", "'kind': must be one of"),
        ("taker_fee", "-0.0001", "'taker_fee': must be >= 0"),
        ("maker_fee", "-0.001", "rebate may not exceed"),
        ("maker_fee", "0.5", "plausible fee rate"),
        ("min_notional", "-5", "'min_notional': must be >= 0"),
        ("base", "", "'base'"),
        ("tick_size", "abc", "'tick_size'"),
    ],
)
def test_invalid_specs_name_the_field(field: str, value: str, needle: str) -> None:
    with pytest.raises(InstrumentError, match=needle):
        Instrument.from_dict({**SPEC, field: value})


def test_unknown_and_missing_fields() -> None:
    with pytest.raises(InstrumentError, match="unknown field"):
        Instrument.from_dict({**SPEC, "tick": "0.1"})
    spec = dict(SPEC)
    del spec["lot_size"]
    with pytest.raises(InstrumentError, match="missing field"):
        Instrument.from_dict(spec)


def test_sorted_member_is_isin_for_sorted_lists() -> None:
    """The hot-path membership test agrees with np.isin on random ids (empty lists, repeats, out-of-range values)."""
    import numpy as np

    from cascadelab.records import sorted_member

    rng = np.random.default_rng(3)
    for _ in range(500):
        x = rng.integers(-5, 60, rng.integers(0, 40))
        of = np.unique(rng.integers(0, 50, rng.integers(0, 12)))
        assert np.array_equal(sorted_member(x, of), np.isin(x, of))


def test_stack_equals_numpy_concatenate_and_refuses_a_foreign_dtype() -> None:
    import numpy as np

    from cascadelab.records import CANCEL, FILL, stack

    rng = np.random.default_rng(3)
    parts = []
    for n in rng.integers(0, 7, 40):
        a = np.zeros(int(n), CANCEL)
        for name in CANCEL.names or ():
            a[name] = rng.integers(-50, 50, len(a)).astype(a[name].dtype)
        parts.append(a if len(parts) % 3 else a[::-1])  # some parts not contiguous
    out = stack(parts, CANCEL)
    assert out.flags.writeable and out.dtype == CANCEL
    ref = np.concatenate(parts)
    assert len(out) == len(ref) and all(np.array_equal(out[name], ref[name]) for name in CANCEL.names or ())
    assert len(stack([], FILL)) == 0 and stack([], FILL).dtype == FILL
    with pytest.raises(ValueError, match="dtype"):
        stack([np.zeros(2, FILL)], CANCEL)
