"""Shared set-up for liquidation tests: one BTC perpetual, a market maker and a trader, any engine.

BTCUSDT: tick 0.1, lot 0.001 BTC, maker 0.02%, taker 0.05%; flat MMR (default 0.5%, cum 0)
up to 100x. Collateral: USDT at 1 (ratio 1) and ETH at a fixed price (ratio 0.95).
Conservation is proved exactly (ledger, pools, journal replay) after every step.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from cascadelab.clearing.collateral import CollateralAsset, fixed, from_index
from cascadelab.clearing.core import PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual
from cascadelab.liquidation import config_from_params, engine_class
from cascadelab.records import LIQ_EVENT, Ev
from cascadelab.units import money_to_units
from cascadelab.venue import Venue

BTC = perpetual("BTCUSDT", "0.1", "0.001", maker="0.0002", taker="0.0005")
S = 1_000_000_000
ENGINES = ("reference", "batched")


def usd(x: str) -> int:
    return money_to_units(x)


def px(p: str) -> int:
    return BTC.price_to_ticks(p)


def hl_params(**overrides: object) -> dict:
    """Hyperliquid's rules with a 1M USDT backstop vault."""
    base = {
        "style": "hyperliquid",
        "clearance_fee": 0,
        "fund_structure": "vault",
        "fund_seed": usd("1000000"),
        "adl_trigger": "negative_equity",
        "adl_ranking": "hyperliquid",
        "adl_price": "previous_mark",
    }
    return base | overrides


class Market:
    """A venue with the engine ``engine`` under ``params``; the trader is long ``size`` BTC at 100,000."""

    def __init__(
        self,
        params: dict,
        engine: str = "reference",
        trader_usdt: str = "2100",
        trader_eth: str = "0",
        size: str = "1",
        leverage: int = 50,
        mmr: str = "0.005",
        max_leverage: int = 100,
        eth_price: str = "4000",
        isolated: bool = False,
    ) -> None:
        ch = ClearingHouse(
            [PerpSpec(BTC, MarginTiers.from_table([(None, mmr, max_leverage)]))],
            [],
            [CollateralAsset.of("USDT", "1", fixed("1")), CollateralAsset.of("ETH", "0.95", from_index("ETH"))],
        )
        self.v = Venue(ch, debug=True)
        self.eth = self.v.add_asset_index("ETH", {"external": Fraction(1)})
        self.eth.update("external", Fraction(eth_price), 0)
        self.eng = engine_class(engine)(self.v, config_from_params(**params))
        self.v.attach_risk(self.eng)
        self.ch = ch
        self.mm, self.trader = (int(x) for x in self.v.open_accounts(2))
        ch.deposit(self.mm, "USDT", usd("10000000"))
        if usd(trader_usdt):
            ch.deposit(self.trader, "USDT", usd(trader_usdt))
        if money_to_units(trader_eth):
            ch.deposit(self.trader, "ETH", money_to_units(trader_eth))
        ch.set_leverage(self.trader, "BTCUSDT", leverage)
        if isolated:
            from cascadelab.clearing.accounts import MarginMode

            ch.set_margin_mode(self.trader, "BTCUSDT", MarginMode.ISOLATED)
        ch.set_mark("BTCUSDT", px("100000"))
        self.v.update_prices(0)
        assert self.v.submit_decimal(self.mm, "BTCUSDT", -1, size, "100000").accepted
        assert self.v.submit_decimal(self.trader, "BTCUSDT", 1, size, "100000").filled == BTC.qty_to_lots(size)

    def step(self, mark: str, t: float) -> np.ndarray:
        """Set the mark, run one venue step at ``t`` seconds, prove conservation; returns the step's events."""
        self.ch.set_mark("BTCUSDT", px(mark))
        report = self.v.step(int(t * S))
        self.ch.check(replay_journal=True)
        assert_funds_not_negative(self.eng)
        return report.events

    def events(self, kind: Ev | None = None) -> np.ndarray:
        """Every liquidation event so far (of one kind)."""
        log = self.eng.event_log
        ev = np.concatenate(log) if log else np.zeros(0, LIQ_EVENT)
        return ev if kind is None else ev[ev["kind"] == kind]

    def fund(self) -> int:
        """Balance of the fund backing BTCUSDT."""
        return self.eng.fund_balance(self.eng.fund_of(0))


def assert_funds_not_negative(eng) -> None:
    """No insurance fund (or vault) balance below zero."""
    for f in range(len(eng.fund_accounts)):
        assert eng.fund_balance(f) >= 0, f"fund {f} is negative: {eng.fund_balance(f)}"
