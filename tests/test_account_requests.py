"""Account requests through the venue: deposits, withdrawals, loans and repayments as typed records.

Each request is answered with an ACCOUNT_ACK (never an exception); an outage refuses them;
they interleave with orders by time stamp inside one step (a looper borrows, then buys).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from cascadelab.clearing.accounts import AccountState
from cascadelab.records import ACCOUNT_REQUEST, ORDER_REQUEST, TIF, AccountOp, Op, Reject
from market_helpers import make_venue, usd


def account_requests(rows: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """(ts, account, amount, asset, kind) rows as ACCOUNT_REQUEST records."""
    out = np.zeros(len(rows), ACCOUNT_REQUEST)
    for j, r in enumerate(rows):
        out[j] = r
    return out


def test_every_refusal_is_a_reject_code_and_changes_nothing() -> None:
    v = make_venue()
    ch = v.clearing
    a, b = v.open_accounts(2)
    usdt = ch.ledger.asset("USDT")
    ch.deposit(a, "USDT", usd("100"))
    v.block_order_entry(np.array([b]))
    ch.accounts.state[a] = ch.accounts.state[a]  # NORMAL
    before = ch.ledger.balances.copy()
    acks = v.submit_account_requests(
        account_requests(
            [
                (1, 99, 5, usdt, AccountOp.DEPOSIT),
                (2, a, 5, 77, AccountOp.DEPOSIT),
                (3, a, 0, usdt, AccountOp.DEPOSIT),
                (4, a, 5, usdt, 9),
                (5, b, 5, usdt, AccountOp.DEPOSIT),
                (6, a, usd("101"), usdt, AccountOp.WITHDRAW),
                (7, a, usd("1"), usdt, AccountOp.REPAY),
                (8, a, 2**63 - 1, usdt, AccountOp.DEPOSIT),
            ]
        )
    )
    assert acks["reason"].tolist() == [
        Reject.UNKNOWN_ACCOUNT,
        Reject.UNKNOWN_ASSET,
        Reject.INVALID_QUANTITY,
        Reject.INVALID_REQUEST,
        Reject.VENUE_UNAVAILABLE,
        Reject.INSUFFICIENT_BALANCE,
        Reject.INVALID_QUANTITY,
        Reject.INVALID_QUANTITY,
    ]
    assert (acks["amount"] == 0).all()
    assert np.array_equal(before, ch.ledger.balances)
    ch.accounts.state[a] = AccountState.TAKEN_OVER
    acks = v.submit_account_requests(account_requests([(9, a, 5, usdt, AccountOp.DEPOSIT)]))
    assert acks["reason"].tolist() == [Reject.ACCOUNT_NOT_NORMAL]
    ch.accounts.state[a] = AccountState.LIQUIDATING  # a client may add margin to an account being liquidated
    acks = v.submit_account_requests(
        account_requests([(10, a, 5, usdt, AccountOp.DEPOSIT), (11, a, 5, usdt, AccountOp.WITHDRAW)])
    )
    assert acks["reason"].tolist() == [Reject.OK, Reject.ACCOUNT_NOT_NORMAL]
    v.close()


def test_borrow_then_buy_in_one_step_and_repay_is_capped_at_the_debt() -> None:
    v = make_venue()
    ch = v.clearing
    looper, seller = v.open_accounts(2)
    eth, usdt, usde = ch.ledger.asset("ETH"), ch.ledger.asset("USDT"), ch.ledger.asset("USDe")
    ch.seed_lending_pool("USDT", usd("1000000"))
    ch.deposit(seller, "USDe", usd("100000"))
    ch.deposit(looper, "ETH", usd("10"))
    ch.set_asset_price("ETH", Fraction(4000))
    ch.set_asset_price("USDe", Fraction(1))
    book = v.instrument("USDEUSDT")
    orders = np.zeros(2, ORDER_REQUEST)
    orders[["ts", "account", "instrument", "kind", "side", "price", "qty", "tif"]] = [
        (1, seller, book, Op.LIMIT, -1, 10_000, 2_000_000, TIF.GTC),  # 20,000 USDe at 1.0000
        (3, looper, book, Op.MARKET, 1, 0, 900_000, TIF.IOC),  # buy 9,000 USDe with the loan
    ]
    acct = account_requests([(2, looper, usd("10000"), usdt, AccountOp.BORROW)])
    report = v.step(10, orders, acct)
    assert report.account_acks["reason"].tolist() == [Reject.OK]
    assert report.acks["reason"].tolist() == [Reject.OK, Reject.OK]
    assert ch.ledger.balances[usde, looper] == usd("9000")
    assert ch.accounts.debt[usdt, looper] == usd("10000")
    # the same order before the loan (earlier time stamp) has nothing to pay with
    late = account_requests([(30, looper, usd("10000"), usdt, AccountOp.BORROW)])
    early = orders[1:].copy()
    early["ts"] = 20
    report = v.step(40, early, late)
    assert report.acks["reason"].tolist() == [Reject.INSUFFICIENT_BALANCE]
    assert report.account_acks["reason"].tolist() == [Reject.OK]
    # a loan beyond the initial LTV is refused
    big = account_requests([(50, looper, usd("500000"), usdt, AccountOp.BORROW)])
    assert v.submit_account_requests(big)["reason"].tolist() == [Reject.LTV_LIMIT]
    assert ch.accounts.debt[usdt, looper] == usd("20000")
    acks = v.submit_account_requests(account_requests([(60, looper, usd("5000"), usdt, AccountOp.REPAY),
                                                       (61, looper, usd("50000"), usdt, AccountOp.REPAY)]))  # fmt: skip
    assert acks["reason"].tolist() == [Reject.OK, Reject.INSUFFICIENT_BALANCE]  # 15,000 owed, ~6,000 held
    ch.deposit(looper, "USDT", usd("100000"))
    acks = v.submit_account_requests(account_requests([(70, looper, usd("50000"), usdt, AccountOp.REPAY)]))
    assert acks["reason"].tolist() == [Reject.OK] and acks["amount"][0] == usd("15000")
    assert ch.accounts.debt[usdt, looper] == 0 and ch.accounts.debt[:, looper].sum() == 0
    assert ch.ledger.balances[eth, looper] == usd("10")
    v.close()
