"""The compiled batch path and the per-order Python reference venue must agree exactly.

Random request streams over perpetuals and spot pairs, many accounts, every reject an
integer request can produce; between chunks the marks move. After every chunk: the same
acks, fills, cancels, balances (trader and system), positions, cost bases, realized PnL,
isolated margins, reserved margins, open-order tallies, book queues and journal.
"""

from __future__ import annotations

import numpy as np
import pytest

from cascadelab.records import Reject
from cascadelab.venue.reference import ReferenceVenue
from cascadelab.venue.streams import MIDS, random_requests, stream_market
from cascadelab.venue.venue import Venue


def same_state(a: Venue, b: Venue, where: str) -> None:
    ca, cb = a.clearing, b.clearing
    n = ca.accounts.n
    np.testing.assert_array_equal(ca.ledger.balances[:, :n], cb.ledger.balances[:, :n], err_msg=f"balances {where}")
    for asset in ca.assets:
        assert ca.ledger.system_balances(asset) == cb.ledger.system_balances(asset), f"system balances {where}"
    for name in ("size", "cost", "realized", "iso_margin", "reserved", "state"):
        np.testing.assert_array_equal(ca.accounts.view(name), cb.accounts.view(name), err_msg=f"{name} {where}")
    for name, arr in a.orders._asdict().items():
        np.testing.assert_array_equal(arr, getattr(b.orders, name), err_msg=f"orders.{name} {where}")
    for x, y in zip(a.books, b.books, strict=True):
        assert x.queues() == y.queues(), f"books {where}"
    ja, jb = ca.ledger.journal_records(), cb.ledger.journal_records()
    assert len(ja) == len(jb) and (ja == jb).all(), f"journal {where}"


def run(n: int, seed: int, n_accounts: int, chunk: int) -> dict[int, int]:
    fast = stream_market(Venue, n_accounts, seed)
    ref = stream_market(ReferenceVenue, n_accounts, seed)
    reqs = random_requests(n, seed, n_accounts)
    rng = np.random.default_rng(seed + 1)
    reasons: dict[int, int] = {}
    for start in range(0, n, chunk):
        batch = reqs[start : start + chunk]
        got, want = fast.submit_batch(batch), ref.submit_batch(batch)
        assert (got.acks == want.acks).all(), f"acks differ in chunk at {start}"
        assert len(got.fills) == len(want.fills) and (got.fills == want.fills).all(), f"fills differ in chunk at {start}"
        assert len(got.cancels) == len(want.cancels) and (got.cancels == want.cancels).all(), f"cancels at {start}"
        for code, cnt in zip(*np.unique(got.acks["reason"], return_counts=True), strict=True):
            reasons[int(code)] = reasons.get(int(code), 0) + int(cnt)
        same_state(fast, ref, f"after request {start + len(batch)}")
        move = rng.integers(-30, 31, len(fast.clearing.perps)) * (MIDS[:3] // 1000)
        for v in (fast, ref):
            v.clearing.marks[:] = np.maximum(1, v.clearing.marks + move)
        fast.clearing.check(replay_journal=True)
    return reasons


def test_batch_path_matches_reference_on_100k_requests() -> None:
    reasons = run(100_000, seed=3, n_accounts=300, chunk=5_000)
    # only decimal wrappers can be off the grid; asset and LTV refusals belong to account requests
    reachable = set(Reject) - {Reject.OFF_TICK, Reject.OFF_LOT, Reject.UNKNOWN_ASSET, Reject.LTV_LIMIT}
    assert reachable <= set(reasons), f"reject codes never seen: {sorted(Reject(c).name for c in reachable - set(reasons))}"
    assert reasons[Reject.OK] > 25_000  # the stream is mostly valid orders (about 30% accepted)


@pytest.mark.parametrize("seed", [11, 12])
def test_small_batches_and_few_accounts(seed: int) -> None:
    run(8_000, seed=seed, n_accounts=12, chunk=37)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_batch_path_matches_reference_on_a_million_requests(seed: int) -> None:
    run(1_000_000, seed=100 + seed, n_accounts=5_000, chunk=50_000)
