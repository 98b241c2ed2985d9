"""Whole runs: determinism, conservation in debug mode, the run directory, the check command.

The fast tests use a small oct-11 (a few thousand accounts, minutes of market time, the news
moved early); the slow ones run the built-ins as shipped and check them against the event.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cascadelab.cli import app
from cascadelab.runner import run

SMALL = [
    "population.accounts=1500",
    "loopers.accounts=30",
    "noise.accounts=60",
    "news_sellers.accounts=30",
    "funds.0.count=2",
    "world.news.0.at_s=40.0",
    "world.reference_s=40.0",
]


def test_same_seed_same_hash_other_seed_other_hash() -> None:
    ov = [*SMALL, "run.duration_s=90.0"]
    a = run("oct-11", seed=5, overrides=ov, figures=False)
    b = run("oct-11", seed=5, overrides=ov, figures=False)
    c = run("oct-11", seed=6, overrides=ov, figures=False)
    assert a.summary["event_hash"] == b.summary["event_hash"]
    assert a.summary["event_hash"] != c.summary["event_hash"]
    assert a.steps.equals(b.steps)


def test_a_short_oct11_in_debug_mode_conserves_every_step(tmp_path: Path) -> None:
    res = run("oct-11", seed=1, overrides=[*SMALL, "run.duration_s=120.0", "venue.debug=true"], out=tmp_path / "run")
    assert res.summary["ledger_check"]["passed"]
    out = tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("scenario", "overrides", "seed", "code_version", "accounts", "headline", "ledger_check", "event_hash"):
        assert key in summary
    assert summary["accounts"] > 1500 and summary["overrides"]["venue.debug"] == "true"
    for name in ("steps", "seconds", "fills", "cancels", "events"):
        assert (out / f"{name}.parquet").exists()
    steps = pl.read_parquet(out / "steps.parquet")
    assert len(steps) == 1200 - 30 and "SOLUSDT.depth_bid_1pct" in steps.columns  # 100 ms steps after the pre-open
    assert {p.name for p in (out / "figures").iterdir()} >= {"depth.png", "heatmap.png", "prices.png", "liquidations.png",
                                                             "fund_backlog.png", "collateral.png", "makers.png"}  # fmt: skip
    fills = pl.read_parquet(out / "fills.parquet")
    assert {"maker_account_type", "taker_account_type"} <= set(fills.columns)
    # the open interest kept from the fills equals a full recount of the positions at the end
    ch = res.built.venue.clearing  # type: ignore[union-attr]
    size = ch.accounts.size[:, : ch.accounts.n]
    long_lots = (size * (size > 0)).sum(axis=1)
    rec = res.built.sim.recorder  # type: ignore[union-attr]
    assert rec._oi.tolist() == long_lots.tolist()
    # every collateral asset with a spot book has its book and outside prices recorded (tokens, altcoins)
    seconds = pl.read_parquet(out / "seconds.parquet")
    for code in ("USDe", "wBETH", "BNSOL", "ALT1", "ALT2", "BTC"):
        ext = seconds[f"{code}.price_external"].drop_nans().drop_nulls()
        assert len(ext) == len(seconds), code
    for code in ("USDe", "wBETH", "BNSOL", "ALT1", "ALT2"):
        assert seconds[f"{code}.price_book"].drop_nans().drop_nulls().len() > 0.9 * len(seconds), code
    r = CliRunner().invoke(app, ["check", str(out)])
    assert r.exit_code == 1 and "targets pass" in r.stdout  # two minutes of market cannot look like the crash


def test_cli_errors_are_one_line() -> None:
    r = CliRunner().invoke(app, ["run", "oct-11", "--set", "venue.profile=nowhere"])
    assert r.exit_code == 2 and "venue.profile: must be one of" in r.stderr
    r = CliRunner().invoke(app, ["check", "/nonexistent"])
    assert r.exit_code == 2 and "not a readable run directory" in r.stderr


@pytest.mark.slow
def test_oct11_passes_every_target(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["run", "oct-11", "--out", str(tmp_path / "oct"), "--no-figures"])
    assert r.exit_code == 0, r.stdout
    r = runner.invoke(app, ["check", str(tmp_path / "oct")])
    assert r.exit_code == 0, r.stdout


@pytest.mark.slow
def test_calm_fails_every_crash_target(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["run", "calm", "--out", str(tmp_path / "calm"), "--no-figures"])
    assert r.exit_code == 0, r.stdout
    r = runner.invoke(app, ["check", str(tmp_path / "calm")])
    assert r.exit_code == 1 and "0 of 13 targets pass" in r.stdout, r.stdout


def test_build_refuses_a_fund_born_in_liquidation_and_reports_what_it_adjusted() -> None:
    """A fund whose margin cannot carry its legs is an error naming the key; capped leverage is reported, not silent."""
    ov = [*SMALL, "run.duration_s=4.0"]
    with pytest.raises(ValueError, match=r"funds\.0\.margin: its positions need .* maintenance margin"):
        run("oct-11", seed=1, overrides=[*ov, "funds.0.margin=100000"], figures=False)
    res = run("oct-11", seed=1, overrides=ov, figures=False)
    notes = res.summary["adjustments"]
    assert any(n.startswith("funds.0.leverage: 20x is above what ALT1USDT's margin tiers allow") for n in notes)
    assert any(n.startswith("arbitrageurs.0.leverage:") for n in notes)
    assert not any(n.startswith("makers.") and ".capital:" in n for n in notes), notes  # oct-11's makers are margined
    thin = run("oct-11", seed=1, overrides=[*ov, "makers.2.capital=1000000"], figures=False)
    assert any(n.startswith("makers.2.capital: 1,000,000 does not margin") for n in thin.summary["adjustments"])
    # what the build booked is part of the event hash: pre-built loops change it even before any step differs
    other = run("oct-11", seed=1, overrides=[*ov, "loopers.prebuilt_loops=[1, 2]"], figures=False)
    assert other.summary["event_hash"] != res.summary["event_hash"]


@pytest.mark.parametrize("seed", [3, 11])
def test_maker_and_feed_invariants_on_random_runs(seed: int) -> None:
    """On random short crashes: withdrawals last at least min_withdrawn_s; LIQUIDITY exits come only from a maker already on
    the defensive; a maker over its inventory limit rests nothing on the side that adds to it; the feed's running volume
    is exactly the sum of the fills."""
    from cascadelab.agents.market_maker import MakerState, MarketMaker, Trigger

    res = run("oct-11", seed=seed, overrides=[*SMALL, "run.duration_s=1500.0"], figures=False)
    b = res.built
    venue = b.venue  # type: ignore[union-attr]
    makers = [a for a in b.sim.agents if isinstance(a, MarketMaker)]  # type: ignore[union-attr]
    end = b.sim.now_ns  # type: ignore[union-attr]
    exits = 0
    for mm in makers:
        before = MakerState.QUOTING
        out_at = None
        for ns, state, why, _ in mm.transitions:
            if state == MakerState.WITHDRAWN:
                exits += 1
                out_at = ns
                if why == Trigger.LIQUIDITY:
                    assert before != MakerState.QUOTING, mm.name
            elif out_at is not None:
                assert ns - out_at >= mm.p.min_withdrawn_s * 1e9, (mm.name, ns, out_at)
                out_at = None
            before = MakerState(state)
        fair = mm.quoted_fair
        if mm.has_quotes and abs(mm.inventory) * fair >= mm.p.inventory_limit:
            book = venue.books[mm.instrument]
            sides = {book.order(i).side for i in book.open_orders(int(mm.accounts[0])) if book.order(i) is not None}
            adding = 1 if mm.inventory > 0 else -1
            assert adding not in sides, mm.name
        # on the venue it carries at most its inventory limit plus its outside limit: past that, nothing adds to it
        capacity = mm.p.inventory_limit + mm.p.outside_hedge_limit
        if mm.has_quotes and abs(mm.venue_inventory) * fair >= capacity:
            book = venue.books[mm.instrument]
            sides = {book.order(i).side for i in book.open_orders(int(mm.accounts[0])) if book.order(i) is not None}
            assert (1 if mm.venue_inventory > 0 else -1) not in sides, mm.name
        # what it holds outside stays within its outside limit (valued when it last hedged; prices move ~ a few %)
        px = float(b.sim.world.external.reference[mm.instrument])  # type: ignore[union-attr]
        assert abs(mm.outside_position) * px <= 1.5 * mm.p.outside_hedge_limit + 1e-9, mm.name
        assert mm.p.outside_hedge_limit == 0 or np.isclose(mm.inventory, mm.venue_inventory + mm.outside_position)
    assert exits > 0 and end > 0  # the crash made some maker leave: the checks above saw something
    fills = np.concatenate(venue.fill_log) if venue.fill_log else np.zeros(0)
    unit = venue.market_data.unit_notional
    expect = np.zeros(len(unit), np.int64)
    np.add.at(expect, fills["instrument"].astype(np.int64), fills["price"].astype(np.int64) * fills["qty"])
    assert np.array_equal(venue.market_data.volume, expect * unit)


def test_a_run_directory_that_cannot_be_made_and_a_none_override_are_refused_before_the_run(tmp_path: Path) -> None:
    """helper-2's findings: /proc passes a permission test but cannot hold a folder; None is no override value."""
    import os

    from cascadelab.runner import RunDirError, check_out_dir
    from cascadelab.scenario.load import ScenarioError

    if os.path.isdir("/proc"):
        with pytest.raises(RunDirError, match="cannot be created in /proc"):
            check_out_dir("/proc/nope")
    assert check_out_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists() and not list(tmp_path.iterdir())  # the probe leaves nothing behind
    with pytest.raises(ScenarioError, match=r"makers\.0\.gamma: None is not a value"):
        run("oct-11", overrides={"makers.0.gamma": None}, figures=False)


@pytest.mark.parametrize("step_ms", [100, 250, 333, 1000])
def test_the_per_second_table_has_one_row_per_second_of_market_time_whatever_the_step(step_ms: int) -> None:
    res = run("oct-11", seed=2, overrides=[*SMALL, "run.duration_s=60.0", f"run.step_ms={step_ms}"], figures=False)
    t = res.seconds["t_s"].to_numpy()
    second = res.seconds["second"].to_numpy()
    steps = res.steps["t_s"].to_numpy()
    # every whole second from the first recorded step to the last, read at the first step ending at or after it
    expected = np.arange(math.ceil(steps[0] - 1e-9), math.floor(steps[-1] + 1e-9) + 1)
    assert second.tolist() == expected.tolist()
    assert t.tolist() == [float(steps[steps >= s - 1e-9][0]) for s in expected]
    summary = res.summary
    assert summary["steps"] == len(steps) and summary["market_time_s"] == pytest.approx(steps[-1])


def test_api_overrides_take_tables_and_lists_as_python_values(tmp_path: Path) -> None:
    outage = [{"start_s": 1.0, "end_s": 5.0, "groups": ["makers"], "mode": "reject"}]
    small = {k: tomllib.loads(f"v = {v}")["v"] for k, v in (o.split("=", 1) for o in SMALL)}  # Python values
    ov = {**small, "run.duration_s": 50.0, "world.outages": outage}
    a = run("oct-11", seed=4, overrides=ov, figures=False, out=tmp_path / "a")
    text = '[{start_s = 1.0, end_s = 5.0, groups = ["makers"], mode = "reject"}]'
    b = run("oct-11", seed=4, overrides=[*SMALL, "run.duration_s=50.0", f"world.outages={text}"], figures=False)
    assert a.summary["event_hash"] == b.summary["event_hash"]
    assert a.scenario.world.outages[0].groups == ["makers"]  # type: ignore[attr-defined]
    saved = json.loads((tmp_path / "a" / "summary.json").read_text())["overrides"]
    assert saved["world.outages"] == outage  # kept as JSON structures, not Python text
    symbols = {"BTCUSDT": 0.4, "ETHUSDT": 0.2, "SOLUSDT": 0.15, "DOGEUSDT": 0.13, "ALT1USDT": 0.07, "ALT2USDT": 0.05}
    c = run("oct-11", seed=4, overrides={**ov, "world.outages": [], "population.symbols": symbols}, figures=False)
    assert c.scenario.population.symbols["BTCUSDT"] == 0.4  # type: ignore[attr-defined]


def test_api_override_values_are_python_values_and_bad_ones_name_their_key() -> None:
    from cascadelab.scenario.load import ScenarioError, load

    s = load("oct-11", {"run.start_label": "2025-10-11T00:00:00Z", "world.news.0.name": "2025", "run.seed": np.int64(3)})
    assert s.run.start_label == "2025-10-11T00:00:00Z" and s.world.news[0].name == "2025" and s.run.seed == 3
    with pytest.raises(ScenarioError, match=r"world\.outages\.0\.end_s: None is not a value"):
        run("oct-11", overrides={"world.outages": [{"start_s": 1.0, "end_s": None, "groups": ["makers"]}]}, figures=False)
    with pytest.raises(ScenarioError, match=r"makers\.0\.gamma: None"):
        run("oct-11", overrides={"makers.0": {"gamma": None}}, figures=False)
    with pytest.raises(ScenarioError, match=r"run\.seed: .* is not a TOML value"):
        load("oct-11", {"run.seed": object()})


def test_the_fund_and_backlog_columns_hold_their_values_from_the_first_recorded_step() -> None:
    res = run("oct-11", seed=1, overrides=[*SMALL, "run.duration_s=20.0"], figures=False)
    fund = res.steps["fund.0"].to_numpy()
    assert fund[0] > 0 and (fund == fund[0]).all()  # nothing moves the fund before the news
    assert res.summary["headline"]["fund_start"] == fund[0]
