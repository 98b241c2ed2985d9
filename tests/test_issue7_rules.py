"""Rules that once went wrong: interest overflow, reduce-only flips, two ADL scores, mark samples per update."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadelab.clearing.collateral import CollateralAsset, fixed
from cascadelab.clearing.core import LoanTerms, PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.lending import INTEREST_SCALE
from cascadelab.clearing.margin import MarginTiers
from cascadelab.cli.adl_rank import rank_positions
from cascadelab.instruments import perpetual
from cascadelab.io.positions import read_positions
from cascadelab.liquidation import adl
from cascadelab.liquidation.engine import LiquidationEngine
from cascadelab.liquidation.reference import ReferenceEngine
from cascadelab.prices.funding import FundingClock, FundingRule
from cascadelab.prices.mark import BinanceMark
from cascadelab.records import CancelReason, Reject
from cascadelab.units import MONEY_SCALE
from cascadelab.venue import Venue
from cascadelab.venue.profiles import build
from liq_helpers import usd

BTC = perpetual("BTCUSDT", "0.1", "0.001", maker="0.0002", taker="0.0005")
INT64_MAX = 2**63 - 1


# --- interest ---------------------------------------------------------------------------------------------
def lender(debts: list[int]) -> ClearingHouse:
    ch = ClearingHouse([], [], [CollateralAsset.of("USDT", "1", fixed("1")), CollateralAsset.of("BTC", "1", fixed("100000"))],
                       loan_terms=LoanTerms(10**6, 10**6))  # fmt: skip
    ids = ch.open_accounts(len(debts))
    ch.seed_lending_pool("USDT", sum(debts) + 1)
    for i, d in zip(ids.tolist(), debts, strict=True):
        ch.deposit(i, "BTC", 10**17 // 10**5)  # $1e11... enough collateral for any loan below
        if d:
            ch.borrow(i, "USDT", d)
    return ch


def test_interest_on_the_cases_that_overflowed() -> None:
    ch = lender([usd("1000"), usd("100")])
    total = ch.accrue_interest("USDT", "0.001")  # 0.1% of 1,000 is 1; of 100 is 0.1
    assert ch.ledger.balance(ch.lending.pools["USDT"], "USDT") - 1 == total == usd("1") + usd("0.1")
    ch = lender([usd("100")])
    assert ch.accrue_interest("USDT", "0.01") == usd("1")  # used to raise LedgerError


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=INT64_MAX // 100), min_size=1, max_size=5),
    st.integers(min_value=0, max_value=INTEREST_SCALE // 100),  # up to 1% per period, in 1e-9
)
def test_interest_is_exact_for_any_admissible_rate_and_debt(debts: list[int], rate: int) -> None:
    # debts up to 9.2e16 units (about $9.2e8 each; larger ones leave no room for the interest in int64)
    ch = ClearingHouse([], [], [CollateralAsset.of("USDT", "1", fixed("1"))])
    ids = ch.open_accounts(len(debts))
    ch.accounts.debt[0, : len(debts)] = debts  # loans as booked; interest is charged on whatever is owed
    ch.lending.principal["USDT"] = sum(debts)
    before = ch.ledger.balances[0, : len(debts)].copy()
    total = ch.accrue_interest("USDT", str(Decimal(rate) / INTEREST_SCALE))
    want = [-((-d * rate) // INTEREST_SCALE) for d in debts]  # ceil, with Python's unbounded integers
    assert (before - ch.ledger.balances[0, ids]).tolist() == want and total == sum(want)


# --- reduce-only ---------------------------------------------------------------------------------------------
def venue_with_long() -> tuple[Venue, int, int]:
    ch = ClearingHouse(
        [PerpSpec(BTC, MarginTiers.from_table([(None, "0.005", 100)]))], [], [CollateralAsset.of("USDT", "1", fixed("1"))]
    )
    v = Venue(ch)
    mm, t = (int(x) for x in v.open_accounts(2))
    ch.deposit(mm, "USDT", usd("10000000"))
    ch.deposit(t, "USDT", usd("100000"))
    ch.set_mark("BTCUSDT", BTC.price_to_ticks("100000"))
    assert v.submit_decimal(mm, "BTCUSDT", -1, "1", "100000").accepted
    assert v.submit_decimal(t, "BTCUSDT", 1, "1", "100000").filled == 1000
    return v, mm, t


def test_two_reduce_only_sells_never_flip_the_position() -> None:
    v, mm, t = venue_with_long()
    a = v.submit_decimal(t, "BTCUSDT", -1, "1", "100100", reduce_only=True)
    b = v.submit_decimal(t, "BTCUSDT", -1, "1", "100200", reduce_only=True)
    assert a.accepted and b.accepted and a.resting == b.resting == 1000
    fill = v.submit_decimal(mm, "BTCUSDT", 1, "2", "100200")  # sweeps both asks
    assert fill.filled == 1000  # only the first reduce-only order can still reduce
    assert v.clearing.accounts.size[0, t] == 0
    cancels = v.drain()[1]
    ro = cancels[cancels["reason"] == CancelReason.REDUCE_ONLY]
    assert len(ro) == 1 and ro[0]["order_id"] == b.order_id and ro[0]["qty"] == 1000
    assert v.books[0].open_orders(t) == [] and v.clearing.accounts.reserved[t] == 0
    # a reduce-only order that would increase (the position is flat) is rejected
    assert v.submit_decimal(t, "BTCUSDT", -1, "1", "100300", reduce_only=True).reason == Reject.REDUCE_ONLY_WOULD_INCREASE


def test_resting_reduce_only_orders_go_when_the_position_closes_elsewhere() -> None:
    v, mm, t = venue_with_long()
    ro = v.submit_decimal(t, "BTCUSDT", -1, "1", "101000", reduce_only=True)
    assert v.submit_decimal(mm, "BTCUSDT", 1, "1", "100000").accepted  # a bid the trader sells into with a normal order
    v.drain()
    assert v.submit_decimal(t, "BTCUSDT", -1, "1", None).filled == 1000  # flat now
    cancels = v.drain()[1]
    assert [(int(c["order_id"]), int(c["reason"])) for c in cancels] == [(ro.order_id, CancelReason.REDUCE_ONLY)]


def test_reduce_only_larger_than_the_position_is_capped_when_it_trades() -> None:
    v, mm, t = venue_with_long()
    assert v.submit_decimal(mm, "BTCUSDT", 1, "5", "99000").accepted
    ack = v.submit_decimal(t, "BTCUSDT", -1, "3", None, reduce_only=True)
    assert ack.accepted and ack.filled == 1000 and ack.cancelled == 2000
    assert v.clearing.accounts.size[0, t] == 0


# --- one ADL score everywhere ------------------------------------------------------------------------------
CSV = """account,symbol,side,size,entry_price,mark_price,wallet_balance
a,BTCUSDT,short,1,100000,90000,5000
b,BTCUSDT,short,2,100000,90000,30000
c,BTCUSDT,short,1,95000,90000,2000
d,BTCUSDT,long,4,100000,90000,80000
"""


@pytest.mark.parametrize("venue_name", ["binance", "bybit", "okx", "hyperliquid", "bitmex"])
@pytest.mark.parametrize("engine_cls", [ReferenceEngine, LiquidationEngine])
def test_engine_and_adl_rank_score_the_same_positions_alike(tmp_path: Path, venue_name: str, engine_cls: type) -> None:
    p = tmp_path / "positions.csv"
    p.write_text(CSV)
    rows = {r.account: r for r in rank_positions(read_positions(p), venue_name) if r.side == "short"}
    v = build(venue_name, [("BTCUSDT", "0.1", "0.001")], engine="reference" if engine_cls is ReferenceEngine else "batched")
    ch = v.clearing
    ids = dict(zip("abcd", (int(x) for x in v.open_accounts(4)), strict=True))
    for name, size, entry, wallet in (("a", 1, 100000, 5000), ("b", 2, 100000, 30000), ("c", 1, 95000, 2000)):
        i = ids[name]
        ch.deposit(i, "USDT", usd(str(wallet)))
        lots = size * 1000
        # book the position exactly as the file describes it (no fees): entry cost and size
        ch.accounts.size[0, i] = -lots
        ch.accounts.cost[0, i] = -lots * BTC.price_to_ticks(str(entry)) * BTC.unit_notional
        ch.accounts.size[0, ids["d"]] += lots
        ch.accounts.cost[0, ids["d"]] += lots * BTC.price_to_ticks(str(entry)) * BTC.unit_notional
    ch.deposit(ids["d"], "USDT", usd("80000"))
    ch.set_mark("BTCUSDT", BTC.price_to_ticks("90000"))
    eng = v.risk
    c = eng.candidate_arrays(0, -1) if isinstance(eng, LiquidationEngine) else eng.candidates(0, -1)
    scores = adl.scores(eng.cfg.ranking, c)
    by_id = {int(a): float(s) for a, s in zip(c.account, scores, strict=True)}
    for name in "abc":
        assert by_id[ids[name]] == pytest.approx(rows[name].score, rel=1e-12), (name, venue_name)


# --- Binance mark: one basis sample per second of market time -------------------------------------------------
def marks_with_updates(every_ns: int, until_s: int) -> Fraction:
    rule = BinanceMark()
    clock = FundingClock(FundingRule(), 0)
    mark = Fraction(0)
    for t in range(0, until_s * 10**9 + 1, every_ns):
        mid = Fraction(100 + (t // 10**9) % 7)  # the book's mid changes once a second
        mark = rule.update(t, Fraction(100), mid - Fraction(1, 2), mid + Fraction(1, 2), None, clock)
    return mark


def test_binance_basis_is_sampled_once_per_second_whatever_the_update_interval() -> None:
    fine = marks_with_updates(10**8, 60)  # every 100 ms
    second = marks_with_updates(10**9, 60)  # every second
    assert fine == second
    coarse = BinanceMark()
    clock = FundingClock(FundingRule(), 0)
    coarse.update(0, Fraction(100), Fraction(99), Fraction(101), None, clock)
    coarse.update(5 * 10**9, Fraction(100), Fraction(101), Fraction(103), None, clock)  # 5 s later: 5 new samples
    assert [s for s, _ in coarse.basis] == [0, 1, 2, 3, 4, 5]
    assert [b for _, b in coarse.basis] == [0, 0, 0, 0, 0, 2]  # seconds 1-4 hold the last basis seen


def test_money_scale_is_what_interest_assumes() -> None:
    assert MONEY_SCALE == 10**8 and np.iinfo(np.int64).max == INT64_MAX
