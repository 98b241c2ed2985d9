"""Margin scan: 1,000,000 accounts x 5 perpetuals with 8 collateral assets.

One scan computes, exactly in integers, every account's cross margin balance (haircut
multi-asset collateral minus debts plus unrealized PnL), maintenance and initial margin
from the tiers, and the isolated-position breaches, at new marks. Positions and balances
are drawn at random (a third of accounts hold each perp; some isolated; some debts).
Prints, never asserts.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numba
import numpy as np

from cascadelab.clearing.collateral import CollateralAsset, fixed, from_book, redemption
from cascadelab.clearing.house import ClearingHouse, PerpSpec
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual

PERPS = [
    ("BTCUSDT", "0.1", "0.001", 1_000_000),
    ("ETHUSDT", "0.01", "0.001", 400_000),
    ("SOLUSDT", "0.001", "0.01", 200_000),
    ("DOGEUSDT", "0.00001", "1", 20_000),
    ("ALTUSDT", "0.0001", "1", 5_000),
]
ASSETS = [
    ("USDT", "1", fixed("1")),
    ("USDC", "1", fixed("1")),
    ("BTC", "0.95", fixed("100000")),
    ("ETH", "0.95", fixed("4000")),
    ("SOL", "0.9", fixed("200")),
    ("wBETH", "0.95", redemption("1.07", "ETH")),
    ("BNSOL", "0.9", fixed("210")),
    ("USDe", "0.9", from_book("USDEUSDT")),
]


def build(n: int, seed: int = 0) -> ClearingHouse:
    """A clearing house with ``n`` accounts holding random positions and collateral."""
    tiers = MarginTiers.from_table(
        [
            ("50000", "0.004", 125),
            ("600000", "0.005", 100),
            ("3000000", "0.0065", 75),
            ("12000000", "0.01", 50),
            (None, "0.02", 25),
        ]
    )
    perps = [PerpSpec(perpetual(s, t, lot), tiers) for s, t, lot, _ in PERPS]
    ch = ClearingHouse(perps, [], [CollateralAsset.of(c, r, v) for c, r, v in ASSETS], journal=False, capacity=n)
    ch.open_accounts(n)
    rng = np.random.default_rng(seed)
    acc = ch.accounts
    for k, (_, _, _, px) in enumerate(PERPS):
        held = rng.random(n) < 1 / 3
        acc.size[k] = np.where(held, rng.integers(-2_000, 2_000, n), 0)
        acc.cost[k] = acc.size[k] * px * rng.integers(95, 105, n) // 100 * ch.perps[k].instrument.unit_notional
        acc.isolated[k] = held & (rng.random(n) < 0.1)
        acc.iso_margin[k] = np.where(acc.isolated[k], rng.integers(0, 10**11, n), 0)
        acc.leverage[k] = rng.integers(1, 50, n)
    for a in range(len(ASSETS)):  # benchmark set-up writes balances directly (no ledger entries needed)
        ch.ledger.balances[a] = np.where(rng.random(n) < 0.4, rng.integers(0, 10**12, n), 0)
    acc.debt[0] = np.where(rng.random(n) < 0.05, rng.integers(0, 10**11, n), 0)
    ch.principal["USDT"] = int(acc.debt[0].sum())
    for code, price in (("BTC", 100_000), ("ETH", 4_000), ("SOL", 200), ("wBETH", 4_280), ("BNSOL", 210), ("USDe", 1)):
        ch.set_asset_price(code, Fraction(price))
    return ch


def run(n: int = 1_000_000, repeats: int = 15) -> None:
    """Time full scans at fresh marks, calm (marks within 1%) and stressed (within 10%)."""
    ch = build(n)
    rng = np.random.default_rng(1)
    ch.scan()  # compile / load
    print(
        f"margin scan: {n:,} accounts x {len(PERPS)} perps x {len(ASSETS)} collateral assets, {numba.get_num_threads()} threads"
    )
    for label, move in (("calm, marks within 1%", 0.01), ("stressed, marks within 10%", 0.10)):
        pre, total, suspects, below = [], [], [], []
        for _ in range(repeats):
            for k, (_, _, _, px) in enumerate(PERPS):
                ch.marks[k] = int(px * rng.uniform(1 - move, 1 + move))
            t0 = time.perf_counter()
            res = ch.scan()
            total.append(time.perf_counter() - t0)
            pre.append(res.prescreen_seconds)
            suspects.append(len(res.suspects))
            below.append(int(res.below_maintenance.sum()))
        print(
            f"margin scan ({label}): median {np.median(total) * 1e3:.1f} ms per scan = pre-screen of every account "
            f"{np.median(pre) * 1e3:.1f} ms + exact check of {int(np.median(suspects)):,} suspects; "
            f"{int(np.median(below)):,} accounts below maintenance"
        )


if __name__ == "__main__":
    run()
