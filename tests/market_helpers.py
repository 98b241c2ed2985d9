"""Shared set-up for clearing and venue tests (what tests/conftest.py provided before the rebuild).

A small market: BTC and DOGE USDT-margined perpetuals (Binance brackets), USDe, ETH and
wBETH spot books against USDT, and USDT, USDe, ETH and wBETH as collateral.
"""

from __future__ import annotations

from fractions import Fraction

from cascadelab.clearing.collateral import CollateralAsset, Valuation, fixed, from_book
from cascadelab.clearing.core import PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import Instrument, perpetual
from cascadelab.units import money_to_units
from cascadelab.venue import Venue

BTC = perpetual("BTCUSDT", "0.1", "0.001", maker="0.0002", taker="0.0005", min_notional="5")
DOGE = perpetual("DOGEUSDT", "0.00001", "1", maker="0.0002", taker="0.0005", min_notional="5")
USDE = Instrument("USDEUSDT", "spot", "USDe", "USDT", "0.0001", "0.01", "1", "0", "0.0001")
ETH_SPOT = Instrument("ETHUSDT", "spot", "ETH", "USDT", "0.01", "0.0001", "1", "0", "0.0001")
WBETH = Instrument("WBETHUSDT", "spot", "wBETH", "USDT", "0.01", "0.0001", "1", "0", "0.0001")
# Binance BTCUSDT brackets (first four), published cum values 0, 50, 950, 11,450 USDT
BTC_TIERS = MarginTiers.from_table(
    [("50000", "0.004", 125), ("600000", "0.005", 100), ("3000000", "0.0065", 75), ("12000000", "0.01", 50), (None, "0.02", 25)]
)
DOGE_TIERS = MarginTiers.from_table([("10000", "0.01", 75), ("100000", "0.015", 50), (None, "0.025", 20)])


def usd(x: str) -> int:
    """A decimal amount as integer money units."""
    return money_to_units(x)


def make_clearing(usde: Valuation | None = None, wbeth: Valuation | None = None, journal: bool = True) -> ClearingHouse:
    """A clearing house with BTC/DOGE perps and USDT, USDe, ETH, wBETH collateral (ledger asset order as listed)."""
    collateral = [
        CollateralAsset.of("USDT", "0.9999", fixed("1")),
        CollateralAsset.of("USDe", "0.9", usde or from_book("USDEUSDT")),
        CollateralAsset.of("ETH", "0.95", from_book("ETHUSDT")),
        CollateralAsset.of(
            "wBETH",
            "0.95",
            wbeth
            or Valuation.of(
                [(Fraction(1, 5), [("book", "WBETHUSDT")]), (Fraction(4, 5), [("fixed", "1.07"), ("book", "ETHUSDT")])]
            ),
        ),
    ]
    return ClearingHouse(
        [PerpSpec(BTC, BTC_TIERS, position_limit=1_000_000), PerpSpec(DOGE, DOGE_TIERS)],
        [USDE, ETH_SPOT, WBETH],
        collateral,
        journal=journal,
    )


def make_venue(**kwargs: object) -> Venue:
    """A venue over :func:`make_clearing` with debug conservation checks on every price update."""
    return Venue(make_clearing(**kwargs), debug=True)  # type: ignore[arg-type]
