"""Regressions for the defects a break-it review found through the public API (each failed before its fix).

Liquidation: a gap past the bankruptcy price, a cross deficit with a healthy coin beside it, a
previous-mark ADL in a gap, prices never fed; order entry: engine-only flags and the venue's
own accounts from clients, non-integer amounts, leverage changes without margin, contradictory
or out-of-range requests.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.core import ClearingError
from cascadelab.records import ACCOUNT_REQUEST, FLAG_LIQUIDATION, ORDER_REQUEST, TIF, AccountOp, Ev, Op, Reject
from cascadelab.units import MONEY_SCALE, SECOND_NS
from cascadelab.venue import VenueError, build

PERPS = [("BTCUSDT", "0.1", "0.001"), ("ETHUSDT", "0.01", "0.01")]
ENGINES = ("batched", "reference")


def quotes(mk: int, ticks: int) -> np.ndarray:
    """A maker requotes BTC around ``ticks``."""
    r = np.zeros(3, ORDER_REQUEST)
    r[["account", "instrument", "kind", "side", "price", "qty", "tif"]] = [
        (mk, 0, Op.CANCEL_ALL, 0, 0, 0, 0),
        (mk, 0, Op.LIMIT, 1, ticks - 1, 50_000, TIF.GTC),
        (mk, 0, Op.LIMIT, -1, ticks + 10, 50_000, TIF.GTC),
    ]
    return r


@pytest.mark.parametrize("profile", ["binance", "bybit", "okx", "hyperliquid"])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_gap_past_bankruptcy_never_leaves_a_negative_wallet_behind(profile: str, engine: str) -> None:
    v = build(profile, PERPS, debug=True, engine=engine)
    ch = v.clearing
    mk, t, c = (int(x) for x in v.open_accounts(3))
    ch.deposit(mk, "USDT", 100_000_000 * MONEY_SCALE)
    ch.deposit(c, "USDT", 10_000_000 * MONEY_SCALE)
    ch.deposit(t, "USDT", 3_000 * MONEY_SCALE)
    ch.set_leverage(t, "BTCUSDT", 40)
    v.feed_index("BTCUSDT", "100000")
    v.feed_index("ETHUSDT", "4000")
    ch.opening_auction("BTCUSDT", np.array([t, c]), np.array([1000, -1000]), 1_000_000)
    v.step(SECOND_NS, quotes(mk, 1_000_000))
    for s in range(3, 8):  # BTC gaps 10% down: the 40x long is 7,000 below zero; bids sit right at the new mark
        v.feed_index("BTCUSDT", "90000")
        v.feed_index("ETHUSDT", "4000")
        v.step(s * SECOND_NS, quotes(mk, 900_000))
    assert ch.ledger.balance(t, "USDT") >= 0, "the deficit was left on the account"
    assert v.account_state(t) in (AccountState.BANKRUPT, AccountState.TAKEN_OVER)
    assert not ch.accounts.size[:, t].any()
    v.close()


@pytest.mark.parametrize("profile", ["binance", "bybit", "bitmex"])
@pytest.mark.parametrize("engine", ENGINES)
def test_adl_is_per_coin_and_never_takes_more_than_equity(profile: str, engine: str) -> None:
    v = build(profile, PERPS, debug=True, engine=engine, fund_seed=0)
    ch = v.clearing
    mk, b, c, d = (int(x) for x in v.open_accounts(4))
    ch.deposit(mk, "USDT", 10_000_000 * MONEY_SCALE)
    ch.deposit(b, "USDT", 4_000 * MONEY_SCALE)
    ch.deposit(c, "USDT", 1_000 * MONEY_SCALE)
    ch.deposit(d, "USDT", 1_000_000 * MONEY_SCALE)
    for a in (b, c, d):
        for s, _, _ in PERPS:
            ch.set_leverage(a, s, 20)
    v.feed_index("BTCUSDT", "100000")
    v.feed_index("ETHUSDT", "4000")
    ch.opening_auction("BTCUSDT", np.array([b, d]), np.array([500, -500]), 1_000_000)  # b long BTC, d short BTC
    ch.opening_auction("ETHUSDT", np.array([b, c]), np.array([500, -500]), 400_000)  # b long ETH, c short ETH (flat market)
    v.step(SECOND_NS)
    events = []
    for s in range(2, 5):  # BTC gaps 20% down, ETH stays at 4,000
        v.feed_index("BTCUSDT", "80000")
        v.feed_index("ETHUSDT", "4000")
        events.append(v.step(s * SECOND_NS).events)
    ev = np.concatenate(events)
    adl = ev[ev["kind"] == Ev.ADL_CLOSE]
    assert (adl["instrument"] == 0).all(), "a BTC loss was deleveraged onto ETH counterparties"
    assert ch.ledger.balance(c, "USDT") == 1_000 * MONEY_SCALE and ch.accounts.size[1, c] == -500
    eq, _, _, _ = ch.exact_margins(np.arange(ch.accounts.n))
    assert (eq[[mk, c, d]] >= 0).all()
    v.close()


def test_no_mark_no_step() -> None:
    v = build("binance", PERPS)
    v.feed_index("BTCUSDT", "100000", ts=0)
    v.feed_index("ETHUSDT", "4000", ts=0)
    with pytest.raises(VenueError, match="no mark price"):
        v.step(60 * SECOND_NS)  # the quotes are a minute old: no live index, no mark


def test_clients_cannot_send_engine_orders_or_use_venue_accounts() -> None:
    v = build("hyperliquid", PERPS)
    ch = v.clearing
    (a,) = (int(x) for x in v.open_accounts(1))
    ch.deposit(a, "USDT", 1_000 * MONEY_SCALE)
    v.feed_index("BTCUSDT", "100000")
    v.feed_index("ETHUSDT", "4000")
    v.step(SECOND_NS)
    liq = v.risk.liquidator  # type: ignore[union-attr]
    r = np.zeros(2, ORDER_REQUEST)
    r[["account", "instrument", "kind", "side", "price", "qty", "tif", "flags"]] = [
        (a, 0, Op.LIMIT, 1, 1_000_000, 15_000, TIF.GTC, FLAG_LIQUIDATION),  # 15 BTC on 1,000 USDT "as the engine"
        (liq, 0, Op.LIMIT, 1, 1_000_000, 1, TIF.GTC, 0),  # trading on the vault's account
    ]
    acks = v.submit_batch(r).acks
    assert acks["reason"].tolist() == [Reject.INVALID_REQUEST, Reject.UNKNOWN_ACCOUNT]
    assert acks["account"].tolist() == [a, liq]
    w = np.zeros(1, ACCOUNT_REQUEST)
    w[0] = (0, liq, 1, ch.ledger.asset("USDT"), AccountOp.WITHDRAW)
    assert v.submit_account_requests(w)["reason"].tolist() == [Reject.UNKNOWN_ACCOUNT]
    assert not ch.accounts.size[:, a].any() and not ch.accounts.size[:, liq].any()


def test_non_integer_money_and_sizes_are_refused_not_truncated() -> None:
    v = build("binance", PERPS)
    ch = v.clearing
    a, b = (int(x) for x in v.open_accounts(2))
    for bad in (1.5, Decimal("2.9"), "100", True):
        with pytest.raises(ClearingError, match="integer"):
            ch.deposit(a, "USDT", bad)  # type: ignore[arg-type]
        with pytest.raises(ClearingError, match="integer"):
            ch.borrow(a, "USDT", bad)  # type: ignore[arg-type]
    with pytest.raises(ClearingError, match="integers"):
        ch.deposit_many(np.array([a, b]), "USDT", np.array([10.7, 20.2]))
    ch.deposit(a, "USDT", 100 * MONEY_SCALE)
    with pytest.raises(ClearingError, match="integer"):
        ch.withdraw(a, "USDT", 1.9)  # type: ignore[arg-type]
    with pytest.raises(ClearingError, match="2 accounts but 3 leverage"):
        ch.configure_positions("BTCUSDT", np.array([a, b]), np.array([10, 5, 2]), False)
    with pytest.raises(ClearingError, match="appears twice"):
        ch.configure_positions("BTCUSDT", np.array([a, a]), 10, False)
    with pytest.raises(ClearingError, match="integers"):
        ch.configure_positions("BTCUSDT", np.array([a]), np.array([7.9]), False)
    with pytest.raises(ClearingError, match="booleans"):
        ch.configure_positions("BTCUSDT", np.array([a]), 7, np.array([3]))
    with pytest.raises(ClearingError, match="integers"):
        ch.opening_auction("BTCUSDT", np.array([a, b]), np.array([1.5, -1.5]), 1_000_000)
    ch.check(replay_journal=True)


def test_order_entry_refuses_contradictions_with_the_right_code() -> None:
    v = build("binance", PERPS)
    ch = v.clearing
    mk, a, b = (int(x) for x in v.open_accounts(3))
    for acct, usd in ((mk, 10**7), (a, 1_000), (b, 10**6)):
        ch.deposit(acct, "USDT", usd * MONEY_SCALE)
    v.feed_index("BTCUSDT", "100000")
    v.feed_index("ETHUSDT", "4000")
    v.step(SECOND_NS)
    v.submit(mk, "BTCUSDT", -1, 5000, price=1_000_010)
    v.submit(mk, "BTCUSDT", 1, 5000, price=999_990)
    ch.set_leverage(a, "BTCUSDT", 50)
    assert v.submit(a, "BTCUSDT", 1, 400).accepted  # 40,000 notional at 50x on 1,000
    with pytest.raises(ClearingError, match="initial margin"):
        ch.set_leverage(a, "BTCUSDT", 1)  # would need 40,000 of initial margin
    assert ch.accounts.leverage[0, a] == 50
    assert v.submit(b, "BTCUSDT", 1, 10, tif=TIF.POST_ONLY).reason == Reject.INVALID_REQUEST  # a post-only market order
    assert v.submit(b, "BTCUSDT", 1, 10, tif=TIF.FOK).reason == Reject.INVALID_REQUEST
    assert v.submit(b, "BTCUSDT", 1, 10, price=2**64 + 999_000).reason == Reject.INVALID_PRICE
    assert v.submit_decimal(b, "BTCUSDT", 1, "0.01", "1e30").reason == Reject.INVALID_PRICE
    assert v.submit(b, "BTCUSDT", 300, 10, price=999_000).reason == Reject.INVALID_SIDE
    assert v.cancel(b, 2**70, "BTCUSDT").reason == Reject.UNKNOWN_ORDER
    with pytest.raises(VenueError, match="unknown account"):
        v.cancel_all(99)
    v.close()
