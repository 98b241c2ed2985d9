"""Each liquidation tier, with numbers checked by hand, and the cases that once put losses on the wrong people.

Every test runs on both engines (per-account reference, batched arrays): same numbers.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.ledger import SOCIALIZED_LOSS, ConservationError
from cascadelab.records import Ev, Why
from liq_helpers import BTC, ENGINES, Market, hl_params, px, usd

pytestmark = pytest.mark.parametrize("engine", ENGINES)


def test_tier1_binance_partial_liquidation_stops_when_compliant(engine: str) -> None:
    m = Market({"style": "binance", "clearance_fee": 4_000, "fund_seed": usd("1000")}, engine, trader_usdt="4100",
               leverage=25, mmr="0.02", max_leverage=25)  # fmt: skip
    # equity 4,100 - 50 fee = 4,050; at 97,900 uPnL is -2,100: 1,950 < MM 2% x 97,900 = 1,958 (short by 8)
    assert m.v.submit_decimal(m.mm, "BTCUSDT", 1, "5", "97890").accepted
    fund0 = m.fund()
    m.step("97900", 1)
    fills = m.events(Ev.LIQUIDATION_FILL)
    # 8 USDT short / (97.9 per lot x 2%) = 4.1 lots, twice for slippage; at least 10% of the position: 100 lots
    assert [(e["price"], e["qty"]) for e in fills] == [(px("97890"), 100)]
    assert m.ch.accounts.size[0, m.trader] == 900  # partial: the rest is kept
    notional = px("97890") * 100 * BTC.unit_notional
    fee = m.events(Ev.CLEARANCE_FEE)
    assert [e["amount"] for e in fee] == [-(-notional * 4_000 // 10**6)]  # 40 bps rounded up
    assert m.fund() - fund0 == fee[0]["amount"] and fee[0]["fund_balance"] == m.fund()
    am = m.ch.account_margin(m.trader)
    assert am.equity >= am.maintenance and m.ch.accounts.state[m.trader] == AccountState.NORMAL
    assert len(m.events(Ev.COMPLIANT)) == 1


def test_takeover_and_throughput_limited_unwinding(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("100000"), "liquidator_notional_per_s": usd("30000"),
                "liquidator_orders_per_s": 1}, engine)  # fmt: skip
    m.step("98300", 1)  # no bids at all: nothing fills, the liquidator takes the position over at the mark
    assert m.ch.accounts.state[m.trader] == AccountState.TAKEN_OVER and m.ch.accounts.size[0, m.trader] == 0
    liq = m.eng.liquidator
    assert m.ch.accounts.size[0, liq] == 1000
    assert m.v.submit_decimal(m.mm, "BTCUSDT", 1, "5", "98000").accepted  # liquidity returns
    held = [int(m.ch.accounts.size[0, liq])]
    for s in range(2, 8):
        m.step("98300", s)
        held.append(int(m.ch.accounts.size[0, liq]))
    sold = [int(e["qty"]) for e in m.events(Ev.UNWIND_FILL)]
    # 30,000 USDT per second at ~98,300 per BTC: at most 305 lots per 1 s step
    assert all(q <= 305 for q in sold) and sum(sold) == 1000
    assert held[-1] == 0 and all(b1 <= b0 for b0, b1 in itertools.pairwise(held))


def gap_down(m: Market, counterparties: bool = True) -> tuple[int, int]:
    """Two profitable shorts that ADL can close (s1 more levered), then a gap that leaves the trader 500 below zero."""
    v, ch = m.v, m.ch
    s1 = s2 = -1
    if counterparties:
        s1, s2, buyer = (int(x) for x in v.open_accounts(3))
        ch.deposit(s1, "USDT", usd("3000"))
        ch.deposit(s2, "USDT", usd("50000"))
        ch.deposit(buyer, "USDT", usd("1000000"))
        ch.set_leverage(s1, "BTCUSDT", 50)
        for s in (s1, s2):
            assert v.submit_decimal(s, "BTCUSDT", -1, "1", "100000").accepted
            assert v.submit_decimal(buyer, "BTCUSDT", 1, "1", "100000").filled == 1000
        assert v.submit_decimal(s1, "BTCUSDT", 1, "0.1", "90000").accepted  # an open order ADL must cancel
    m.step("100000", 0)
    # equity 2,050 (2,100 - 50 fee); a gap to 97,450 makes uPnL -2,550: equity -500; bankruptcy price 97,950
    m.step("97450", 1)
    return s1, s2


def test_tier2_insurance_fund_pays_the_deficit(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("1000")}, engine)
    gap_down(m)
    assert m.ch.accounts.state[m.trader] == AccountState.BANKRUPT and m.ch.ledger.balance(m.trader, "USDT") == 0
    assert [e["amount"] for e in m.events(Ev.FUND_OUT)] == [usd("500")]
    assert len(m.events(Ev.ADL_CLOSE)) == 0 and m.ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == 0
    assert m.fund() == usd("500")


def test_tier3_adl_closes_the_uncovered_part_at_the_bankruptcy_price(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("100"), "adl_ranking": "bitmex"}, engine)
    s1, s2 = gap_down(m)
    trig = m.events(Ev.ADL_TRIGGER)
    # deficit 500; the fund pays its 100; ADL takes 400/500 of the 1 BTC position = 0.8 BTC at the bankruptcy price 97,950
    assert [(t["amount"], t["pnl"], t["qty"], t["price"]) for t in trig] == [(usd("500"), usd("100"), 800, px("97950"))]
    closes = m.events(Ev.ADL_CLOSE)
    assert [(c["account"], c["qty"], c["price"], c["rank"]) for c in closes] == [(s1, 800, px("97950"), 1)]  # s1 more levered
    assert closes[0]["pnl"] == (px("100000") - px("97950")) * 800 * BTC.unit_notional  # no fee: exactly the price difference
    assert m.ch.accounts.size[0, s1] == -200 and m.ch.accounts.size[0, s2] == -1000
    assert m.v.books[0].open_orders(s1) == []  # its open orders on BTCUSDT were cancelled
    assert m.ch.accounts.size[0, m.eng.liquidator] == 200  # the part the fund covered went to the liquidator
    assert m.ch.ledger.balance(m.trader, "USDT") == 0 and m.ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == 0
    assert m.fund() == 0


def test_adl_at_the_mark_recovers_nothing_and_the_rest_is_explicit_bad_debt(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("100"), "adl_price": "mark"}, engine)
    gap_down(m)
    trig = m.events(Ev.ADL_TRIGGER)
    assert [(t["qty"], t["price"]) for t in trig] == [(800, px("97450"))]  # the uncovered 4/5 of the position, at the mark
    bad = m.events(Ev.BAD_DEBT)
    assert [e["amount"] for e in bad if e["account"] == m.trader] == [usd("400")]
    assert m.ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == -usd("400")
    assert m.ch.ledger.balance(m.trader, "USDT") == 0 and m.fund() == 0


def test_drawdown_trigger_starts_adl_before_the_fund_is_empty(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("1000"), "adl_trigger": "drawdown", "drawdown_threshold": 300_000}, engine)
    s1, _ = gap_down(m)
    # the fund may fall 30% from its 8 h peak of 1,000: it pays 300, ADL recovers the other 200 (0.4 BTC at 97,950)
    assert [e["amount"] for e in m.events(Ev.FUND_OUT)] == [usd("300")]
    trig = m.events(Ev.ADL_TRIGGER)
    assert [(t["qty"], t["price"]) for t in trig] == [(400, px("97950"))]
    assert m.events(Ev.ADL_CLOSE)[0]["account"] == s1 and m.fund() == usd("700")


def test_hyperliquid_negative_equity_goes_to_adl_at_previous_mark_capped_at_bankruptcy(engine: str) -> None:
    m = Market(hl_params(), engine)
    gap_down(m)
    closes = m.events(Ev.ADL_CLOSE)
    # the mark before the gap (100,000) lies beyond the bankruptcy price (97,950): closing there would hand the
    # bankrupt account 2,050 of the counterparties' money; the price is capped so they give up the 500 deficit only
    assert len(closes) and all(c["price"] == px("97950") for c in closes)
    assert sum(c["qty"] for c in closes) == 1000  # the whole bankrupt position
    assert m.ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == 0
    assert m.ch.ledger.balance(m.trader, "USDT") == 0
    assert not [e for e in m.events(Ev.FUND_IN) if e["account"] == m.trader]  # nothing left over for the vault


# --- the cases that put losses on the wrong people (issue 7) -----------------------------------------
def test_deficit_counts_all_collateral(engine: str) -> None:
    # 1 ETH (ratio 0.95, 4,000) and no USDT, long 1 BTC at 100,000 (fee 50): at 96,700 equity is
    # 3,800 - 3,300 - 50 = +450 against MM 483.5. No bids: taken over, but the account covers its loss.
    m = Market({"style": "binance", "fund_seed": 0}, engine, trader_usdt="0", trader_eth="1", leverage=100)
    m.step("96700", 1)
    assert m.ch.accounts.state[m.trader] == AccountState.TAKEN_OVER
    assert len(m.events(Ev.ADL_TRIGGER)) == 0 and len(m.events(Ev.ADL_CLOSE)) == 0 and len(m.events(Ev.BAD_DEBT)) == 0
    assert m.ch.accounts.size[0, m.mm] == -1000  # the counterparty is untouched
    assert m.fund() == usd("450")  # what was left went to the fund
    assert m.ch.ledger.balance(m.trader, "USDT") == 0 and m.ch.ledger.balance(m.trader, "ETH") == 0
    assert m.ch.ledger.balance(m.eng.liquidator, "ETH") == 10**8


def test_adl_never_takes_an_earlier_takeover(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("0"), "adl_ranking": "binance"}, engine)
    early = int(m.v.open_accounts(1)[0])
    m.ch.deposit(early, "USDT", usd("3000"))
    m.ch.set_leverage(early, "BTCUSDT", 50)
    assert m.v.submit_decimal(m.mm, "BTCUSDT", -1, "1", "100000").accepted
    assert m.v.submit_decimal(early, "BTCUSDT", 1, "1", "100000").filled == 1000
    m.step("100000", 0)
    m.step("97300", 1)  # early: equity 2,950 - 2,700 = 250 < MM 486.5: taken over, the liquidator holds 1 BTC
    assert m.ch.accounts.state[early] == AccountState.TAKEN_OVER and m.ch.accounts.size[0, m.eng.liquidator] == 1000
    m.step("96350", 2)  # the trader (bankruptcy price 97,950): deficit 1,600 with an empty fund
    ev = m.events()
    trig = [j for j, e in enumerate(ev) if e["kind"] == Ev.ADL_TRIGGER]
    first = trig[0]
    assert ev[first]["account"] == m.trader
    end = trig[1] if len(trig) > 1 else len(ev)
    closes = [e for e in ev[first + 1 : end] if e["kind"] == Ev.ADL_CLOSE]
    # the trader's ADL closes exactly its own uncovered 1 BTC at its bankruptcy price, never the earlier takeover
    assert sum(c["qty"] for c in closes) == 1000 and all(c["price"] == px("97950") for c in closes)
    # the liquidator's loss on the earlier takeover (97,300 -> 96,350) is the fund's; what it cannot pay is a
    # separate ADL of the liquidator's own position, at its own bankruptcy price
    for j in trig[1:]:
        assert ev[j]["account"] == m.eng.liquidator and ev[j]["pnl"] < ev[j]["amount"]
    assert m.fund() >= 0


def test_the_backlog_deleverages_only_what_its_fund_cannot_carry(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("0"), "adl_ranking": "binance", "liquidator_orders_per_s": 1}, engine)
    early = int(m.v.open_accounts(1)[0])
    m.ch.deposit(early, "USDT", usd("3000"))
    m.ch.set_leverage(early, "BTCUSDT", 50)
    assert m.v.submit_decimal(m.mm, "BTCUSDT", -1, "1", "100000").accepted
    assert m.v.submit_decimal(early, "BTCUSDT", 1, "1", "100000").filled == 1000
    m.step("100000", 0)
    m.step("97300", 1)  # taken over: the liquidator holds 1 BTC, the fund got the 250 left
    assert m.fund() > 0
    m.step("97200", 2)  # a 100 loss on the backlog: the fund can pay it, no ADL
    assert not [e for e in m.events(Ev.ADL_TRIGGER) if e["account"] == m.eng.liquidator]
    m.step("96000", 3)  # a 1,300 loss: beyond the fund; ADL takes what it cannot pay
    trig = [e for e in m.events(Ev.ADL_TRIGGER) if e["account"] == m.eng.liquidator]
    assert trig and trig[-1]["pnl"] == min(trig[-1]["amount"], max(0, trig[-1]["fund_balance"]))
    assert m.fund() >= 0
    off = Market({"style": "binance", "fund_seed": usd("0"), "backlog_adl": False}, engine)
    off.step("96000", 1)
    assert not [e for e in off.events(Ev.ADL_TRIGGER) if e["account"] == off.eng.liquidator]


def test_liquidator_losses_never_drive_the_fund_negative(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("450"), "liquidator_orders_per_s": 10}, engine)
    m.step("98300", 1)  # taken over at 98,300 with no bids (remainder 248 to the fund)
    assert m.ch.accounts.size[0, m.eng.liquidator] == 1000
    assert m.v.submit_decimal(m.mm, "BTCUSDT", 1, "1", "95000").accepted  # the only bid is far below
    m.step("98300", 2)  # the liquidator sells at 95,000: a loss of 3,300 + fee that the fund cannot pay
    assert m.fund() == 0
    bad = [e for e in m.events(Ev.BAD_DEBT) if e["reason"] == Why.LIQUIDATOR_RESULT]
    assert len(bad) == 1 and m.ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == -int(bad[0]["amount"])


def test_check_refuses_a_closed_account_that_holds_a_position(engine: str) -> None:
    m = Market({"style": "binance", "fund_seed": usd("10000")}, engine)
    m.ch.accounts.state[m.mm] = AccountState.BANKRUPT
    with pytest.raises(ConservationError, match="still holds a position"):
        m.ch.check()
    m.ch.accounts.state[m.mm] = AccountState.NORMAL


def test_hyperliquid_cooldown_sends_the_whole_position(engine: str) -> None:
    m = Market(hl_params(chunk_threshold=usd("50000"), backstop_fraction=(1, 100)), engine)
    assert m.v.submit_decimal(m.mm, "BTCUSDT", 1, "0.2", "98000").accepted  # one chunk's worth of bids
    # equity 2,050 - 1,700 = 350 < MM 491.5; 98,300 notional > 50,000: a 20% chunk, then a 30 s cooldown
    m.step("98300", 1)
    orders = m.events(Ev.LIQUIDATION_ORDER)
    assert [(o["qty"], o["price"], o["reason"]) for o in orders] == [(200, 0, Why.PARTIAL_CHUNK)]
    # after the chunk: equity 2,050 - 9.8 fee - 400 realized - 1,360 = 280.2 < MM 393.2, above the backstop: still LIQUIDATING
    assert m.ch.accounts.state[m.trader] == AccountState.LIQUIDATING
    assert m.v.submit_decimal(m.mm, "BTCUSDT", 1, "10", "97900").accepted
    m.step("98300", 5)  # inside the cooldown and still liquidatable: a market order for the entire position
    orders = m.events(Ev.LIQUIDATION_ORDER)
    assert [(o["qty"], o["reason"]) for o in orders] == [(200, Why.PARTIAL_CHUNK), (800, Why.NONE)]
    assert m.ch.accounts.size[0, m.trader] == 0


def test_hyperliquid_chunks_again_after_the_cooldown(engine: str) -> None:
    m = Market(hl_params(chunk_threshold=usd("50000"), backstop_fraction=(1, 100)), engine, trader_usdt="20000", size="2",
               leverage=20)  # fmt: skip
    m.step("90600", 1)  # wallet 19,900, uPnL -18,800: equity 1,100 > MM 906: compliant
    assert len(m.events(Ev.LIQUIDATION_ORDER)) == 0
    assert m.v.submit_decimal(m.mm, "BTCUSDT", 1, "0.4", "90000").accepted
    m.step("90500", 2)  # equity 900 < MM 905: a 20% chunk (0.4 BTC) of a 181,000 position
    assert [(o["qty"], o["reason"]) for o in m.events(Ev.LIQUIDATION_ORDER)] == [(400, Why.PARTIAL_CHUNK)]
    # after it: equity 19,900 - 18 - 4,000 - 15,200 = 682 < MM 724: still liquidatable, no step in the cooldown
    m.step("90500", 40)  # the cooldown is over and the position is still above the threshold: a chunk again
    later = m.events(Ev.LIQUIDATION_ORDER)[1:]
    assert [(o["qty"], o["reason"]) for o in later] == [(320, Why.PARTIAL_CHUNK)]


def test_account_leaves_liquidating_when_the_price_recovers(engine: str) -> None:
    m = Market(hl_params(chunk_threshold=usd("50000"), backstop_fraction=(1, 100)), engine)
    assert m.v.submit_decimal(m.mm, "BTCUSDT", 1, "0.2", "98200").accepted  # one chunk's worth of bids
    m.step("98300", 1)  # a 20% chunk fills: equity 320.2 < MM 393.2, still LIQUIDATING in the cooldown
    assert m.ch.accounts.state[m.trader] == AccountState.LIQUIDATING
    m.step("100500", 2)  # the price recovers inside the cooldown
    assert m.ch.accounts.state[m.trader] == AccountState.NORMAL
    assert len(m.events(Ev.COMPLIANT)) == 1
    assert m.v.submit_decimal(m.trader, "BTCUSDT", -1, "0.1", "100500").accepted  # trading again
    m.ch.withdraw(m.trader, "USDT", usd("1"))


@pytest.mark.parametrize("name", ["binance", "bybit", "okx", "hyperliquid", "bitmex"])
def test_every_profile_runs_the_tiers_and_conserves(engine: str, name: str) -> None:
    from cascadelab.venue.profiles import profile

    values = {k: v.value for k, v in profile(name).liquidation.items()} | {"fund_seed": usd("300")}
    m = Market(values, engine)
    gap_down(m)
    assert m.ch.accounts.state[m.trader] in (AccountState.BANKRUPT, AccountState.TAKEN_OVER)
    assert m.ch.ledger.balance(m.trader, "USDT") == 0 and not m.ch.accounts.size[:, m.trader].any()
    assert np.all(m.events()["fund_balance"] >= 0)
