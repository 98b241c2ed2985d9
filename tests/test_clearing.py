"""Clearing house behaviour: PnL settlement, funding, spot delivery, loans, collateral depegs."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from cascadelab.book import OrderBook
from cascadelab.clearing.collateral import Valuation, fixed, from_book, from_index, redemption
from cascadelab.clearing.house import ClearingError
from cascadelab.clearing.ledger import FEE_POOL, SOCIALIZED_LOSS
from cascadelab.records import FILL, TIF, Reject
from cascadelab.venue import Venue
from market_helpers import BTC, DOGE, make_clearing, make_venue, usd

_order_ids = itertools.count(10_000, 2)


def trade(ch, symbol: str, seller: int, buyer: int, price: int, qty: int, book: OrderBook | None = None) -> np.ndarray:
    """Cross one trade through a real book and settle it; returns the settled FILL records."""
    book = book or OrderBook()
    oid = next(_order_ids)
    book.limit(oid, seller, -1, price, qty)
    fills = book.limit(oid + 1, buyer, 1, price, qty).fills
    settled = ch.settle_perp_fills(symbol, fills)
    assert settled.dtype == FILL and len(settled) == len(fills)
    return settled


def test_realized_pnl_is_exact_over_a_position_life() -> None:
    ch = make_clearing()
    a, b = ch.open_accounts(2)
    ch.deposit(a, "USDT", usd("100000"))
    ch.deposit(b, "USDT", usd("100000"))
    # a buys 3 at 100.0, 100.1, 100.3 (odd average), then sells 1 and 2 at 101.0
    for px in (1000, 1001, 1003):
        trade(ch, "BTCUSDT", b, a, px, 1)
    trade(ch, "BTCUSDT", a, b, 1010, 1)
    trade(ch, "BTCUSDT", a, b, 1010, 2)
    assert ch.accounts.size[0, a] == 0 and ch.accounts.cost[0, a] == 0
    cash_flow = (3 * 1010 - (1000 + 1001 + 1003)) * BTC.unit_notional
    assert ch.accounts.realized[0, a] == cash_flow == -ch.accounts.realized[0, b]
    ch.check(replay_journal=True)


def test_settlement_pool_always_equals_open_unrealized() -> None:
    ch = make_clearing()
    ids = ch.open_accounts(6)
    for i in ids:
        ch.deposit(i, "USDT", usd("1000000"))
    rng = np.random.default_rng(1)
    book = OrderBook()
    oid = 0
    for _ in range(300):
        s, b = rng.choice(6, 2, replace=False)
        oid += 2
        book.limit(oid, int(s), -1, int(rng.integers(990, 1010)), int(rng.integers(1, 20)))
        fills = book.limit(oid + 1, int(b), 1, 1010, int(rng.integers(1, 20))).fills
        ch.settle_perp_fills("BTCUSDT", fills)
        book.cancel_all(int(s))
        book.cancel_all(int(b))
        ch.check()  # settlement pool == -sum(cost), OI balanced
    ch.check(replay_journal=True)
    assert ch.ledger.balance(FEE_POOL, "USDT") > 0


def test_funding_is_zero_sum_with_odd_remainders() -> None:
    ch = make_clearing()
    ids = ch.open_accounts(7)
    sizes = [5, 3, 1, -2, -3, -3, -1]  # longs 9, shorts 9
    for i, q in zip(ids, sizes, strict=True):
        ch.deposit(i, "USDT", usd("1000"))
        ch.accounts.size[1, i] = q
        ch.accounts.cost[1, i] = q * 21_000 * 100_000  # test-only: positions placed directly
    paid = ch.pay_funding("DOGEUSDT", 12_345, 21_007)  # 0.00012345 at 0.21007
    assert paid.sum() == 0
    assert (paid[:3] > 0).all() and (paid[3:] < 0).all()
    exact = [Fraction(q * 21_007 * DOGE.unit_notional * 12_345, 10**8) for q in sizes]
    for p, e in zip(paid.tolist(), exact, strict=True):
        assert abs(p - e) < 2  # each within a unit or two of its exact share
    assert ch.ledger.balance(ch.funding.pools[1], "USDT") == 0


def test_funding_negative_rate_shorts_pay() -> None:
    ch = make_clearing()
    a, b = ch.open_accounts(2)
    ch.deposit(a, "USDT", usd("1000"))
    ch.deposit(b, "USDT", usd("1000"))
    trade(ch, "BTCUSDT", a, b, 1_000_000, 10)  # a short, b long 0.01 BTC at 100k
    before = ch.ledger.balance(a, "USDT")
    ch.pay_funding("BTCUSDT", -10_000, 1_000_000)  # -0.01%
    assert before - ch.ledger.balance(a, "USDT") == usd("0.1")
    ch.check(replay_journal=True)


def test_spot_delivery_and_fees() -> None:
    ch = make_clearing()
    mm, taker = ch.open_accounts(2)
    ch.deposit(mm, "USDe", usd("1000"))
    ch.deposit(taker, "USDT", usd("1000"))
    book = OrderBook()
    book.limit(1, mm, -1, 9_990, 10_000)  # 100 USDe at 0.9990
    fills = book.limit(2, taker, 1, 9_990, 10_000).fills
    ch.settle_spot_fills("USDEUSDT", fills)
    assert ch.ledger.balance(taker, "USDe") == usd("100")
    assert ch.ledger.balance(taker, "USDT") == usd("1000") - usd("99.9") - usd("0.00999")
    assert ch.ledger.balance(mm, "USDT") == usd("99.9")
    ch.check(replay_journal=True)


def test_loans_ltv_interest_and_repayment() -> None:
    ch = make_clearing()
    (a,) = ch.open_accounts(1)
    ch.seed_lending_pool("USDT", usd("1000000"))
    ch.deposit(a, "ETH", usd("10"))
    ch.set_asset_price("ETH", Fraction(4000))
    # collateral 10 ETH x 4000 x 0.95 = 38,000; initial LTV 65%
    with pytest.raises(ClearingError, match="loan-to-value"):
        ch.borrow(a, "USDT", usd("100000"))
    ch.borrow(a, "USDT", usd("20000"))
    assert ch.accounts.debt[0, a] == usd("20000") and ch.ledger.balance(a, "USDT") == usd("20000")
    interest = ch.accrue_interest("USDT", "0.0001")
    assert interest == usd("2") and ch.ledger.balance(a, "USDT") == usd("19998")
    # the interest goes from the borrower to the lending pool: 1,000,000 - 20,000 lent + 2
    assert ch.ledger.balance(ch.lending.pools["USDT"], "USDT") == usd("980002")
    with pytest.raises(ClearingError, match="exact to 1e-9"):
        ch.accrue_interest("USDT", "0.0000000001")
    with pytest.raises(ClearingError, match="initial LTV"):
        ch.withdraw(a, "ETH", usd("9"))
    ch.repay(a, "USDT", usd("19998"))
    assert ch.accounts.debt[0, a] == usd("2")
    ch.check(replay_journal=True)


def usde_venue(valuation: Valuation) -> tuple[Venue, int, int]:
    """A venue where a market maker quotes USDe and a looper holds USDe against a BTC short."""
    v = Venue(make_clearing(usde=valuation), debug=True)
    ix = v.add_asset_index("USDe", {"external": Fraction(1)})
    ix.update("external", 1, 0)
    mm, looper = v.open_accounts(2)
    v.clearing.deposit(mm, "USDe", usd("10000"))
    v.clearing.deposit(mm, "USDT", usd("100000"))
    v.clearing.deposit(looper, "USDe", usd("10000"))
    for px in ("1.0001", "1.0002"):
        assert v.submit_decimal(mm, "USDEUSDT", -1, "1000", px).accepted
    for px in ("0.9999", "0.9998"):
        assert v.submit_decimal(mm, "USDEUSDT", 1, "1000", px).accepted
    v.update_prices(0)
    return v, mm, looper


@pytest.mark.parametrize(
    ("name", "valuation", "depegged_price"),
    [
        ("internal book", from_book("USDEUSDT"), Fraction(13, 20)),  # mid 0.65 after the bids vanish
        ("external index", from_index("USDe"), Fraction(1)),
        ("redemption rate", redemption("1", "USDe"), Fraction(1)),
        ("fixed at par", fixed("1"), Fraction(1)),
        (
            "30/70 blend",
            Valuation.of([(Fraction(3, 10), [("book", "USDEUSDT")]), (Fraction(7, 10), [("index", "USDe")])]),
            Fraction(3, 10) * Fraction(13, 20) + Fraction(7, 10),
        ),
        ("book with 0.95 floor", from_book("USDEUSDT", floor="0.95"), Fraction(95, 100)),
    ],
)
def test_same_depeg_through_each_valuation_source(name: str, valuation: Valuation, depegged_price: Fraction) -> None:
    v, mm, looper = usde_venue(valuation)
    ch = v.clearing
    before = ch.account_margin(looper).equity
    # the crash: the market maker pulls its bids and re-quotes 0.64/0.66 on the thin internal book
    v.cancel_all(mm, "USDEUSDT")
    assert v.submit_decimal(mm, "USDEUSDT", 1, "10", "0.64").accepted
    assert v.submit_decimal(mm, "USDEUSDT", -1, "10", "0.66").accepted
    v.update_prices(1_000_000_000)
    after = ch.account_margin(looper).equity
    p0 = Fraction(1)  # before: book mid (0.9999 + 1.0001) / 2 and the index are both exactly 1
    expected_loss = 10_000 * Fraction(9, 10) * (p0 - depegged_price)  # 10,000 USDe at a 0.9 collateral ratio
    assert before - after == pytest.approx(float(expected_loss) * 1e8, abs=2)
    v.close()


def test_usde_loop_is_built_from_primitives_and_unwinds_on_a_book_depeg() -> None:
    v, mm, _ = usde_venue(from_book("USDEUSDT"))
    ch = v.clearing
    ch.seed_lending_pool("USDT", usd("10000000"))
    # the market maker offers plenty of USDe near par
    ch.deposit(mm, "USDe", usd("1000000"))
    assert v.submit_decimal(mm, "USDEUSDT", -1, "500000", "1.0003").accepted
    (looper,) = v.open_accounts(1)
    ch.deposit(looper, "USDT", usd("10000"))
    assert v.submit_decimal(looper, "USDEUSDT", 1, "9000", "1.0003").accepted
    for _ in range(6):  # borrow USDT against everything held, buy USDe, pledge it, repeat
        v.update_prices(0)
        held = ch.account_margin(looper).collateral + int(ch.accounts.debt[0, looper])  # haircut value of holdings
        room = held * 6 // 10 - int(ch.accounts.debt[0, looper])  # borrow up to 60% of it
        if room <= usd("10"):
            break
        ch.borrow(looper, "USDT", room)
        # price 1.0003 plus the fee, rounded up to 1.0005 per USDe (1,000,500 units a lot of 0.01); the venue sets aside
        # per lot 1,000,300 + ceil(1,000,300 x 0.01%) = 1,000,401 units (price plus the per-lot taker fee rounded up)
        lots = ch.ledger.balance(looper, "USDT") * 10_000 // (10_005 * usd("0.01"))
        assert v.submit(looper, "USDEUSDT", 1, lots, 10_003).accepted
    v.update_prices(0)
    usde = ch.ledger.balance(looper, "USDe")
    debt = int(ch.accounts.debt[0, looper])
    gross = usde + ch.ledger.balance(looper, "USDT")
    equity = gross - debt
    assert gross / equity > 2.0  # leverage hidden in the loop
    assert ch.ltv(looper) <= ch.loan_terms.initial_ltv
    # the internal USDe book collapses to 0.65
    v.cancel_all(mm, "USDEUSDT")
    assert v.submit_decimal(mm, "USDEUSDT", 1, "10", "0.64").accepted
    assert v.submit_decimal(mm, "USDEUSDT", -1, "10", "0.66").accepted
    v.update_prices(1_000_000_000)
    assert ch.ltv(looper) > ch.loan_terms.liquidation_ltv  # the looper must now be liquidated
    assert ch.ledger.balance(SOCIALIZED_LOSS, "USDT") == 0
    v.close()


class TestOrderEntry:
    """Every reject reason, and that a rejected order leaves no trace."""

    @pytest.fixture
    def setup(self):
        venue = make_venue()
        a, b = venue.open_accounts(2)
        venue.clearing.deposit(a, "USDT", usd("1000"))
        venue.clearing.deposit(b, "USDT", usd("1000000"))
        venue.clearing.set_mark("BTCUSDT", 1_000_000)
        venue.submit_decimal(b, "BTCUSDT", -1, "1", "100100")
        return venue, a, b

    def snapshot(self, v: Venue):
        o = v.orders  # the venue's open-order tallies per account (meta, holding the next order id, left out)
        return (
            v.clearing.ledger.balances.copy(),
            [b.l2(50) for b in v.books],
            [b.queues() for b in v.books],  # every resting order: (id, owner, qty) per level
            v.clearing.accounts.reserved.copy(),
            v.clearing.accounts.size.copy(),
            [x.copy() for x in (o.buy_qty, o.sell_qty, o.buy_notional, o.sell_notional, o.spot_reserved)],
        )

    @pytest.mark.parametrize(
        ("kwargs", "reason"),
        [
            ({"symbol": "XRPUSDT"}, Reject.UNKNOWN_INSTRUMENT),
            ({"account": 99}, Reject.UNKNOWN_ACCOUNT),
            ({"side": 0}, Reject.INVALID_SIDE),
            ({"qty": "0"}, Reject.INVALID_QUANTITY),
            ({"qty": "0.0005"}, Reject.OFF_LOT),
            ({"price": "100000.05"}, Reject.OFF_TICK),
            ({"price": "0"}, Reject.INVALID_PRICE),
            ({"qty": "0.001", "price": "1000"}, Reject.BELOW_MIN_NOTIONAL),
            ({"reduce_only": True}, Reject.REDUCE_ONLY_WOULD_INCREASE),
            ({"qty": "1"}, Reject.INSUFFICIENT_MARGIN),
            ({"qty": "2000"}, Reject.POSITION_LIMIT),
            ({"price": "100100", "tif": TIF.POST_ONLY}, Reject.POST_ONLY_WOULD_TAKE),
            ({"price": "100100", "qty": "0.02", "tif": TIF.FOK}, Reject.OK),
        ],
    )
    def test_rejects(self, setup, kwargs, reason: Reject) -> None:
        v, a, _ = setup
        args = {"account": a, "symbol": "BTCUSDT", "side": 1, "qty": "0.01", "price": "99000"} | kwargs
        before = self.snapshot(v)
        ack = v.submit_decimal(**args)
        assert ack.reason == reason
        if reason != Reject.OK:
            after = self.snapshot(v)
            assert np.array_equal(before[0], after[0]) and before[1:3] == after[1:3]
            assert np.array_equal(before[3], after[3]) and np.array_equal(before[4], after[4])
            assert all(np.array_equal(x, y) for x, y in zip(before[5], after[5], strict=True))
        v.close()

    def test_leverage_tier_and_account_state(self, setup) -> None:
        v, a, b = setup
        v.clearing.set_leverage(b, "BTCUSDT", 125)
        # 10 BTC valued at the larger of mark (100,000) and price (99,000): 1,000,000 notional, tier 3 allows 75x
        ack = v.submit_decimal(b, "BTCUSDT", 1, "10", "99000")
        assert ack.reason == Reject.LEVERAGE_EXCEEDS_TIER
        v.clearing.accounts.state[a] = 1
        assert v.submit_decimal(a, "BTCUSDT", 1, "0.01", "99000").reason == Reject.ACCOUNT_NOT_NORMAL

    def test_spot_balance_and_fok(self, setup) -> None:
        v, a, _ = setup
        assert v.submit_decimal(a, "USDEUSDT", 1, "2000", "1").reason == Reject.INSUFFICIENT_BALANCE
        assert v.submit_decimal(a, "USDEUSDT", -1, "1", "1").reason == Reject.INSUFFICIENT_BALANCE
        assert v.submit_decimal(a, "BTCUSDT", 1, "0.01", None).reason == Reject.OK  # market, within protection
        assert v.submit_decimal(a, "USDEUSDT", 1, "1", None).reason == Reject.NO_LIQUIDITY

    def test_resting_spot_buy_reserves_price_plus_fee_per_lot(self, setup) -> None:
        v, a, _ = setup
        usdt = v.clearing.ledger.asset("USDT")
        # 100 USDe at 0.9999 = 10,000 lots of 0.01 at 9,999 ticks (100 units a tick-lot): each lot sets aside
        # 999,900 + ceil(999,900 x 0.01%) = 999,900 + ceil(99.99) = 1,000,000 units; 10,000 lots: exactly 100 USDT
        ack = v.submit_decimal(a, "USDEUSDT", 1, "100", "0.9999")
        assert ack.accepted and ack.resting == 10_000
        assert v.orders.spot_reserved[usdt, a] == usd("100")
        # a fill of 3,333 lots releases exactly their share: 6,667 lots x 1,000,000 left
        (seller,) = v.open_accounts(1)
        v.clearing.deposit(seller, "USDe", usd("100"))
        assert v.submit_decimal(seller, "USDEUSDT", -1, "33.33", "0.9999").filled == 3_333
        assert v.orders.spot_reserved[usdt, a] == 6_667 * 1_000_000
        # what is set aside cannot be spent: the balance is 1,000 - 3,333 x 0.009999 paid (maker fee 0) = 966.673333,
        # of which 66.67 is set aside: 900.003333 free. 900 USDe more (90,000 lots x 0.01) fits; 900.01 does not
        assert v.submit_decimal(a, "USDEUSDT", 1, "900.01", "0.9999").reason == Reject.INSUFFICIENT_BALANCE
        assert v.submit_decimal(a, "USDEUSDT", 1, "900", "0.9999").accepted
        assert v.orders.spot_reserved[usdt, a] == (6_667 + 90_000) * 1_000_000
        assert v.cancel_all(a, "USDEUSDT") == 2 and v.orders.spot_reserved[usdt, a] == 0
        v.close()

    def test_deposits_must_be_positive(self, setup) -> None:
        v, a, _ = setup
        for amount in (0, -1):
            with pytest.raises(ClearingError, match="must be > 0"):
                v.clearing.deposit(a, "USDT", amount)

    def test_open_orders_hold_margin(self, setup) -> None:
        v, a, _ = setup
        assert v.submit_decimal(a, "BTCUSDT", 1, "0.11", "99000").accepted  # 10,890 at 20x = 544.5 held
        assert v.clearing.accounts.reserved[a] == usd("544.5")
        assert v.submit_decimal(a, "BTCUSDT", 1, "0.11", "99000").reason == Reject.INSUFFICIENT_MARGIN  # 1,089 > 999.9
        with pytest.raises(ClearingError, match="available"):
            v.clearing.withdraw(a, "USDT", usd("600"))
        (oid,) = v.books[v.instrument("BTCUSDT")].open_orders(a)
        assert v.cancel(a, oid).accepted and v.clearing.accounts.reserved[a] == 0
        v.clearing.withdraw(a, "USDT", usd("600"))
        v.close()


def test_ltv_breaches_agree_with_the_exact_ltv_of_every_account() -> None:
    rng = np.random.default_rng(5)
    ch = make_clearing()
    n = 400
    ch.open_accounts(n)
    ch.set_asset_price("ETH", Fraction(4000))
    ch.set_asset_price("USDe", Fraction(66, 100))
    ch.ledger.balances[1, :n] = rng.integers(0, usd("5000"), n)  # test set-up: USDe and ETH held, USDT owed
    ch.ledger.balances[2, :n] = rng.integers(0, usd("1"), n)
    ch.accounts.debt[0, :n] = np.where(rng.random(n) < 0.7, rng.integers(0, usd("6000"), n), 0)
    ch.principal["USDT"] = int(ch.accounts.debt[0, :n].sum())
    exact = [i for i in range(n) if ch.accounts.debt[:, i].any() and ch.ltv(i) > ch.loan_terms.liquidation_ltv]
    assert ch.ltv_breaches().tolist() == exact and 0 < len(exact) < n
