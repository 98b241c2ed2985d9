"""Orders through the whole venue: validation, matching, settlement, journal, open-order bookkeeping.

A seeded stream of 1,000,000 requests (``cascadelab.venue.streams``: limits of every time in
force, market orders, cancels, cancel-alls, reduce-only orders and malformed requests) over
100,000 accounts, three perpetuals and two spot pairs, with the journal kept. Printed beside
it, from the same run and the same stream: the per-order Python reference venue and the
one-row wrapper (``Venue.submit``-style calls), and the cost of each kind of request.
Prints, never asserts.
"""

from __future__ import annotations

import time

import numpy as np

from cascadelab.records import Op
from cascadelab.venue.reference import ReferenceVenue
from cascadelab.venue.streams import random_requests, stream_market
from cascadelab.venue.venue import Venue


def _rate(venue: Venue, reqs: np.ndarray) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = venue.submit_batch(reqs)
    return len(reqs) / (time.perf_counter() - t0), out


def run(n_requests: int = 1_000_000, n_accounts: int = 100_000, prefix: int = 20_000, seed: int = 1) -> dict[str, float]:
    """Time the batch path on the whole stream and every path on its first ``prefix`` requests."""
    reqs = random_requests(n_requests, seed, n_accounts)
    warm = stream_market(Venue, 1_000, seed)
    warm.submit_batch(random_requests(2_000, seed, 1_000))  # load compiled code
    fast = stream_market(Venue, n_accounts, seed)
    rate, out = _rate(fast, reqs)
    ok = int((out.acks["reason"] == 0).sum())
    journal = len(fast.clearing.ledger.journal_records())
    print(
        f"venue: {n_requests:,} requests over {n_accounts:,} accounts -> {rate:,.0f} orders/s through the batch path "
        f"({ok:,} accepted, {len(out.fills):,} fills, {len(out.cancels):,} cancels, {journal:,} journal records)"
    )
    head = reqs[:prefix]
    fast_head, _ = _rate(stream_market(Venue, n_accounts, seed), head)
    ref_head, _ = _rate(stream_market(ReferenceVenue, n_accounts, seed), head)
    one = stream_market(Venue, n_accounts, seed)
    t0 = time.perf_counter()
    for j in range(prefix):
        one.submit_batch(head[j : j + 1])
    one_rate = prefix / (time.perf_counter() - t0)
    print(
        f"venue, first {prefix:,} requests: batch path {fast_head:,.0f}/s; per-order Python reference {ref_head:,.0f}/s "
        f"({fast_head / ref_head:,.0f}x slower); one-row calls {one_rate:,.0f}/s ({fast_head / one_rate:,.0f}x slower)"
    )
    # cost of each kind of request, on the book the whole stream left behind
    later = random_requests(200_000, seed + 1, n_accounts, first_ts=int(reqs["ts"][-1]) + 1)
    parts = []
    for label, mask in (
        ("limit", later["kind"] == Op.LIMIT),
        ("market", later["kind"] == Op.MARKET),
        ("cancel", later["kind"] == Op.CANCEL),
    ):
        sub = later[mask]
        r, _ = _rate(fast, sub)
        parts.append(f"{label} {1e6 / r:.2f} us")
    rejected = later[:50_000].copy()
    rejected["account"] = -1
    r, _ = _rate(fast, rejected)
    parts.append(f"refused at the door {1e6 / r:.2f} us")
    print("venue: cost per request by kind: " + ", ".join(parts))
    return {"orders_per_s": rate, "reference_per_s": ref_head}


if __name__ == "__main__":
    run()
