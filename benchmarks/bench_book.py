"""Order-book throughput: a synthetic stream of 1,000,000 mixed operations on one book.

The stream (``cascadelab.book.streams.random_ops``) mixes passive and marketable limits
of every time in force, market orders, cancels and amends. The book starts empty;
kernels are compiled (or loaded from cache) before timing. Prints, never asserts.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from cascadelab.book import Op, OrderBook, Status
from cascadelab.book.streams import random_ops


def run(n: int = 1_000_000, seed: int = 42, repeats: int = 3) -> dict[str, float]:
    """Time ``n`` operations, best of ``repeats``; returns the figures it prints."""
    ops = random_ops(n, seed)
    OrderBook().submit(ops[:1000])  # warm-up: load compiled kernels
    best = float("inf")
    for _ in range(repeats):
        book = OrderBook(order_capacity=1 << 16, level_capacity=1 << 12, out_capacity=1 << 20)
        t0 = time.perf_counter()
        res = book.submit(ops)
        best = min(best, time.perf_counter() - t0)
    kinds = Counter(Op(k).name for k in ops["kind"].tolist())
    ok = int((res.results["status"] == Status.OK).sum())
    print(f"book: {n:,} ops ({', '.join(f'{k.lower()} {v:,}' for k, v in kinds.most_common())})")
    print(f"book: accepted {ok:,}, fills {len(res.fills):,}, cancels {len(res.cancels):,}, resting at end {book.order_count:,}")
    print(f"book: {best:.3f} s best of {repeats} -> {n / best:,.0f} operations/s (one core)")
    return {"ops_per_s": n / best, "fills": float(len(res.fills))}


if __name__ == "__main__":
    np.set_printoptions(linewidth=120)
    run()
