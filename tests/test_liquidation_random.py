"""Random crashes under every profile and ADL ranking: the invariants after every step, and both engines identical.

Each seed draws a profile, a ranking and engine parameters (see ``crash_helpers``); the
same seeded path drives the per-account reference engine and the batched engine on two
identical venues. After every step: the invariants of ``check_invariants`` on the batched
run, and identical events, balances (trader and system), positions, cost bases, isolated
margins, debts, states, journals and fills in both runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from crash_helpers import check_invariants, make_run, step

STEPS = 25


def same(a, b, where: str) -> None:
    ca, cb = a.venue.clearing, b.venue.clearing
    n = ca.accounts.n
    np.testing.assert_array_equal(ca.ledger.balances[:, :n], cb.ledger.balances[:, :n], err_msg=f"balances {where}")
    for asset in ca.assets:
        assert ca.ledger.system_balances(asset) == cb.ledger.system_balances(asset), f"system balances {where}"
    for name in ("size", "cost", "realized", "iso_margin", "debt", "state", "reserved"):
        np.testing.assert_array_equal(ca.accounts.view(name), cb.accounts.view(name), err_msg=f"{name} {where}")
    ja, jb = ca.ledger.journal_records(), cb.ledger.journal_records()
    assert len(ja) == len(jb) and (ja == jb).all(), f"journal {where}"
    assert ca.lending.principal == cb.lending.principal, f"principal {where}"


def run_seed(seed: int, compare: bool = True) -> int:
    """Run one seed; returns how many liquidation events it produced."""
    batched = make_run(seed, "batched")
    reference = make_run(seed, "reference") if compare else None
    compliant: set[int] = set()
    n_events = 0
    for s in range(STEPS):
        marks = batched.venue.clearing.marks.copy()
        ev_b = step(batched)
        n_events += len(ev_b)
        compliant = check_invariants(batched, ev_b, batched.venue.clearing.marks.copy(), compliant)
        _ = marks
        if reference is not None:
            ev_r = step(reference)
            where = f"seed {seed}, step {s}"
            assert len(ev_b) == len(ev_r) and (ev_b == ev_r).all(), f"events differ at {where}:\n{ev_b}\n{ev_r}"
            same(batched, reference, where)
            fb, _ = batched.venue.drain()
            fr, _ = reference.venue.drain()
            assert len(fb) == len(fr) and (fb == fr).all(), f"fills differ at {where}"
    return n_events


@pytest.mark.parametrize("block", range(10))
def test_random_crashes_both_engines_agree_and_invariants_hold(block: int) -> None:
    events = [run_seed(seed) for seed in range(block * 20, block * 20 + 20)]
    assert sum(events) > 0


@pytest.mark.slow
@pytest.mark.parametrize("block", range(50))
def test_random_crashes_many_seeds(block: int) -> None:
    for seed in range(1_000 + block * 100, 1_000 + block * 100 + 100):
        run_seed(seed, compare=seed % 4 == 0)


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_compiled_adl_candidates_equal_the_per_account_figures(seed: int) -> None:
    """The batched engine's compiled ADL queues (holders and figures) equal the reference engine's per-account ones."""
    from cascadelab.liquidation.reference import ReferenceEngine

    run = make_run(seed, "batched")
    for _ in range(STEPS):
        step(run)
        for k in range(len(run.venue.clearing.perps)):
            for side in (1, -1):
                got = run.engine.candidate_arrays(k, side)
                want = ReferenceEngine.candidates(run.engine, k, side)  # type: ignore[arg-type]
                for name in ("account", "size", "entry_notional", "mark_notional", "pos_maint", "wallet", "acct_maint",
                             "acct_upnl"):  # fmt: skip
                    a, b = getattr(got, name), getattr(want, name)
                    assert a.dtype == np.int64 and a.tolist() == b.tolist(), f"seed {seed} k {k} side {side}: {name}"
