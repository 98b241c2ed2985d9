"""Bulk clearing primitives: vectorized deposits, position set-up, and the opening auction.

The opening auction books a population's positions before a run: it must be ledger-exact
(conservation, settlement pool = -open cost, open interest balanced), equal to settling the
same crossings one fill at a time, and refuse bad input before changing anything.
"""

from __future__ import annotations

import numpy as np
import pytest

from cascadelab.clearing.collateral import CollateralAsset, fixed
from cascadelab.clearing.core import ClearingError, PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual
from cascadelab.records import BOOK_FILL, FillKind
from cascadelab.units import MONEY_SCALE


def house(n: int) -> ClearingHouse:
    tiers = MarginTiers.from_table([("50000", "0.004", 125), (None, "0.05", 10)])
    perp = perpetual("BTCUSDT", "0.1", "0.001", maker="0", taker="0")
    ch = ClearingHouse([PerpSpec(perp, tiers)], [], [CollateralAsset.of("USDT", "1", fixed("1"))], capacity=n)
    ch.open_accounts(n)
    ch.deposit_many(np.arange(n), "USDT", np.full(n, 10_000 * MONEY_SCALE))
    return ch


def random_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.integers(-50, 51, n)
    q[-1] -= q.sum()
    return q


@pytest.mark.parametrize("seed", range(5))
def test_auction_is_exact_and_equals_fill_by_fill_settlement(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    fast, slow = house(n), house(n)
    lev, iso = rng.integers(1, 20, n), rng.random(n) < 0.2
    for ch in (fast, slow):
        ch.configure_positions("BTCUSDT", np.arange(n), lev, iso)
    ids = rng.permutation(n)
    for rnd in range(3):  # later rounds close and flip positions: realized PnL flows
        q = random_sizes(rng, n)
        price = int(rng.integers(900_000, 1_100_000))
        fills = fast.opening_auction("BTCUSDT", ids, q, price, ts=rnd)
        assert (fills["kind"] == FillKind.AUCTION).all() and fills["qty"].sum() == q[q > 0].sum()
        book = np.zeros(len(fills), BOOK_FILL)
        for name in ("price", "qty", "aggressor", "ts"):
            book[name] = fills[name]
        book["maker_owner"], book["taker_owner"] = fills["maker_account"], fills["taker_account"]
        slow.settle_perp_fills("BTCUSDT", book)
        fast.check(replay_journal=True)
        slow.check(replay_journal=True)
        assert np.array_equal(fast.ledger.balances[:, :n], slow.ledger.balances[:, :n])
        for name in ("size", "cost", "realized", "iso_margin"):
            assert np.array_equal(getattr(fast.accounts, name)[:, :n], getattr(slow.accounts, name)[:, :n]), name


def test_bad_bulk_input_is_refused_before_anything_changes() -> None:
    ch = house(4)
    snapshot = ch.ledger.balances.copy()
    ids = np.arange(4)
    for call, match in (
        (lambda: ch.opening_auction("BTCUSDT", ids, [1, 1, -1, 0], 1_000_000), "sum to zero"),
        (lambda: ch.opening_auction("BTCUSDT", ids, [1, -1], 1_000_000), "4 accounts but 2 sizes"),
        (lambda: ch.opening_auction("BTCUSDT", [0, 0, 1, 2], [1, 1, -1, -1], 1_000_000), "appears twice"),
        (lambda: ch.opening_auction("BTCUSDT", ids, [1, 1, -1, -1], 0), "price must be > 0"),
        (lambda: ch.opening_auction("BTCUSDT", [0, 9], [1, -1], 1_000_000), "within 0..3"),
        (lambda: ch.opening_auction("BTCUSDT", ids, [2**62, 0, 0, -(2**62)], 1_000_000), "overflow"),
        (lambda: ch.opening_auction("NOPE", ids, [1, 1, -1, -1], 1_000_000), "NOPE"),
        (lambda: ch.deposit_many(ids, "USDT", [1, 2, 0, 4]), "must be > 0"),
        (lambda: ch.deposit_many(ids, "USDT", [1, 2]), "4 accounts but 2 amounts"),
        (lambda: ch.deposit_many([0.5], "USDT", [1]), "integers"),
        (lambda: ch.deposit_many([1], "USDT", [2**63 - 1]), "largest balance"),
        (lambda: ch.configure_positions("BTCUSDT", ids, 500, False), "leverage must be within"),
    ):
        with pytest.raises(ClearingError, match=match):
            call()
    assert np.array_equal(snapshot, ch.ledger.balances)
    assert not ch.accounts.size[:, :4].any()
    ch.opening_auction("BTCUSDT", ids, [1, 1, -1, -1], 1_000_000)
    with pytest.raises(ClearingError, match="only on flat positions"):
        ch.configure_positions("BTCUSDT", ids, 5, False)
    ch.check(replay_journal=True)
