"""The incremental detector names exactly the accounts the full exact scan names, every step.

Random markets: three perpetuals with tiered margin, USDT/ETH/SOL collateral with haircuts,
cross and isolated positions, loans; random price paths (quiet drifts, crashes, spikes,
gaps, collateral depegs), with trades, deposits, withdrawals of collateral, borrowing and
funding between steps. After every step the detector's answer must equal the full scan's,
and on quiet paths it must look at far fewer accounts than the full scan.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction

import numpy as np
import pytest

from cascadelab.clearing.accounts import MarginMode
from cascadelab.clearing.collateral import CollateralAsset, fixed
from cascadelab.clearing.core import LoanTerms, PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual
from cascadelab.records import BOOK_FILL


def market(seed: int, n: int) -> tuple[ClearingHouse, np.random.Generator]:
    rng = np.random.default_rng(seed)
    tiers = MarginTiers.from_table(
        [("50000", "0.004", 125), ("600000", "0.005", 100), ("3000000", "0.01", 50), (None, "0.05", 10)]
    )
    alt = MarginTiers.from_table([("5000", "0.01", 50), ("25000", "0.025", 20), (None, "0.1", 5)])
    perps = [
        PerpSpec(perpetual("BTCUSDT", "0.1", "0.001"), tiers),
        PerpSpec(perpetual("ETHUSDT", "0.01", "0.01"), tiers),
        PerpSpec(perpetual("ALTUSDT", "0.0001", "1"), alt),
    ]
    coll = [CollateralAsset.of("USDT", "0.9999", fixed("1")), CollateralAsset.of("ETH", "0.95", fixed("4000")),
            CollateralAsset.of("SOL", "0.9", fixed("200"))]  # fmt: skip
    ch = ClearingHouse(perps, [], coll, loan_terms=LoanTerms(700_000, 850_000), journal=False)
    ids = ch.open_accounts(n)
    ch.seed_lending_pool("USDT", 10**18)
    for k, mid in enumerate((1_000_000, 400_000, 100_000)):
        ch.marks[k] = mid
    ch.set_asset_price("ETH", Fraction(4000))
    ch.set_asset_price("SOL", Fraction(200))
    for i in ids.tolist():
        if rng.random() < 0.8:
            ch.deposit(i, "USDT", int(10 ** rng.uniform(9, 12)))
        if rng.random() < 0.3:
            ch.deposit(i, "ETH", int(10 ** rng.uniform(6, 9)))
        if rng.random() < 0.2:
            ch.deposit(i, "SOL", int(10 ** rng.uniform(7, 10)))
        for k, p in enumerate(perps):
            if rng.random() < 0.1:
                ch.set_margin_mode(i, p.instrument.symbol, MarginMode.ISOLATED)
            ch.accounts.leverage[k, i] = int(rng.integers(1, 51))
        if rng.random() < 0.15 and ch.ledger.balance(i, "ETH") + ch.ledger.balance(i, "SOL") > 0:
            value = ch.ledger.balance(i, "ETH") * 4000 + ch.ledger.balance(i, "SOL") * 200
            with contextlib.suppress(ValueError):
                ch.borrow(i, "USDT", int(value * rng.uniform(0.3, 0.65)))
    maker = int(ids[0])
    ch.deposit(maker, "USDT", 10**17)
    for i in ids[1:].tolist():
        for k in range(3):
            if rng.random() < 0.6:
                trade(ch, k, maker, i, int(rng.choice([1, -1])) * int(10 ** rng.uniform(1, 3.5)))
    return ch, rng


def trade(ch: ClearingHouse, k: int, maker: int, taker: int, lots: int) -> None:
    """Settle one fill at the mark between the maker and ``taker`` (+lots: the taker buys)."""
    f = np.zeros(1, BOOK_FILL)
    f[0] = (0, 0, 0, maker, taker, int(ch.marks[k]), abs(lots), 1 if lots > 0 else -1, 0, 0)
    ch.settlement.perp_fills(k, f)


def shock(ch: ClearingHouse, rng: np.random.Generator, quiet: bool) -> None:
    r = rng.random()
    for k in range(3):
        if quiet:
            move = rng.normal(0, 0.0005)
        elif r < 0.4:
            move = rng.normal(0, 0.01)
        elif r < 0.7:
            move = -abs(rng.normal(0.05, 0.05))
        elif r < 0.85:
            move = abs(rng.normal(0.05, 0.05))
        else:
            move = float(rng.choice([-0.2, 0.15, -0.4]))
        ch.marks[k] = max(1, int(ch.marks[k] * (1 + move)))
    for a in (1, 2):
        move = rng.normal(0, 0.0005 if quiet else 0.03)
        if not quiet and rng.random() < 0.1:
            move = -0.5  # a depeg of the collateral
        ch.asset_price[a] = max(1, int(ch.asset_price[a] * (1 + move)))


def churn(ch: ClearingHouse, rng: np.random.Generator) -> None:
    """State changes between steps: trades, deposits, withdrawals, loans, funding."""
    n = ch.accounts.n
    for _ in range(int(rng.integers(0, 4))):
        i = int(rng.integers(1, n))
        r = rng.random()
        if r < 0.5:
            trade(ch, int(rng.integers(0, 3)), 0, i, int(rng.choice([1, -1])) * int(rng.integers(1, 500)))
        elif r < 0.7:
            ch.deposit(i, "USDT", int(10 ** rng.uniform(8, 11)))
        elif r < 0.85 and ch.ledger.balance(i, "ETH") > 0:
            ch.ledger.withdraw(i, "ETH", ch.ledger.balance(i, "ETH") // 2)  # collateral leaves (no checks: stress the detector)
        else:
            with contextlib.suppress(ValueError):
                ch.borrow(i, "USDT", int(10 ** rng.uniform(8, 10)))
    if rng.random() < 0.05:
        k = int(rng.integers(0, 3))
        ch.pay_funding(ch.perps[k].instrument.symbol, int(rng.integers(-100_000, 100_000)), int(ch.marks[k]))


@pytest.mark.parametrize("seed", range(8))
def test_incremental_detector_equals_the_full_scan_every_step(seed: int) -> None:
    ch, rng = market(seed, 400)
    hits = 0
    for step in range(120):
        shock(ch, rng, quiet=rng.random() < 0.6)
        if rng.random() < 0.5:
            churn(ch, rng)
        got = ch.breaching()
        want = ch.full_breaching()
        assert got.tolist() == want.tolist(), f"seed {seed} step {step}: {sorted(set(got) ^ set(want))}"
        hits += len(want)
    assert hits > 0  # the paths really push accounts over


def test_quiet_steps_look_at_few_accounts() -> None:
    ch, rng = market(99, 3000)
    # a venue liquidates accounts that breach; here every account is topped up to five times its requirement instead
    for i in range(1, ch.accounts.n):
        am = ch.account_margin(i)
        ch.deposit(i, "USDT", max(0, 5 * am.maintenance - am.equity) + 10**8)
        if ch.accounts.debt[0, i]:
            ch.deposit(i, "USDT", int(ch.accounts.debt[0, i]))
            ch.repay(i, "USDT", int(ch.accounts.debt[0, i]))
        for p in am.positions:
            if p.isolated:
                ch.deposit(i, "USDT", 5 * p.maintenance + am.initial + am.maintenance)
                ch.add_isolated_margin(i, p.instrument, 5 * p.maintenance)
    assert len(ch.full_breaching()) == 0
    ch.breaching()  # the first call builds the boxes
    before = ch.risk.stats["checked"]
    breaching = 0
    for _ in range(200):
        shock(ch, rng, quiet=True)
        got = ch.breaching()
        assert got.tolist() == ch.full_breaching().tolist()
        breaching += len(got)
    looked = ch.risk.stats["checked"] - before - breaching
    assert looked < 0.02 * 200 * 3000, looked  # the full scan prices 600,000 accounts in these 200 steps


def _walk_reference(risk, cur: np.ndarray, moved: bool, touched: np.ndarray, n: int) -> np.ndarray:
    """The accounts to recheck, found with array code (searchsorted per dimension, concatenation, unique)."""
    parts = [touched[touched < n], risk.always]
    if moved:
        for d in range(len(cur)):
            for trig, acct, off, ptr, key in (
                (risk.lo_trig, risk.lo_acct, risk.lo_off, risk.lo_ptr, -cur[d]),
                (risk.hi_trig, risk.hi_acct, risk.hi_off, risk.hi_ptr, cur[d]),
            ):
                t, a = trig[off[d] : off[d + 1]], acct[off[d] : off[d + 1]]
                pos = int(np.searchsorted(t, key, side="right"))
                if pos > ptr[d]:
                    hit = a[ptr[d] : pos]
                    parts.append(hit[~risk.rechecked[hit]])
                    ptr[d] = pos
        r = risk.n_r
        crossed = (risk._r_lo[:r] >= cur).any(axis=1) | (risk._r_hi[:r] <= cur).any(axis=1)
        parts.append(risk._r_acct[:r][crossed])
    return np.unique(np.concatenate(parts)).astype(np.int64)


@pytest.mark.parametrize("seed", range(4))
def test_compiled_walk_names_the_accounts_array_code_names(seed: int) -> None:
    """The compiled pointer walk + dense-table test + dedup equals the array version, pointers included."""
    from cascadelab.clearing.risk import walk

    ch, rng = market(seed, 300)
    risk = ch.risk
    ch.breaching()
    n = ch.accounts.n
    for _ in range(60):
        shock(ch, rng, quiet=rng.random() < 0.6)
        cur = risk.prices()
        touched = np.unique(rng.integers(0, n + 5, int(rng.integers(0, 6)))).astype(np.int64)
        moved = bool(rng.random() < 0.8)
        lo_ptr, hi_ptr = risk.lo_ptr.copy(), risk.hi_ptr.copy()
        want = _walk_reference(risk, cur, moved, touched, n)
        want_ptr = (risk.lo_ptr.copy(), risk.hi_ptr.copy())
        risk.lo_ptr[:], risk.hi_ptr[:] = lo_ptr, hi_ptr
        m = walk(cur, moved, risk.lo_trig, risk.lo_acct, risk.lo_off, risk.lo_ptr, risk.hi_trig, risk.hi_acct, risk.hi_off,
                 risk.hi_ptr, risk.rechecked, risk._r_acct, risk._r_lo, risk._r_hi, risk.n_r, touched, n, risk.always,
                 risk._mark, risk._out)  # fmt: skip
        assert np.sort(risk._out[:m]).tolist() == want.tolist()
        assert risk.lo_ptr.tolist() == want_ptr[0].tolist() and risk.hi_ptr.tolist() == want_ptr[1].tolist()
        assert not risk._mark.any()
        risk._last_prices = cur
        risk._check(want)  # move the dense table on as detect would


def test_remember_keeps_boxes_and_the_always_list() -> None:
    """The compiled dense-table update: each rechecked account's row holds its box (none: no triggers), and the
    accounts checked every step are the old ones less those rechecked, plus those rechecked without a box."""
    ch, rng = market(5, 200)
    risk = ch.risk
    ch.breaching()
    n, dims = ch.accounts.n, risk.dims
    for _ in range(30):
        ids = np.unique(rng.integers(0, n, int(rng.integers(1, 40)))).astype(np.int64)
        lo = rng.integers(0, 10**6, (len(ids), dims)).astype(np.int64)
        hi = lo + rng.integers(1, 10**6, (len(ids), dims))
        no_box = rng.random(len(ids)) < 0.3
        before = set(risk.always.tolist())
        risk._remember(ids, lo, hi, no_box)
        want = sorted((before - set(ids.tolist())) | set(ids[no_box].tolist()))
        assert risk.always.tolist() == want
        rows = risk.row[ids]
        assert (rows >= 0).all() and (risk.r_acct[rows] == ids).all() and risk.rechecked[ids].all()
        assert (risk._r_lo[rows] == np.where(no_box[:, None], np.iinfo(np.int64).min, lo)).all()
        assert (risk._r_hi[rows] == np.where(no_box[:, None], np.iinfo(np.int64).max, hi)).all()
        assert len(set(risk.r_acct.tolist())) == risk.n_r
