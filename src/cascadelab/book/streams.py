"""Synthetic operation streams for differential tests and benchmarks.

The stream mixes every operation the book knows around a random-walk mid price:
passive and marketable limits of every time in force, market orders, cancels and
amends aimed at recently submitted orders (some already gone, so rejections are
exercised too), a few cancel-alls, and a small owner pool so self-trade prevention
fires often. Generation is vectorized and fully determined by the seed.
"""

from __future__ import annotations

import numpy as np

from cascadelab.records import BOOK_OP, Op


def random_ops(
    n: int,
    seed: int,
    owners: int = 16,
    mid: int = 10_000,
    spread_levels: int = 40,
    mix: tuple[float, float, float, float, float] = (0.55, 0.05, 0.25, 0.1495, 0.0005),
    lookback: int = 150,
) -> np.ndarray:
    """``n`` BOOK_OP records.

    ``mix`` gives the shares of (limit, market, cancel, amend, cancel-all). Order ids are
    the row index, so a cancel aimed at row ``j`` names order ``j`` and its owner.
    """
    rng = np.random.default_rng(seed)
    ops = np.zeros(n, BOOK_OP)
    kinds = rng.choice(
        np.array([Op.LIMIT, Op.MARKET, Op.CANCEL, Op.AMEND, Op.CANCEL_ALL], np.int64), size=n, p=np.array(mix) / sum(mix)
    )
    ops["kind"] = kinds
    ops["ts"] = np.arange(n, dtype=np.int64) * 1_000
    owner = rng.integers(0, owners, n)
    side = np.where(rng.random(n) < 0.5, 1, -1)
    walk = mid + np.cumsum(rng.integers(-1, 2, n))
    # distance from mid: mostly passive, sometimes through the book
    offset = rng.geometric(0.15, n) - 1
    offset = np.where(rng.random(n) < 0.12, -rng.integers(1, 6, n), np.minimum(offset, spread_levels))
    price = np.maximum(1, walk - side * offset)
    qty = rng.integers(1, 50, n) * np.where(rng.random(n) < 0.05, 10, 1)
    tif = rng.choice(np.arange(4), size=n, p=[0.8, 0.08, 0.04, 0.08])
    stp = rng.choice(np.arange(4), size=n, p=[0.55, 0.15, 0.15, 0.15])
    ids = np.arange(n, dtype=np.int64)

    ops["order_id"] = ids
    ops["owner"] = owner
    ops["side"] = side
    ops["price"] = price
    ops["qty"] = qty
    ops["tif"] = tif
    ops["stp"] = stp
    ops["flags"] = (rng.random(n) < 0.05).astype(np.int64)

    market = kinds == Op.MARKET
    ops["price"][market] = rng.integers(0, 8, int(market.sum()))
    ops["tif"][market] = 1

    target = ids - rng.integers(1, lookback, n)
    target = np.maximum(target, 0)
    aimed = (kinds == Op.CANCEL) | (kinds == Op.AMEND)
    ops["order_id"][aimed] = target[aimed]
    # mostly the true owner (so the request is accepted), sometimes an impostor
    true_owner = owner[target]
    ops["owner"][aimed] = np.where(rng.random(n) < 0.97, true_owner, (true_owner + 1) % owners)[aimed]
    amend = kinds == Op.AMEND
    keep_price = rng.random(n) < 0.5
    ops["price"][amend] = np.where(keep_price, price[target], price)[amend]
    ops["qty"][amend] = np.maximum(1, qty[target] + rng.integers(-30, 10, n))[amend]
    return ops
