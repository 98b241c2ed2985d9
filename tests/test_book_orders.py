"""Unit tests of the fast book, one group per order type and per cancel/amend rule."""

from __future__ import annotations

import pytest

from cascadelab.book import L2, STP, TIF, CancelReason, OrderBook, Status

BUY, SELL = 1, -1


@pytest.fixture
def book() -> OrderBook:
    """A book with asks 101x5 (A), 101x3 (B), 102x4 (C) and bids 99x2 (D), 98x6 (E)."""
    b = OrderBook(order_capacity=4, level_capacity=4, out_capacity=4)
    b.limit(1, owner=10, side=SELL, price=101, qty=5, ts=1)
    b.limit(2, owner=11, side=SELL, price=101, qty=3, ts=2)
    b.limit(3, owner=12, side=SELL, price=102, qty=4, ts=3)
    b.limit(4, owner=13, side=BUY, price=99, qty=2, ts=4)
    b.limit(5, owner=14, side=BUY, price=98, qty=6, ts=5)
    b.check_invariants()
    return b


def fills_of(res) -> list[tuple[int, int, int, int]]:
    """(maker id, taker id, price, qty) per fill."""
    return [(int(f["maker_id"]), int(f["taker_id"]), int(f["price"]), int(f["qty"])) for f in res.fills]


def test_queries(book: OrderBook) -> None:
    assert book.best_bid() == 99 and book.best_ask() == 101
    assert book.l2(2) == L2(bids=[(99, 2), (98, 6)], asks=[(101, 8), (102, 4)])
    assert book.queue_position(2) == (1, 5)
    assert book.queue_position(1) == (0, 0)
    assert book.queue_position(99) is None
    # mid = 100; ±1% = [99, 101]: bids 99x2, asks 101x8
    assert book.depth_within(100) == (99 * 2, 101 * 8)
    assert book.depth_within(200) == (99 * 2 + 98 * 6, 101 * 8 + 102 * 4)


def test_depth_of_a_one_sided_book_is_measured_from_its_touch(book: OrderBook) -> None:
    """With the asks gone the bids near the best bid are still depth (not zero); an empty book has none."""
    for oid in (1, 2, 3):
        book.cancel(oid, owner=10 + oid - 1)
    # centre = best bid 99; ±1% = [98.01, 99.99]: 99x2 only; ±2% reaches 98
    assert book.depth_within(100) == (99 * 2, 0)
    assert book.depth_within(200) == (99 * 2 + 98 * 6, 0)
    book.cancel(4, owner=13)
    book.cancel(5, owner=14)
    assert book.depth_within(100) == (0, 0)


def test_owner_depth_counts_only_that_owners_orders_in_the_band(book: OrderBook) -> None:
    """``owner_depth`` is the owner's share of ``depth_within``, from the same centre and band."""
    import numpy as np

    from cascadelab.book import kernels as K

    book.limit(6, owner=10, side=BUY, price=97, qty=1, ts=6)  # outside ±2%
    book.limit(7, owner=10, side=BUY, price=99, qty=3, ts=7)
    out = np.zeros(2, np.int64)
    K.owner_depth(book.st, book.bk, 10, 100, out)
    assert tuple(out) == (99 * 3, 101 * 5)
    K.owner_depth(book.st, book.bk, 10, 300, out)
    assert tuple(out) == (99 * 3 + 97, 101 * 5)
    total = sum(tuple(np.array(book.depth_within(100))))
    parts = 0
    for owner in (10, 11, 12, 13, 14):
        K.owner_depth(book.st, book.bk, owner, 100, out)
        parts += int(out.sum())
    assert parts == total


class TestLimitGTC:
    def test_rests_when_not_marketable(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 100, 7)
        assert (r.status, r.filled, r.resting) == (Status.OK, 0, 7)
        assert book.best_bid() == 100 and len(r.fills) == 0

    def test_price_time_priority_and_rest_of_remainder(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 101, 10, ts=9)
        assert fills_of(r) == [(1, 6, 101, 5), (2, 6, 101, 3)]
        assert (r.filled, r.resting) == (8, 2)
        assert book.best_bid() == 101 and book.best_ask() == 102
        f = r.fills[0]
        assert (f["ts"], f["maker_owner"], f["taker_owner"], f["aggressor"]) == (9, 10, 20, BUY)

    def test_sweeps_levels_at_maker_prices(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 105, 10)
        assert fills_of(r) == [(1, 6, 101, 5), (2, 6, 101, 3), (3, 6, 102, 2)]
        assert book.l2().asks == [(102, 2)]

    def test_sell_side(self, book: OrderBook) -> None:
        r = book.limit(6, 20, SELL, 98, 5)
        assert fills_of(r) == [(4, 6, 99, 2), (5, 6, 98, 3)]
        assert r.fills[0]["aggressor"] == SELL

    def test_fifo_within_level(self, book: OrderBook) -> None:
        book.limit(6, 20, SELL, 101, 1)
        assert [o[0] for o in book.level_queue(SELL, 101)] == [1, 2, 6]

    @pytest.mark.parametrize("field", ["qty", "price", "side"])
    def test_invalid_rejected_without_trace(self, book: OrderBook, field: str) -> None:
        args = {"order_id": 6, "owner": 20, "side": BUY, "price": 100, "qty": 1}
        args[field] = 0
        before = book.l2(100)
        r = book.limit(**args)
        assert r.status == Status.REJECTED_INVALID and len(r.cancels) == 0
        assert book.l2(100) == before

    def test_duplicate_id_rejected(self, book: OrderBook) -> None:
        assert book.limit(1, 20, BUY, 50, 1).status == Status.REJECTED_DUPLICATE_ID


class TestIOCandFOK:
    def test_ioc_partial_then_cancel(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 101, 10, tif=TIF.IOC)
        assert (r.filled, r.resting, r.cancelled) == (8, 0, 2)
        assert r.cancels[0]["reason"] == CancelReason.IOC_REMAINDER
        assert book.best_bid() == 99

    def test_ioc_no_fill(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 100, 3, tif=TIF.IOC)
        assert (r.status, r.filled, r.cancelled) == (Status.OK, 0, 3)

    def test_fok_fills_in_full(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 102, 12, tif=TIF.FOK)
        assert (r.status, r.filled) == (Status.OK, 12)
        assert book.best_ask() is None

    def test_fok_kills_without_touching_book(self, book: OrderBook) -> None:
        before = book.l2(100)
        r = book.limit(6, 20, BUY, 102, 13, tif=TIF.FOK)
        assert (r.status, r.filled, r.cancelled) == (Status.REJECTED_FOK, 0, 13)
        assert book.l2(100) == before and len(r.fills) == 0


class TestPostOnly:
    def test_rejected_if_it_would_take(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 101, 1, tif=TIF.POST_ONLY)
        assert r.status == Status.REJECTED_POST_ONLY and r.cancelled == 1
        assert book.best_ask() == 101 and book.l2().asks[0] == (101, 8)

    def test_rests_if_passive(self, book: OrderBook) -> None:
        r = book.limit(6, 20, BUY, 100, 1, tif=TIF.POST_ONLY)
        assert (r.status, r.resting) == (Status.OK, 1)


class TestMarket:
    def test_bounded_by_protection(self, book: OrderBook) -> None:
        r = book.market(6, 20, BUY, 20, protection_ticks=0)
        assert r.filled == 8 and r.cancelled == 12  # only the 101 level is within 0 ticks
        r = book.market(7, 20, BUY, 20, protection_ticks=5)
        assert r.filled == 4 and r.cancelled == 16

    def test_no_liquidity(self) -> None:
        b = OrderBook()
        r = b.market(1, 1, SELL, 5, protection_ticks=10)
        assert r.status == Status.REJECTED_NO_LIQUIDITY and r.cancels[0]["reason"] == CancelReason.NO_LIQUIDITY

    def test_market_sell_bound_never_below_one_tick(self, book: OrderBook) -> None:
        r = book.market(6, 20, SELL, 100, protection_ticks=10_000)
        assert r.filled == 8 and book.best_bid() is None

    def test_reduce_only_flag_is_carried(self, book: OrderBook) -> None:
        book.limit(6, 20, BUY, 97, 1, flags=1)
        assert book.order(6).flags == 1


class TestCancelAndAmend:
    def test_cancel(self, book: OrderBook) -> None:
        r = book.cancel(1, 10)
        assert (r.status, r.cancelled) == (Status.OK, 5)
        assert book.level_queue(SELL, 101) == [(2, 11, 3)]

    def test_cancel_unknown_and_wrong_owner(self, book: OrderBook) -> None:
        assert book.cancel(42, 10).status == Status.REJECTED_UNKNOWN_ID
        assert book.cancel(1, 99).status == Status.REJECTED_NOT_OWNER
        assert book.order(1).qty == 5

    def test_cancel_all_for_one_owner(self, book: OrderBook) -> None:
        book.limit(6, 10, BUY, 90, 1)
        r = book.cancel_all(10)
        assert r.cancelled == 6 and book.open_orders(10) == []
        assert book.open_orders(11) == [2]

    def test_size_down_keeps_priority(self, book: OrderBook) -> None:
        r = book.amend(1, 10, 101, 2)
        assert (r.status, r.cancelled, r.resting) == (Status.OK, 3, 2)
        assert [o[0] for o in book.level_queue(SELL, 101)] == [1, 2]

    def test_size_up_loses_priority(self, book: OrderBook) -> None:
        book.amend(1, 10, 101, 6)
        assert [o[0] for o in book.level_queue(SELL, 101)] == [2, 1]

    def test_price_change_loses_priority_and_can_trade(self, book: OrderBook) -> None:
        book.limit(6, 20, SELL, 102, 1)
        book.amend(3, 12, 101, 4)
        assert [o[0] for o in book.level_queue(SELL, 101)] == [1, 2, 3]
        r = book.amend(5, 14, 101, 6)  # bid moved through the asks: it takes
        assert fills_of(r) == [(1, 5, 101, 5), (2, 5, 101, 1)]
        assert r.resting == 0

    def test_amended_post_only_that_would_take_expires(self, book: OrderBook) -> None:
        book.limit(6, 20, BUY, 100, 2, tif=TIF.POST_ONLY)
        r = book.amend(6, 20, 101, 2)
        assert r.status == Status.OK and r.cancelled == 2 and book.order(6) is None

    def test_invalid_amend(self, book: OrderBook) -> None:
        assert book.amend(1, 10, 101, 0).status == Status.REJECTED_INVALID
        assert book.amend(1, 10, 0, 3).status == Status.REJECTED_INVALID


class TestSelfTradePrevention:
    @pytest.mark.parametrize(
        ("mode", "filled", "book_asks", "status_cancels"),
        [
            (STP.NONE, 8, [(102, 4)], []),
            (STP.CANCEL_RESTING, 3, [(102, 4)], [(1, CancelReason.STP_RESTING)]),
            (STP.CANCEL_INCOMING, 0, [(101, 8), (102, 4)], [(6, CancelReason.STP_INCOMING)]),
            (STP.CANCEL_BOTH, 0, [(101, 3), (102, 4)], [(1, CancelReason.STP_RESTING), (6, CancelReason.STP_INCOMING)]),
        ],
    )
    def test_modes(self, book: OrderBook, mode: STP, filled: int, book_asks, status_cancels) -> None:
        r = book.limit(6, 10, BUY, 101, 8, tif=TIF.IOC, stp=mode)  # owner 10 also owns ask 1
        assert r.filled == filled
        assert book.l2().asks == book_asks
        stp_cancels = [
            (int(x["order_id"]), int(x["reason"]))
            for x in r.cancels
            if x["reason"] in (CancelReason.STP_RESTING, CancelReason.STP_INCOMING)
        ]
        assert stp_cancels == status_cancels


def test_growth_from_tiny_buffers() -> None:
    b = OrderBook(order_capacity=2, level_capacity=2, out_capacity=1)
    for i in range(200):
        b.limit(i, i % 3, SELL, 1000 + i, 1)
    r = b.limit(999, 5, BUY, 2000, 250)
    assert r.filled == 200 and r.resting == 50 and len(r.fills) == 200
    b.check_invariants()
