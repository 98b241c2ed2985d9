"""The benchmark markets are real: the crash of bench_liquidation at small scale, under both engines.

The benchmark prints how long the crash step takes; this test checks what the step does on
the same construction (a few hundred accounts): the fund runs dry, ADL closes profitable
shorts, both engines give identical events, balances and positions, and the books balance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import bench_liquidation
from cascadelab.records import Ev
from cascadelab.units import MONEY_SCALE


def test_crash_step_drains_the_fund_then_deleverages_identically_in_both_engines() -> None:
    out = {}
    for engine in ("batched", "reference"):
        venue, facts = bench_liquidation.crash_market(3_000, seed=5, engine=engine)
        _, events = bench_liquidation.crash_step(venue, facts["makers"])
        venue.close()
        ch = venue.clearing
        out[engine] = (events, ch.ledger.balances[:, : ch.accounts.n].copy(), ch.accounts.size[:, : ch.accounts.n].copy())
        assert (events["kind"] == Ev.LIQUIDATION_START).sum() == facts["hot"] > 0
        assert (events["kind"] == Ev.ADL_CLOSE).sum() > 0
        assert venue.risk.fund_balance(0) < 3_000 * MONEY_SCALE // 100  # seeded with 3,000 USDT, drained
        adl = events[events["kind"] == Ev.ADL_CLOSE]
        assert (ch.accounts.size[adl["instrument"], adl["account"]] <= 0).all()  # ADL took from shorts only
    a, b = out["batched"], out["reference"]
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])
    assert np.array_equal(a[2], b[2])
