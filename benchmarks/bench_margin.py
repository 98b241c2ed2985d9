"""Margin scan: 1,000,000 accounts x 6 perpetuals with 8 collateral assets, beside the memory-bandwidth floor.

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
from cascadelab.clearing.core import PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual

PERPS = [
    ("BTCUSDT", "0.1", "0.001", 1_000_000),
    ("ETHUSDT", "0.01", "0.001", 400_000),
    ("SOLUSDT", "0.001", "0.01", 200_000),
    ("DOGEUSDT", "0.00001", "1", 20_000),
    ("ALTUSDT", "0.0001", "1", 5_000),
    ("ALT2USDT", "0.0001", "1", 2_000),
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


PRICES = {"USDT": 1, "USDC": 1, "BTC": 100_000, "ETH": 4_000, "SOL": 200, "wBETH": 4_280, "BNSOL": 210, "USDe": 1}


def build(n: int, seed: int = 0) -> ClearingHouse:
    """``n`` accounts whose collateral is sized to a leverage each account chose (1x to 50x, mostly low).

    A third of accounts hold each perp, entered within 1% of the current price; a tenth of
    positions are isolated with margin for their leverage; collateral is spread over one to
    three assets; 5% of accounts borrowed USDT.
    """
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
    for k, (_, _, _, px) in enumerate(PERPS):
        ch.marks[k] = px  # (prices are expressed directly in ticks here)
    rng = np.random.default_rng(seed)
    acc = ch.accounts
    lev = 1 + 49 * rng.random(n) ** 2
    need = np.zeros(n)
    for k, (_, _, _, px) in enumerate(PERPS):
        unit = ch.perps[k].instrument.unit_notional
        held = rng.random(n) < 1 / 3
        acc.size[k] = np.where(held, rng.integers(-2_000, 2_000, n), 0)
        acc.cost[k] = acc.size[k] * (px * rng.uniform(0.99, 1.01, n)).astype(np.int64) * unit
        acc.isolated[k] = held & (rng.random(n) < 0.1)
        notional = np.abs(acc.size[k]) * px * unit
        acc.iso_margin[k] = np.where(acc.isolated[k], (notional / lev).astype(np.int64), 0)
        acc.leverage[k] = np.minimum(np.ceil(lev), 50).astype(np.int64)
        need += np.where(acc.isolated[k], 0.0, notional / lev)
    need += acc.iso_margin.sum(axis=0)  # isolated margin is earmarked out of the USDT balance
    codes = [c for c, _, _ in ASSETS]
    ratio = {c: float(r) for c, r, _ in ASSETS}
    n_assets = rng.integers(1, 4, n)
    for slot in range(3):  # benchmark set-up writes balances directly (no ledger entries needed)
        pick = rng.integers(0, len(codes), n)
        share = np.where(slot < n_assets, 1.0 / n_assets, 0.0)
        for a, code in enumerate(codes):
            mask = (pick == a) & (share > 0)
            value = need[mask] * share[mask] * 1.02 / ratio[code]  # 2% above the leverage target
            ch.ledger.balances[a, mask] += (value / PRICES[code]).astype(np.int64)
    usdt_short = np.maximum(acc.iso_margin.sum(axis=0) - ch.ledger.balances[0], 0)
    ch.ledger.balances[0] += usdt_short  # isolated margin must sit in USDT
    borrowers = rng.random(n) < 0.05
    acc.debt[0] = np.where(borrowers, (need * 0.2).astype(np.int64), 0)
    ch.ledger.balances[0] += acc.debt[0]  # the borrowed USDT is held
    ch.lending.principal["USDT"] = int(acc.debt[0].sum())
    for code, price in PRICES.items():
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
