"""Risk: the full margin scan beside the memory-bandwidth floor, and a quiet step of the incremental detector.

1,000,000 accounts x 6 perpetuals x 8 collateral assets, drawn at random (a third of
accounts hold each perp; some isolated; collateral over one to three assets sized to each
account's chosen leverage; 5% with loans). Printed beside each figure, from the same run:

* the floor: a compiled pass that only reads every byte the scan reads (two threads);
* for a quiet step (marks move by under 0.05%), the full scan it replaces.

Prints, never asserts.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numba
import numpy as np
from numba import njit, prange

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


def build(n: int, seed: int = 0, capacity: int | None = None) -> ClearingHouse:
    """``n`` accounts whose collateral is sized to a leverage each account chose (1x to 50x, mostly low).

    A third of accounts hold each perp, entered within 1% of the current price (the prices
    are expressed directly in ticks); a tenth of positions are isolated with margin for their
    leverage; collateral is spread over one to three assets; 5% of accounts borrowed USDT.
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
    ch = ClearingHouse(perps, [], [CollateralAsset.of(c, r, v) for c, r, v in ASSETS], journal=False, capacity=capacity or n)
    ch.open_accounts(n)
    rng = np.random.default_rng(seed)
    acc = ch.accounts
    lev = 1 + 49 * rng.random(n) ** 2
    need = np.zeros(n)
    for k, (_, _, _, px) in enumerate(PERPS):
        ch.marks[k] = px
        unit = ch.perps[k].instrument.unit_notional
        held = rng.random(n) < 1 / 3
        acc.size[k, :n] = np.where(held, rng.integers(-2_000, 2_000, n), 0)
        acc.cost[k, :n] = acc.size[k, :n] * (px * rng.uniform(0.99, 1.01, n)).astype(np.int64) * unit
        acc.isolated[k, :n] = held & (rng.random(n) < 0.1)
        notional = np.abs(acc.size[k, :n]) * px * unit
        acc.iso_margin[k, :n] = np.where(acc.isolated[k, :n], (notional / lev).astype(np.int64), 0)
        acc.leverage[k, :n] = np.minimum(np.ceil(lev), 50).astype(np.int64)
        need += np.where(acc.isolated[k, :n], 0.0, notional / lev)
    need += acc.iso_margin[:, :n].sum(axis=0)  # isolated margin is earmarked out of the USDT balance
    codes = [c for c, _, _ in ASSETS]
    ratio = {c: float(r) for c, r, _ in ASSETS}
    n_assets = rng.integers(1, 4, n)
    bal = ch.ledger.balances
    for slot in range(3):  # benchmark set-up writes balances directly (no ledger entries needed)
        pick = rng.integers(0, len(codes), n)
        share = np.where(slot < n_assets, 1.0 / n_assets, 0.0)
        for a, code in enumerate(codes):
            mask = (pick == a) & (share > 0)
            value = need[mask] * share[mask] * 1.02 / ratio[code]  # 2% above the leverage target
            bal[a, :n][mask] += (value / PRICES[code]).astype(np.int64)
    bal[0, :n] += np.maximum(acc.iso_margin[:, :n].sum(axis=0) - bal[0, :n], 0)  # isolated margin sits in USDT
    borrowers = rng.random(n) < 0.05
    acc.debt[0, :n] = np.where(borrowers, (need * 0.2).astype(np.int64), 0)
    bal[0, :n] += acc.debt[0, :n]  # the borrowed USDT is held
    ch.lending.principal["USDT"] = int(acc.debt[0, :n].sum())
    for code, price in PRICES.items():
        ch.set_asset_price(code, Fraction(price))
    return ch


@njit(cache=True, parallel=True)
def _read_every_byte(n, size, cost, iso, isom, bal, debt, out):
    """Sum every byte the scan reads (account-major, two threads): the memory-bandwidth floor."""
    nb = (n + 4095) // 4096
    for b in prange(nb):
        s = 0
        for j in range(b * 4096, min(n, b * 4096 + 4096)):
            for k in range(size.shape[0]):
                s += size[k, j] + cost[k, j] + isom[k, j] + iso[k, j]
            for a in range(bal.shape[0]):
                s += bal[a, j]
            s += debt[0, j]
        out[b] = s


def floor_ms(ch: ClearingHouse, repeats: int) -> tuple[float, float]:
    """(milliseconds, megabytes) of the floor pass over the scan's inputs."""
    acc = ch.accounts.arrays
    n = ch.accounts.n
    args = (n, acc.size, acc.cost, acc.isolated, acc.iso_margin, ch.ledger.balances, acc.debt)
    out = np.zeros((n + 4095) // 4096, np.int64)
    _read_every_byte(*args, out)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _read_every_byte(*args, out)
        ts.append(time.perf_counter() - t0)
    mb = n * (acc.size.shape[0] * (8 + 8 + 1 + 8) + 8 * ch.ledger.balances.shape[0] + 8) / 1e6
    return float(np.median(ts)) * 1e3, mb


def run(n: int = 1_000_000, repeats: int = 15) -> dict[str, float]:
    """Print the full scan (calm and stressed) beside the floor, then a quiet incremental step beside a full scan."""
    ch = build(n)
    rng = np.random.default_rng(1)
    ch.scan()  # compile / load
    print(f"margin: {n:,} accounts x {len(PERPS)} perps x {len(ASSETS)} collateral assets, {numba.get_num_threads()} threads")
    floor, mb = floor_ms(ch, repeats)
    out: dict[str, float] = {"floor_ms": floor}
    for label, move in (("calm, marks within 1%", 0.01), ("stressed, marks within 10%", 0.10)):
        total, suspects = [], []
        for _ in range(repeats):
            for k, (_, _, _, px) in enumerate(PERPS):
                ch.marks[k] = int(px * rng.uniform(1 - move, 1 + move))
            t0 = time.perf_counter()
            res = ch.scan()
            total.append(time.perf_counter() - t0)
            suspects.append(len(res.suspects))
        ms = float(np.median(total)) * 1e3
        out[f"scan_{move}"] = ms
        print(
            f"margin full scan ({label}): median {ms:.1f} ms, {int(np.median(suspects)):,} suspects checked exactly; "
            f"memory floor for its {mb:.0f} MB: {floor:.1f} ms -> {ms / floor:.2f}x the floor"
        )
    for k, (_, _, _, px) in enumerate(PERPS):
        ch.marks[k] = px
    t0 = time.perf_counter()
    ch.breaching()  # builds the safe boxes of every account
    build_ms = (time.perf_counter() - t0) * 1e3
    quiet, full = [], []
    for _ in range(repeats):
        for k in range(len(PERPS)):
            ch.marks[k] = int(ch.marks[k] * (1 + rng.normal(0, 0.0002)))
        t0 = time.perf_counter()
        ch.breaching()
        quiet.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ch.scan()
        full.append(time.perf_counter() - t0)
    q, f = float(np.median(quiet)) * 1e3, float(np.median(full)) * 1e3
    out["quiet_ms"] = q
    print(
        f"incremental risk: a quiet step (marks move <0.05%) takes {q:.3f} ms at {n:,} accounts, "
        f"beside {f:.1f} ms for the full scan of the same step ({f / q:,.0f}x); building every safe box took {build_ms:.0f} ms"
    )
    return out


if __name__ == "__main__":
    run()
