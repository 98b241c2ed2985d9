"""Differential test: the fast book and the reference book must agree op for op.

Positions are tracked from the fills and handed to both books, so reduce-only orders (5%
of the stream) are capped and cancelled by the same rule in both.
"""

from __future__ import annotations

import numpy as np
import pytest

from cascadelab.book import OrderBook, ReferenceBook
from cascadelab.book.streams import random_ops

FILL_FIELDS = ("ts", "maker_id", "taker_id", "maker_owner", "taker_owner", "price", "qty", "aggressor")
CANCEL_FIELDS = ("ts", "order_id", "owner", "side", "price", "qty", "reason")


def _rows(records: np.ndarray, fields: tuple[str, ...]) -> list[tuple[int, ...]]:
    return [tuple(int(r[f]) for f in fields) for r in records]


def run_both(n: int, seed: int, chunk: int, compare_books_every: int = 1, owners: int = 16, **kw) -> tuple[int, int]:
    """Feed the same stream to both books; compare results, fills, cancels, books and positions."""
    ops = random_ops(n, seed, owners=owners, **kw)
    fast = OrderBook(order_capacity=64, level_capacity=8, out_capacity=16)  # tiny: exercises growth
    ref = ReferenceBook()
    pos = np.zeros(owners, np.int64)
    n_fills = n_ro_cancels = 0
    for c, start in enumerate(range(0, n, chunk)):
        batch = ops[start : start + chunk]
        got = fast.submit(batch, positions=pos)
        ref.fills.clear()
        ref.cancels.clear()
        before = dict(enumerate(pos.tolist()))
        want = [ref.apply(op, before) for op in batch]
        assert [[int(r[f]) for f in ("status", "filled", "resting", "cancelled")] for r in got.results] == want, start
        assert _rows(got.fills, FILL_FIELDS) == ref.fills, f"fills differ in chunk at op {start}"
        assert _rows(got.cancels, CANCEL_FIELDS) == ref.cancels, f"cancels differ in chunk at op {start}"
        np.add.at(pos, got.fills["maker_owner"], -got.fills["aggressor"] * got.fills["qty"])
        np.add.at(pos, got.fills["taker_owner"], got.fills["aggressor"] * got.fills["qty"])
        n_fills += len(ref.fills)
        n_ro_cancels += int((got.cancels["reason"] == 10).sum())
        if c % compare_books_every == 0:
            assert fast.l2(depth=10**9) == ref.l2(), f"books differ after op {start + len(batch)}"
            assert fast.queues() == ref.queues(), f"queues differ after op {start + len(batch)}"
            fast.check_invariants()
    assert fast.l2(depth=10**9) == ref.l2()
    assert fast.queues() == ref.queues()
    assert n_ro_cancels > 0  # the reduce-only rule really fired
    return n_fills, fast.order_count


def test_differential_100k_random_operations() -> None:
    n_fills, resting = run_both(100_000, seed=7, chunk=1_000, compare_books_every=5)
    assert n_fills > 10_000 and resting > 50  # the stream really trades and really rests


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_differential_small_owner_pool_stresses_self_trade_prevention(seed: int) -> None:
    run_both(20_000, seed=seed, chunk=97, owners=2)


def test_differential_wide_book_grows_levels() -> None:
    run_both(20_000, seed=11, chunk=500, spread_levels=2_000, mix=(0.8, 0.02, 0.1, 0.07, 0.01))


def test_stale_reduce_only_orders_are_cancelled_alike() -> None:
    ops = random_ops(5_000, seed=5, owners=6)
    fast, ref = OrderBook(), ReferenceBook()
    pos = np.array([500, -500, 500, -500, 500, -500], np.int64)  # every owner can reduce on one side
    fast.submit(ops[:3_000], positions=pos)
    for op in ops[:3_000]:
        ref.apply(op, dict(enumerate(pos.tolist())))
    flips = np.array([3, -2, 0, 5, -1, 0], np.int64)  # positions moved elsewhere (another venue path)
    res = np.zeros(1, fast.submit(ops[:0]).results.dtype)
    from cascadelab.book import kernels as K

    n = K.cancel_stale_reduce_only(fast.st, fast.bk, flips, np.arange(6, dtype=np.int64), 6, 9, res[0])
    _, cancels = fast.take_output()
    ref.cancels.clear()
    assert n == ref.cancel_stale_reduce_only(dict(enumerate(flips.tolist())), list(range(6)), 9) and n > 0
    assert _rows(cancels, CANCEL_FIELDS) == ref.cancels
    assert fast.queues() == ref.queues()
    fast.check_invariants()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_differential_millions(seed: int) -> None:
    run_both(1_000_000, seed=100 + seed, chunk=10_000, compare_books_every=10)
