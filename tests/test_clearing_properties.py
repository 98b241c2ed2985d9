"""Property test: random deposits, orders, funding, price moves and withdrawals keep the books exact.

After every action the clearing house must prove conservation (ledger, settlement pools,
funding pools, loans), and no withdrawal may ever leave an account below its initial
margin requirement or above its initial loan-to-value.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadelab.clearing.house import ClearingError
from cascadelab.units import money_to_units
from cascadelab.venue import Venue
from market_helpers import make_clearing

ACCOUNTS = 4
actions = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.integers(0, ACCOUNTS - 1), st.sampled_from(["USDT", "USDe"]), st.integers(1, 50_000)),
        st.tuples(
            st.just("perp"),
            st.integers(0, ACCOUNTS - 1),
            st.sampled_from([1, -1]),
            st.integers(1, 300),
            st.integers(-5, 5),
            st.sampled_from([0, 1, 2, 3]),
        ),
        st.tuples(
            st.just("spot"),
            st.integers(0, ACCOUNTS - 1),
            st.sampled_from([1, -1]),
            st.integers(1, 5_000),
            st.integers(9_900, 10_100),
        ),
        st.tuples(st.just("market"), st.integers(0, ACCOUNTS - 1), st.sampled_from([1, -1]), st.integers(1, 100)),
        st.tuples(st.just("cancel_all"), st.integers(0, ACCOUNTS - 1)),
        st.tuples(st.just("funding"), st.integers(-75_000, 75_000)),
        st.tuples(st.just("move"), st.integers(-50, 50)),
        st.tuples(st.just("withdraw"), st.integers(0, ACCOUNTS - 1), st.sampled_from(["USDT", "USDe"]), st.integers(1, 60_000)),
        st.tuples(st.just("borrow"), st.integers(0, ACCOUNTS - 1), st.integers(1, 20_000)),
    ),
    min_size=10,
    max_size=80,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_random_activity_keeps_books_exact(seq) -> None:
    v = Venue(make_clearing(), debug=True)
    ch = v.clearing
    v.open_accounts(ACCOUNTS)
    ch.seed_lending_pool("USDT", money_to_units("1000000"))
    mark = 1_000_000  # BTC 100,000.0
    ch.set_mark("BTCUSDT", mark)
    ch.set_asset_price("USDe", 10**8)
    for i in range(ACCOUNTS):
        ch.deposit(i, "USDT", money_to_units("20000"))
        ch.deposit(i, "USDe", money_to_units("5000"))
    for act in seq:
        kind = act[0]
        if kind == "deposit":
            _, i, asset, amount = act
            ch.deposit(i, asset, money_to_units(amount))
        elif kind == "perp":
            _, i, side, qty, offset, tif = act
            v.submit(i, "BTCUSDT", side, qty, mark + offset * 10, tif=tif)
        elif kind == "spot":
            _, i, side, lots, price = act
            v.submit(i, "USDEUSDT", side, lots * 100, price)
        elif kind == "market":
            _, i, side, qty = act
            v.submit(i, "BTCUSDT", side, qty, None)
        elif kind == "cancel_all":
            v.cancel_all(act[1])
        elif kind == "funding":
            ch.pay_funding("BTCUSDT", act[1], mark)
        elif kind == "move":
            mark = max(10_000, mark + act[1] * 1_000)
            ch.set_mark("BTCUSDT", mark)
        elif kind == "withdraw":
            _, i, asset, amount = act
            try:
                ch.withdraw(i, asset, money_to_units(amount))
            except ClearingError:
                pass
            else:
                am = ch.account_margin(i)
                assert am.available >= 0, "a withdrawal left the account below its initial margin"
                assert ch.ltv(i) <= ch.loan_terms.initial_ltv, "a withdrawal left the loan above its initial LTV"
                assert ch.ledger.balance(i, asset) >= 0
        elif kind == "borrow":
            _, i, amount = act
            with contextlib.suppress(ClearingError):
                ch.borrow(i, "USDT", money_to_units(amount))
        ch.check()
    ch.check(replay_journal=True)
