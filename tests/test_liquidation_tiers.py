"""Each liquidation tier on its own, with numbers that can be checked by hand.

Set-up: BTCUSDT (tick 0.1, lot 0.001 BTC, maker 0.02%, taker 0.05%), flat MMR 0.5% (cum 0) up
to 100x; USDT collateral at ratio 1. The market maker ``mm`` is the trader's counterparty.
Conservation is proved exactly (ledger, settlement pool, journal replay) after every step.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.collateral import CollateralAsset, fixed
from cascadelab.clearing.house import ClearingHouse, PerpSpec
from cascadelab.clearing.ledger import SOCIALIZED_LOSS
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual
from cascadelab.liquidation.engine import LiquidationConfig, LiquidationEngine
from cascadelab.liquidation.events import Ev
from cascadelab.units import money_to_units
from cascadelab.venue import Venue

BTC = perpetual("BTCUSDT", "0.1", "0.001", maker="0.0002", taker="0.0005")
S = 1_000_000_000


def usd(x: str) -> int:
    return money_to_units(x)


def px(p: str) -> int:
    return BTC.price_to_ticks(p)


def setup(
    cfg: LiquidationConfig,
    trader_usdt: str = "2100",
    size: str = "1",
    leverage: int = 50,
    mmr: str = "0.005",
    max_leverage: int = 100,
):
    """Trader long ``size`` BTC at 100,000 from the market maker; returns (venue, engine, mm, trader)."""
    ch = ClearingHouse(
        [PerpSpec(BTC, MarginTiers.from_table([(None, mmr, max_leverage)]))], [], [CollateralAsset.of("USDT", "1", fixed("1"))]
    )
    v = Venue(ch, debug=True)
    eng = LiquidationEngine(v, cfg)
    mm, trader = v.open_accounts(2)
    ch.deposit(mm, "USDT", usd("10000000"))
    ch.deposit(trader, "USDT", usd(trader_usdt))
    ch.set_leverage(trader, "BTCUSDT", leverage)
    ch.set_mark("BTCUSDT", px("100000"))
    assert v.submit_decimal(mm, "BTCUSDT", -1, size, "100000").accepted
    assert v.submit_decimal(trader, "BTCUSDT", 1, size, "100000").filled == BTC.qty_to_lots(size)
    return v, eng, int(mm), int(trader)


def hyperliquid_config(**overrides: object) -> LiquidationConfig:
    """Hyperliquid's rules with a 1M USDT backstop vault; overrides for the test at hand."""
    base = {
        "style": "hyperliquid",
        "clearance_fee": 0,
        "fund_structure": "vault",
        "fund_seed": usd("1000000"),
        "adl_trigger": "negative_equity",
        "adl_ranking": "hyperliquid",
        "adl_price": "previous_mark",
    }
    return LiquidationConfig(**(base | overrides))


def step(v: Venue, eng: LiquidationEngine, mark: str, t: int) -> list[int]:
    v.clearing.set_mark("BTCUSDT", px(mark))
    out = eng.step(t * S)
    v.clearing.check(replay_journal=True)
    return out


def test_tier1_binance_partial_liquidation_stops_when_compliant() -> None:
    cfg = LiquidationConfig(style="binance", clearance_fee=4_000, fund_seed=usd("1000"))
    v, eng, mm, t = setup(cfg, trader_usdt="4100", leverage=25, mmr="0.02", max_leverage=25)
    ch = v.clearing
    # equity 4,100 - 50 fee = 4,050; at 97,900 uPnL is -2,100: 1,950 < MM 2% x 97,900 = 1,958 (short by 8)
    assert v.submit_decimal(mm, "BTCUSDT", 1, "5", "97890").accepted
    fund0 = eng.fund_balance("BTCUSDT")
    assert step(v, eng, "97900", 1) == [t]
    fills = eng.events.of(Ev.LIQUIDATION_FILL)
    sold = sum(e.qty for e in fills)
    notional = sum(e.qty * e.price for e in fills) * BTC.unit_notional
    # 8 USDT short / (97.9 per lot x 2%) = 4.1 lots; the engine sends at least 10% of the position
    assert [(e.price, e.qty) for e in fills] == [(px("97890"), 100)]
    assert ch.accounts.size[0, t] == 1000 - sold == 900  # partial: the rest is kept
    fee = sum(e.amount for e in eng.events.of(Ev.CLEARANCE_FEE))
    assert fee == -(-notional * 4_000 // 10**6)  # 40 bps of the liquidated notional, rounded up
    assert eng.fund_balance("BTCUSDT") - fund0 == fee
    am = ch.account_margin(t)
    assert am.equity >= am.maintenance and ch.accounts.state[t] == AccountState.NORMAL
    assert eng.events.of(Ev.COMPLIANT)


def test_tier1_hyperliquid_chunks_then_cooldown_then_full() -> None:
    cfg = hyperliquid_config(
        chunk_threshold=usd("100000") // 2,
        backstop_fraction=(1, 100),
    )
    v, eng, mm, _t = setup(cfg, trader_usdt="2100")
    assert v.submit_decimal(mm, "BTCUSDT", 1, "10", "98000").accepted
    step(v, eng, "98300", 1)  # 98,300 notional > 50,000 threshold: a 20% chunk, then 30 s cooldown
    orders = eng.events.of(Ev.LIQUIDATION_ORDER)
    assert [o.qty for o in orders] == [200] and orders[0].price == 0  # market order, 20% of 1,000 lots
    step(v, eng, "98300", 20)  # still inside the cooldown: nothing
    assert len(eng.events.of(Ev.LIQUIDATION_ORDER)) == 1
    step(v, eng, "98000", 32)  # after the cooldown, if still below: the whole remaining position
    # after the cooldown, still below maintenance: one market order for the whole remaining 800 lots
    assert [o.qty for o in eng.events.of(Ev.LIQUIDATION_ORDER)] == [200, 800]
    assert eng.events.of(Ev.CLEARANCE_FEE) == []  # no clearance fee on Hyperliquid


def test_takeover_and_throughput_limited_unwinding() -> None:
    cfg = LiquidationConfig(
        style="binance", fund_seed=usd("100000"), liquidator_notional_per_s=usd("30000"), liquidator_orders_per_s=1.0
    )
    v, eng, mm, t = setup(cfg)
    ch = v.clearing
    step(v, eng, "98300", 1)  # no bids at all: nothing fills, the liquidator takes the position over at the mark
    assert ch.accounts.state[t] == AccountState.TAKEN_OVER and ch.accounts.size[0, t] == 0
    assert ch.accounts.size[0, eng.liquidator] == 1000
    assert eng.backlog() == 1000 * px("98300") * BTC.unit_notional
    assert v.submit_decimal(mm, "BTCUSDT", 1, "5", "98000").accepted  # liquidity returns
    backlog = [eng.backlog()]
    for s in range(2, 8):
        step(v, eng, "98300", s)
        backlog.append(eng.backlog())
    sold = [e.qty for e in eng.events.of(Ev.UNWIND_FILL)]
    # 30,000 USDT per second at ~98,300 per BTC: at most 305 lots per 1 s step
    assert all(q <= 305 for q in sold) and sum(sold) == 1000
    assert backlog[-1] == 0 and all(b1 <= b0 for b0, b1 in itertools.pairwise(backlog))
    assert [h["backlog"] for h in eng.history][-1] == 0


def gap_down(cfg: LiquidationConfig, counterparties: bool = True):
    """The trader is taken over after a gap that leaves it 500 USDT below zero."""
    v, eng, _mm, t = setup(cfg)
    ch = v.clearing
    shorts = []
    if counterparties:  # two profitable shorts that ADL can close: s1 more levered than s2
        s1, s2, buyer = (int(x) for x in v.open_accounts(3))
        ch.deposit(s1, "USDT", usd("3000"))
        ch.deposit(s2, "USDT", usd("50000"))
        ch.deposit(buyer, "USDT", usd("1000000"))
        ch.set_leverage(s1, "BTCUSDT", 50)
        for s in (s1, s2):
            assert v.submit_decimal(s, "BTCUSDT", -1, "1", "100000").accepted
            assert v.submit_decimal(buyer, "BTCUSDT", 1, "1", "100000").filled == 1000
        assert v.submit_decimal(s1, "BTCUSDT", 1, "0.1", "90000").accepted  # an open order ADL must cancel
        shorts = [s1, s2]
    step(v, eng, "100000", 0)  # the engine runs on every mark update
    # equity 2,050; a gap to 97,450 makes uPnL -2,550: equity -500
    step(v, eng, "97450", 1)
    return v, eng, t, shorts


def test_tier2_insurance_fund_pays_the_deficit() -> None:
    v, eng, t, _ = gap_down(LiquidationConfig(style="binance", fund_seed=usd("1000")))
    ch = v.clearing
    assert ch.accounts.state[t] == AccountState.BANKRUPT and ch.ledger.balance(t, "USDT") == 0
    outs = eng.events.of(Ev.FUND_OUT)
    assert [e.amount for e in outs] == [usd("500")]
    assert eng.events.of(Ev.ADL_CLOSE) == [] and ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == 0


def test_tier3_adl_at_bankruptcy_price_when_the_fund_falls_short() -> None:
    v, eng, t, (s1, s2) = gap_down(LiquidationConfig(style="binance", fund_seed=usd("100"), adl_ranking="bitmex"))
    ch = v.clearing
    assert [e.amount for e in eng.events.of(Ev.FUND_OUT)] == [usd("100")]
    closes = eng.events.of(Ev.ADL_CLOSE)
    assert [c.account for c in closes] == [s1]  # s1: same profit, higher leverage -> first; 1 BTC covers it
    c = closes[0]
    # bankruptcy price: 400 USDT over 1 BTC above the mark 97,450 -> 97,850
    assert c.price == px("97850") and c.qty == 1000 and c.rank == 1
    assert c.pnl == (px("100000") - px("97850")) * 1000 * BTC.unit_notional  # no fee: exactly the price difference
    assert ch.accounts.size[0, s1] == 0 and ch.accounts.size[0, s2] == -1000
    assert v.books["BTCUSDT"].open_orders(s1) == []  # its open orders were cancelled
    assert ch.ledger.balance(t, "USDT") == 0 and ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == 0
    assert ch.ledger.balance(s1, "USDT") == usd("3000") - usd("20") + c.pnl  # only its maker fee; none for ADL


def test_bad_debt_when_nobody_is_on_the_other_side() -> None:
    v, eng, mm, t = setup(LiquidationConfig(style="binance", fund_seed=usd("100")))
    ch = v.clearing
    ch.accounts.state[mm] = AccountState.TAKEN_OVER  # the only short cannot be deleveraged
    step(v, eng, "97450", 1)
    bad = eng.events.of(Ev.BAD_DEBT)
    assert [e.amount for e in bad] == [usd("400")]
    assert ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == -usd("400")
    assert ch.ledger.balance(t, "USDT") == 0


def test_drawdown_trigger_starts_adl_before_the_fund_is_empty() -> None:
    cfg = LiquidationConfig(style="binance", fund_seed=usd("1000"), adl_trigger="drawdown", drawdown_threshold=300_000)
    _v, eng, _t, (s1, _) = gap_down(cfg)
    # the fund may fall 30% from its 8 h peak of 1,000: it pays 300, ADL recovers the other 200
    assert [e.amount for e in eng.events.of(Ev.FUND_OUT)] == [usd("300")]
    assert eng.events.of(Ev.ADL_TRIGGER) and eng.events.of(Ev.ADL_CLOSE)[0].account == s1
    assert eng.fund_balance("BTCUSDT") == usd("700")


def test_hyperliquid_negative_equity_goes_to_adl_at_previous_mark() -> None:
    v, eng, t, (_s1, _s2) = gap_down(hyperliquid_config())
    closes = eng.events.of(Ev.ADL_CLOSE)
    assert closes and all(c.price == px("100000") for c in closes)  # the mark before the gap
    assert v.clearing.ledger.balance(t, "USDT") == 0 and v.clearing.ledger.balance(SOCIALIZED_LOSS, "USDT") == 0


@pytest.mark.parametrize("name", ["binance", "bybit", "okx", "hyperliquid", "bitmex"])
def test_every_profile_runs_the_tiers_and_conserves(name: str) -> None:
    from cascadelab.venue.profiles import profile

    cfg = profile(name).liquidation_config(fund_seed=usd("300"))
    v, eng, t, _shorts = gap_down(cfg)
    ch = v.clearing
    assert ch.accounts.state[t] in (AccountState.BANKRUPT, AccountState.TAKEN_OVER)
    assert ch.ledger.balance(t, "USDT") == 0
    ind = eng.adl_indicator("BTCUSDT")
    assert set(ind["quantile"].tolist()) <= {0, 1, 2, 3, 4} and np.all(ind["lights"] == ind["quantile"] + 1)
