"""Seeded random order-request streams and a matching test market, for differential tests and benchmarks.

:func:`stream_market` builds a clearing house with three perpetuals (tiered margin, a
position limit, minimum notionals) and two spot pairs over USDT, ETH and USDe collateral,
opens accounts with very different wealth (so margin and balance rejects happen), some
isolated positions, a few leverages above what a large position's tier allows, a few
accounts not in normal state and a few with order entry blocked. :func:`random_requests`
then draws requests of every kind: passive and marketable limits of every time in force,
market orders, cancels aimed at recent order ids (some gone), cancel-alls, reduce-only
orders, and a sprinkling of malformed requests (unknown instrument or account, bad side,
size, price, time in force, request kind) so that every reject code an integer request
can produce is exercised. Everything is determined by the seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.collateral import CollateralAsset, fixed
from cascadelab.clearing.core import PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual, spot
from cascadelab.records import FLAG_REDUCE_ONLY, ORDER_REQUEST, TIF, Op

if TYPE_CHECKING:
    from cascadelab.venue.venue import Venue

MIDS = np.array([1_000_000, 40_000, 20_000, 400_000, 10_000], np.int64)
"""Starting mid of each instrument in ticks: BTC 100,000.0; ETH 4,000.0; DOGE 0.2; ETH spot 4,000.00; USDe 1.0000."""


def stream_market(venue_cls: type[Venue], n_accounts: int, seed: int, journal: bool = True) -> Venue:
    """A venue of ``venue_cls`` over three perpetuals and two spot pairs with ``n_accounts`` funded accounts."""
    tiers = MarginTiers.from_table(
        [("50000", "0.004", 125), ("600000", "0.005", 100), ("3000000", "0.01", 50), (None, "0.05", 10)]
    )
    alt = MarginTiers.from_table([("5000", "0.01", 50), ("25000", "0.025", 20), (None, "0.1", 5)])
    perps = [
        PerpSpec(perpetual("BTCUSDT", "0.1", "0.001", min_notional="5"), tiers),
        PerpSpec(perpetual("ETHUSDT", "0.1", "0.01", min_notional="5"), tiers, position_limit=4_000),
        PerpSpec(perpetual("DOGEUSDT", "0.00001", "1", maker="-0.0001", taker="0.0005", min_notional="5"), alt),
    ]
    spots = [
        spot("ETH-SPOT", "ETH", "USDT", "0.01", "0.0001", "1", "0.0001", "0.0002"),
        spot("USDE-SPOT", "USDe", "USDT", "0.0001", "0.01", "1", "0", "0.0001"),
    ]
    collateral = [
        CollateralAsset.of("USDT", "0.9999", fixed("1")),
        CollateralAsset.of("ETH", "0.95", fixed("4000")),
        CollateralAsset.of("USDe", "0.9", fixed("1")),
    ]
    ch = ClearingHouse(perps, spots, collateral, journal=journal, capacity=n_accounts)
    venue = venue_cls(ch)
    ids = venue.open_accounts(n_accounts)
    rng = np.random.default_rng(seed)
    wealth = 10 ** rng.uniform(2, 7, n_accounts)  # $100 to $10M
    usdt = (wealth * 1e8).astype(np.int64)
    eth = np.where(rng.random(n_accounts) < 0.5, (wealth / 4000 * 0.5e8).astype(np.int64), 0)
    usde = np.where(rng.random(n_accounts) < 0.3, (wealth * 0.5e8).astype(np.int64), 0)
    for code, amounts in (("USDT", usdt), ("ETH", eth), ("USDe", usde)):
        keep = amounts > 0
        ch.ledger.transfer_many(code, np.full(int(keep.sum()), -1), ids[keep], amounts[keep], 1)
    acc = ch.accounts
    lev = rng.choice(np.array([1, 3, 5, 10, 20, 50, 75, 100, 125]), size=(len(perps), n_accounts))
    acc.leverage[:, :n_accounts] = lev
    iso = rng.random((len(perps), n_accounts)) < 0.1
    acc.isolated[:, :n_accounts] = iso
    for k, p in enumerate(perps):
        ch.set_mark(p.instrument.symbol, int(MIDS[k]))
    acc.state[ids[rng.random(n_accounts) < 0.01]] = AccountState.LIQUIDATING
    venue.block_order_entry(ids[rng.random(n_accounts) < 0.01])
    return venue


def random_requests(n: int, seed: int, n_accounts: int, mids: np.ndarray = MIDS, first_ts: int = 0) -> np.ndarray:
    """``n`` ORDER_REQUEST records for :func:`stream_market` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_inst = len(mids)
    r = np.zeros(n, ORDER_REQUEST)
    r["ts"] = first_ts + np.arange(n, dtype=np.int64) * 1_000 + rng.integers(0, 3, n) * 500  # some equal times
    kind = rng.choice(
        np.array([Op.LIMIT, Op.MARKET, Op.CANCEL, Op.CANCEL_ALL, 9], np.int64), size=n, p=[0.62, 0.08, 0.28, 0.015, 0.005]
    )
    r["kind"] = kind
    inst = rng.integers(0, n_inst, n)
    inst = np.where(rng.random(n) < 0.003, rng.choice(np.array([-1, n_inst, 99])), inst)
    r["instrument"] = inst
    acct = np.minimum(rng.zipf(1.3, n) - 1, n_accounts - 1) % n_accounts  # a few accounts trade a lot
    acct = np.where(rng.random(n) < 0.5, rng.integers(0, n_accounts, n), acct)
    acct = np.where(rng.random(n) < 0.003, rng.choice(np.array([-1, n_accounts, 10**9])), acct)
    r["account"] = acct
    side = np.where(rng.random(n) < 0.5, 1, -1)
    r["side"] = np.where(rng.random(n) < 0.003, rng.choice(np.array([0, 2, -3])), side)
    base_mid = mids[np.clip(inst, 0, n_inst - 1)]
    walk = (base_mid * (1 + 0.002 * np.sin(np.arange(n) / 5_000))).astype(np.int64)
    offset = rng.geometric(0.3, n) - 1
    offset = np.where(rng.random(n) < 0.15, -rng.integers(1, 4, n), offset)
    tick_step = np.maximum(1, base_mid // 2_000)
    price = np.maximum(1, walk - side * offset * tick_step)
    price = np.where(rng.random(n) < 0.003, rng.choice(np.array([0, -5, 2**62])), price)
    r["price"] = price
    lots = (10 ** rng.uniform(0, 3.5, n)).astype(np.int64)
    lots = np.where(rng.random(n) < 0.003, rng.choice(np.array([0, -1, 2**61])), lots)
    r["qty"] = lots
    tif = rng.choice(np.arange(4), size=n, p=[0.75, 0.1, 0.05, 0.1])
    tif = np.where((kind == Op.MARKET) & (rng.random(n) < 0.97), TIF.IOC, tif)  # market orders are IOC (a few are not)
    r["tif"] = np.where(rng.random(n) < 0.002, 7, tif)
    r["stp"] = rng.choice(np.arange(4), size=n, p=[0.2, 0.6, 0.1, 0.1])
    r["flags"] = np.where(rng.random(n) < 0.08, FLAG_REDUCE_ONLY, 0)
    # cancels aim at recently assigned ids (the venue numbers orders 1, 2, ...): some are gone
    target = np.maximum(1, (np.arange(n) * 0.62).astype(np.int64) - rng.integers(0, 400, n))
    r["order_id"] = np.where(kind == Op.CANCEL, target, 0)
    return r
