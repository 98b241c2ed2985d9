"""BRIEF §2 worked examples, driven through the real book and fee code.

Tick $0.1, taker fee 0.02%, maker rebate 0.01%; the market maker (owner 1) quotes
1000.0 / 1000.1 for one unit. Quantities are exact integers; the brief's rounded
figures are checked to the cent.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from cascadelab.book import OrderBook
from cascadelab.fees import fee, fees_vectorized
from cascadelab.instruments import Instrument, InstrumentKind
from cascadelab.records import BOOK_FILL
from cascadelab.units import units_to_money

MM, OTHER = 1, 2
BUY, SELL = 1, -1

INSTRUMENT = Instrument(
    "TESTUSDT",
    InstrumentKind.PERPETUAL,
    "TEST",
    "USDT",
    Decimal("0.1"),
    Decimal("0.001"),
    Decimal("0"),
    Decimal("-0.0001"),
    Decimal("0.0002"),
)
ONE = INSTRUMENT.qty_to_lots("1")


def px(price: str) -> int:
    return INSTRUMENT.price_to_ticks(price)


class Trader:
    """Cash and position of the market maker, booked from fills (what clearing will do)."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.cash = 0  # money units, fees included
        self.position = 0  # lots
        self.cost = 0  # money units paid for the open position, fees included
        self.next_id = 100

    def book_fills(self, fills: np.ndarray) -> None:
        assert fills.dtype == BOOK_FILL
        notional = fills["price"] * fills["qty"] * INSTRUMENT.unit_notional
        maker_fee = fees_vectorized(notional, INSTRUMENT.maker_rate)
        taker_fee = fees_vectorized(notional, INSTRUMENT.taker_rate)
        for j, f in enumerate(fills):
            n, mf, tf = int(notional[j]), int(maker_fee[j]), int(taker_fee[j])
            for owner, fee_paid, is_maker in ((int(f["maker_owner"]), mf, True), (int(f["taker_owner"]), tf, False)):
                if owner != MM:
                    continue
                aggressor = int(f["aggressor"])
                mm_side = -aggressor if is_maker else aggressor
                self.cash -= mm_side * n + fee_paid
                self.position += mm_side * int(f["qty"])
                self.cost += mm_side * n + fee_paid

    def order(self, owner: int, side: int, price: str, qty: int = ONE, market: bool = False) -> None:
        self.next_id += 1
        if market:
            r = self.book.market(self.next_id, owner, side, qty, protection_ticks=50)
        else:
            r = self.book.limit(self.next_id, owner, side, px(price), qty)
        self.book_fills(r.fills)

    def avg_cost(self) -> Decimal:
        return units_to_money(self.cost) / INSTRUMENT.lots_to_qty(self.position)


@pytest.fixture
def mm() -> Trader:
    t = Trader(OrderBook())
    t.order(MM, BUY, "1000.0")
    t.order(MM, SELL, "1000.1")
    assert (t.book.best_bid(), t.book.best_ask()) == (px("1000.0"), px("1000.1"))
    return t


def test_round_trip_earns_spread_plus_two_rebates(mm: Trader) -> None:
    mm.order(OTHER, SELL, "1000.0")  # hits the MM bid
    assert units_to_money(mm.cost) == Decimal("999.9")  # effective cost 1000.0 - 0.1 rebate
    mm.order(OTHER, BUY, "1000.1")  # lifts the MM ask
    assert mm.position == 0
    profit = units_to_money(mm.cash)
    # 0.1 spread + 0.1 rebate + 0.10001 rebate (1000.1 x 0.01%) = $0.3 to the cent
    assert profit == Decimal("0.30001")
    assert round(profit, 2) == Decimal("0.30")


def long_one_after_drop(mm: Trader) -> Trader:
    """MM long 1 at effective 999.9; fair price drops to 998.0; stale quotes cancelled."""
    mm.order(OTHER, SELL, "1000.0")
    mm.book.cancel_all(MM)
    return mm


def test_plan1_close_at_market_loses_about_2_1(mm: Trader) -> None:
    long_one_after_drop(mm)
    mm.order(OTHER, BUY, "998.0")  # someone bids at the new fair price
    mm.order(MM, SELL, "", market=True)
    loss = -units_to_money(mm.cash)
    assert mm.position == 0
    assert loss == Decimal("1.9") + Decimal("998.0") * Decimal("0.0002")  # 2.0996
    assert round(loss, 1) == Decimal("2.1")


def test_plan2_requote_ask_as_maker_loses_about_1_7(mm: Trader) -> None:
    long_one_after_drop(mm)
    mm.order(MM, SELL, "998.1")
    mm.order(OTHER, BUY, "998.1")
    loss = -units_to_money(mm.cash)
    assert loss == Decimal("1.8") - Decimal("998.1") * Decimal("0.0001")  # 1.70019
    assert round(loss, 1) == Decimal("1.7")


def test_plan3_skew_averages_down_to_998_9(mm: Trader) -> None:
    long_one_after_drop(mm)
    mm.order(MM, SELL, "998.8")
    mm.order(MM, BUY, "998.0")
    mm.order(MM, BUY, "997.9")
    mm.order(OTHER, SELL, "998.0")  # fills the 998.0 bid: cost 998.0 - 0.0998
    assert INSTRUMENT.lots_to_qty(mm.position) == 2
    assert units_to_money(mm.cost) == Decimal("999.9") + Decimal("998.0") - Decimal("0.0998")
    assert round(mm.avg_cost(), 1) == Decimal("998.9")
    # the ask can come down to the break-even 998.9, keeping its size
    ask_id = next(o for o in mm.book.open_orders(MM) if mm.book.order(o).side == SELL)
    assert mm.book.amend(ask_id, MM, px("998.9"), ONE).resting == ONE


def test_rounding_rule_favours_the_venue() -> None:
    assert fee(1, 200) == 1  # 0.0002 of a unit rounds up to a whole unit
    assert fee(1, -100) == 0  # a rebate of 0.0001 unit rounds toward zero
    assert fee(-1, 200) == 0
    big = np.array([9_000_000_000_000_000, 123_456_789, 1, 0, 999_999], np.int64)
    for rate in (200, -100, 750, 0):
        assert fees_vectorized(big, rate).tolist() == [fee(n, rate) for n in big.tolist()]
