"""Differential test: the fast book and the reference book must agree op for op."""

from __future__ import annotations

import numpy as np
import pytest

from cascadelab.book import OrderBook, ReferenceBook
from cascadelab.book.streams import random_ops


def run_both(n: int, seed: int, chunk: int, compare_books_every: int = 1, **kw) -> tuple[int, int]:
    """Feed the same stream to both books; compare results, fills, cancels, and books."""
    ops = random_ops(n, seed, **kw)
    fast = OrderBook(order_capacity=64, level_capacity=8, out_capacity=16)  # tiny: exercises growth
    ref = ReferenceBook()
    n_fills = 0
    for c, start in enumerate(range(0, n, chunk)):
        batch = ops[start : start + chunk]
        got = fast.submit(batch)
        ref.fills.clear()
        ref.cancels.clear()
        want = np.array([ref.apply(row) for row in batch.tolist()], np.int64)
        np.testing.assert_array_equal(got.results, want, err_msg=f"results differ in chunk at op {start}")
        assert got.fills.tolist() == [list(f) for f in ref.fills], f"fills differ in chunk at op {start}"
        assert got.cancels.tolist() == [list(x) for x in ref.cancels], f"cancels differ in chunk at op {start}"
        n_fills += len(ref.fills)
        if c % compare_books_every == 0:
            assert fast.l2(depth=10**9) == ref.l2(), f"books differ after op {start + len(batch)}"
            assert fast.queues() == ref.queues(), f"queues differ after op {start + len(batch)}"
            fast.check_invariants()
    assert fast.l2(depth=10**9) == ref.l2()
    assert fast.queues() == ref.queues()
    return n_fills, fast.order_count


def test_differential_100k_random_operations() -> None:
    n_fills, resting = run_both(100_000, seed=7, chunk=1_000, compare_books_every=5)
    assert n_fills > 10_000 and resting > 50  # the stream really trades and really rests


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_differential_small_owner_pool_stresses_self_trade_prevention(seed: int) -> None:
    run_both(20_000, seed=seed, chunk=97, owners=2)


def test_differential_wide_book_grows_levels() -> None:
    run_both(20_000, seed=11, chunk=500, spread_levels=2_000, mix=(0.8, 0.02, 0.1, 0.07, 0.01))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_differential_millions(seed: int) -> None:
    run_both(1_000_000, seed=100 + seed, chunk=10_000, compare_books_every=10)
