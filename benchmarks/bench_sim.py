"""The replay: a population's decision pass, a market maker's requote, and whole ``oct-11`` runs.

Printed (never asserted), each beside its reference from the same run:

* one decision pass of a 1,000,000-account leveraged-trader population (array code), beside a
  single read of the same arrays (the memory floor of a pass that touches every account);
* one market maker's requote (its ladder of quotes), beside the venue's cost of entering them;
* ``oct-11`` with its default 100,000 accounts, 2 hours of market time at 100 ms steps, with the
  breakdown by phase (agents, books and order entry, prices, risk and liquidation, routing,
  recording), beside the 60 s target and the per-step budget it implies;
* ``oct-11`` with ``population.accounts=1000000`` in a child process: wall time and peak memory,
  beside the 10-minute and 8 GiB targets (skip with ``BENCH_SIM_1M=0``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cascadelab.agents.base import Observation
from cascadelab.records import ACCOUNT_ACK, ACK, CANCEL, FILL, LIQ_EVENT
from cascadelab.runner import run as run_scenario
from cascadelab.scenario.build import build
from cascadelab.scenario.load import load
from cascadelab.units import SECOND_NS

SMALL = ["loopers.accounts=200", "noise.accounts=200", "news_sellers.accounts=100", "run.duration_s=330"]


def _observation(sim: object, now: int) -> Observation:
    venue = sim.venue  # type: ignore[attr-defined]
    empty = [np.zeros(0, d) for d in (FILL, ACK, ACCOUNT_ACK, CANCEL, LIQ_EVENT)]
    return Observation(now, venue.market_data, sim.world.external, (), *empty)  # type: ignore[attr-defined]


def population_pass(accounts: int = 1_000_000, repeats: int = 5) -> None:
    """Time the population's decision pass on a built venue, after the news (prices moving)."""
    t0 = time.perf_counter()
    b = build(load("oct-11", [f"population.accounts={accounts}", *SMALL]))
    built = time.perf_counter() - t0
    sim = b.sim
    sim.run(int(320 * SECOND_NS))  # past the news: triggers armed, prices moving
    pop = b.groups["retail"][0]
    client = sim.clients[sim.agents.index(pop)]  # type: ignore[attr-defined]
    times = []
    for r in range(repeats):
        obs = _observation(sim, sim.now_ns + r)
        pop.schedule.next_ns = obs.now_ns  # due now
        t1 = time.perf_counter()
        reqs = pop.act(obs, client)
        times.append(time.perf_counter() - t1)
    arrays = [v for v in vars(pop).values() if isinstance(v, np.ndarray) and len(v) == accounts]
    t2 = time.perf_counter()
    for _ in range(repeats):
        for a in arrays:
            a.sum()
    floor = (time.perf_counter() - t2) / repeats
    med = float(np.median(times))
    print(
        f"population decision pass, {accounts:,} accounts: {med * 1e3:,.1f} ms (median of {repeats}; {len(reqs):,} requests) "
        f"| one read of its {len(arrays)} per-account arrays {floor * 1e3:,.1f} ms ({med / max(floor, 1e-9):,.1f}x) "
        f"| build of the whole scenario {built:,.1f} s"
    )


def maker_requote(repeats: int = 200) -> None:
    """Time one maker's requote (ladder of orders) and the venue's entry of those orders."""
    b = build(load("oct-11", ["population.accounts=5000", *SMALL]))
    sim = b.sim
    sim.run(int(60 * SECOND_NS))
    mm = next(m for m in b.groups["makers"] if m.p.symbol == "BTCUSDT")  # type: ignore[attr-defined]
    client = sim.clients[sim.agents.index(mm)]  # type: ignore[attr-defined]
    t_act, t_entry, n_orders = [], [], []
    for r in range(repeats):
        obs = _observation(sim, sim.now_ns + r)
        mm.has_quotes = False  # force a full requote
        t0 = time.perf_counter()
        reqs = mm.act(obs, client)
        t_act.append(time.perf_counter() - t0)
        o = reqs.orders.copy()
        o["ts"] = sim.now_ns + r
        t1 = time.perf_counter()
        b.venue.submit_batch(o)
        t_entry.append(time.perf_counter() - t1)
        n_orders.append(len(o))
    print(
        f"market maker requote (BTCUSDT): {np.median(t_act) * 1e6:,.0f} us for {int(np.median(n_orders))} orders "
        f"| the venue's entry of those orders {np.median(t_entry) * 1e6:,.0f} us"
    )


def host_reference(repeats: int = 5) -> float:
    """Seconds of a fixed interpreter-bound workload (the median of ``repeats``): how fast this shared host is right now.

    The simulation is mostly interpreter-bound work between compiled kernels, so its wall time moves with
    this figure; printing the run as a multiple of it lets runs taken at different times be compared.
    """
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        acc = 0
        for i in range(2_000_000):
            acc += i & 7
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def oct11(overrides: list[str] | None = None) -> dict[str, object]:
    """One whole run (no figures); prints wall time and the phase breakdown, beside the host's reference workload."""
    before = host_reference()
    t0 = time.perf_counter()
    res = run_scenario("oct-11", overrides=overrides or [], figures=False)
    whole = time.perf_counter() - t0
    ref = (before + host_reference()) / 2
    s = res.summary
    t = s["timing_s"]
    steps = int(s["steps"])
    total = float(t["run"])
    phases = t["phases"]
    share = ", ".join(f"{k} {v:,.1f} s ({100 * v / total:.0f}%)" for k, v in sorted(phases.items(), key=lambda x: -x[1]))
    print(
        f"oct-11, {s['accounts']:,} accounts, {s['market_time_s'] / 3600:.1f} h at {steps:,} steps: run {total:,.1f} s "
        f"(target <= 60 s: {total / 60:.2f}x the target) = {total / steps * 1e3:.2f} ms/step (budget {60e3 / steps:.2f} ms) "
        f"+ build {t['build']:,.1f} s; the whole call (build, run, tables, headline) {whole:,.1f} s"
    )
    print(f"  phases: {share}")
    risk = t.get("risk_phases", {})
    if risk:
        inner = ", ".join(f"{k} {v:,.1f} s" for k, v in sorted(risk.items(), key=lambda x: -x[1]))
        print(f"  inside risk+liquidation: {inner} (detect = the incremental scan of accounts whose marks may have crossed)")
    print(f"  host reference workload {ref * 1e3:,.1f} ms (before and after the run): the run is {total / ref:,.0f}x it")
    return s


def oct11_million() -> None:
    """The 1M-account run in a child process: wall time and peak memory (the child's own)."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        exe = str(Path(sys.executable).parent / "cascadelab")
        cmd = [exe, "run", "oct-11", "--set", "population.accounts=1000000", "--out", str(out), "--no-figures"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        if proc.returncode != 0:
            print(f"oct-11 at 1,000,000 accounts: failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
            return
        s = json.loads((out / "summary.json").read_text())
    print(
        f"oct-11, {s['accounts']:,} accounts, 2 h: {wall:,.0f} s wall (target <= 600 s), peak memory {peak_gib:,.2f} GiB "
        f"(target <= 8 GiB); run {s['timing_s']['run']:,.0f} s, build {s['timing_s']['build']:,.0f} s"
    )


def run() -> None:
    """Every figure of this file."""
    population_pass()
    maker_requote()
    oct11()
    if os.environ.get("BENCH_SIM_1M", "1") != "0":
        oct11_million()


if __name__ == "__main__":
    run()
