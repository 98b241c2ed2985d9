"""Running a scenario end to end: build, step, record, check conservation, write the run directory.

``cascadelab.run("oct-11", seed=1, overrides={...})`` (re-exported at the package top) is
the notebook API; ``cascadelab run oct-11`` is the same from the command line. A run
directory holds ``summary.json`` (scenario, overrides, seed, code version, number of
accounts, headline metrics, the ledger check, the event hash), ``scenario.toml`` (the
resolved scenario), Parquet tables (``steps``, ``seconds``, ``fills``, ``cancels``,
``events``) and PNG figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cascadelab.record.recorder import Recorder
from cascadelab.record.summary import headline
from cascadelab.scenario.build import Built, build
from cascadelab.scenario.load import ScenarioError, load, to_toml, toml_inline, validate
from cascadelab.scenario.schema import Scenario
from cascadelab.units import SECOND_NS

TABLES = ("steps", "seconds", "fills", "cancels", "events")
FIGURES = ("depth.png", "heatmap.png", "prices.png", "liquidations.png", "fund_backlog.png", "collateral.png", "makers.png")
"""The figures a run directory may hold (``figures/``); a new run removes the old ones before drawing."""


class RunDirError(OSError):
    """The run directory cannot be written there; ``result`` holds the finished run when only the writing failed."""

    def __init__(self, message: str, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result

    def __str__(self) -> str:
        return str(self.args[0])


def check_out_dir(out: str | Path) -> Path:
    """``out`` as a Path if a run directory can be written there (checked before a run, nothing is created).

    It must be an existing writable directory, or a path whose nearest existing ancestor is
    a writable directory. Raises RunDirError naming the path otherwise.
    """
    if not isinstance(out, str | os.PathLike) or not str(out).strip():
        raise RunDirError(f"out: {out!r}: give the path of the run directory to write")
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise RunDirError(f"{path}: exists and is not a directory (the run directory is a directory of tables and figures)")
        if not os.access(path, os.W_OK | os.X_OK):
            raise RunDirError(f"{path}: the directory is not writable")
        _probe(path, f"{path}: cannot be written")
        return path
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise RunDirError(f"{path}: cannot be created: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"{path}: cannot be created: {parent} is not writable")
    _probe(parent, f"{path}: cannot be created in {parent}")
    return path


def _probe(folder: Path, what: str) -> None:
    """Create and remove a folder in ``folder``: permissions are not the whole story (read-only mounts, /proc)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".cascadelab-probe-", dir=folder))
    except OSError as exc:
        raise RunDirError(f"{what}: {exc.strerror or exc}") from None


@dataclass
class RunResult:
    """A finished run: its summary and its tables as Polars frames."""

    scenario: Scenario
    overrides: dict[str, Any]
    summary: dict[str, Any]
    frames: dict[str, pl.DataFrame] = field(repr=False)
    out_dir: Path | None = None
    built: Built | None = field(default=None, repr=False)

    @property
    def steps(self) -> pl.DataFrame:
        """Per-step metrics."""
        return self.frames["steps"]

    @property
    def seconds(self) -> pl.DataFrame:
        """Per-second metrics (open interest, makers, collateral prices, loopers)."""
        return self.frames["seconds"]

    @property
    def events(self) -> pl.DataFrame:
        """Liquidation and ADL events with account types."""
        return self.frames["events"]

    @property
    def fills(self) -> pl.DataFrame:
        """Every fill with both account types."""
        return self.frames["fills"]


def code_version() -> str:
    """cascadelab's version, with the git commit when the source is a checkout."""
    from cascadelab import __version__

    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True,
                               text=True, timeout=5)  # fmt: skip
        if commit.returncode == 0:
            return f"{__version__}+g{commit.stdout.strip()}{'.dirty' if dirty.stdout.strip() else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def run(
    scenario: str | Scenario = "oct-11",
    seed: int | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    figures: bool = True,
) -> RunResult:
    """Run a scenario (a built-in name, a TOML path, or a Scenario) and return its result.

    ``overrides`` are ``{"key.path": value}`` or ``["key.path=value", ...]``; ``seed``
    overrides ``run.seed``. With ``out`` the run directory is written there (tables,
    summary, figures); ``progress(now_ns, end_ns)`` is called after every step.

    Bad inputs raise before anything runs: a ScenarioError naming the key for the scenario
    and overrides, a RunDirError naming ``out`` when no run directory can be written there.
    If writing fails after the run, the RunDirError carries the finished run (``.result``).
    """
    if not isinstance(scenario, str | Scenario):
        raise TypeError(f"scenario: expected a built-in name, a file path or a Scenario, got {type(scenario).__name__}")
    ov: dict[str, Any] = {}  # what summary.json records: each key's value as given
    texts: list[str] = []  # the same as --set texts: Python values written as TOML, list items as given
    if isinstance(overrides, dict):
        for k, v in overrides.items():
            ov[k] = v
            texts.append(f"{k}={toml_inline(v, k)}")
    elif overrides:
        for o in overrides:
            if not isinstance(o, str) or "=" not in o:
                raise ScenarioError(f"overrides: {o!r}: expected key.path=value")
            k, _, v = o.partition("=")
            ov[k.strip()] = v.strip()
            texts.append(o)
    if seed is not None:
        ov["run.seed"] = seed
        texts.append(f"run.seed={toml_inline(seed, 'seed')}")
    if isinstance(scenario, Scenario):
        s = scenario if not texts else load_from(scenario, texts)
        name = s.name
    else:
        name = scenario
        s = load(scenario, texts)
    if out is not None:
        check_out_dir(out)
    t0 = time.perf_counter()
    b = build(s)
    build_s = time.perf_counter() - t0
    sim = b.sim
    end = int(s.run.duration_s * SECOND_NS)
    n_steps = max(0, (end - sim.now_ns) // sim.step_ns)
    ch = b.venue.clearing
    risk = b.venue.risk
    assert risk is not None  # a scenario's venue always has its liquidation engine
    rec = Recorder(
        n_steps, tuple(b.venue.market_data.symbols), b.venue.n_perps, tuple(ch.assets), b.groups["makers"], b.groups["loopers"],
        b.account_type, len(risk.fund_accounts), step_ns=sim.step_ns, external_assets=sim.world.external.assets,  # type: ignore[attr-defined]
        tracked=b.venue.index[s.check.tracked], news_ns=b.news_ns,
    )  # fmt: skip
    rec.tick = np.asarray(b.venue.market_data.tick, np.float64)
    rec.unit = b.venue.market_data.unit_notional.astype(np.float64) / 1e8
    sim.recorder = rec
    t1 = time.perf_counter()
    sim.run(end, None if progress is None else (lambda now: progress(now, end)))
    run_s = time.perf_counter() - t1
    try:
        b.venue.close()
        check = {"passed": True, "message": "conservation holds exactly; open interest balanced; pools and debts reconcile"}
    except Exception as exc:
        check = {"passed": False, "message": str(exc)}
    frames = rec.frames()
    b.liquidated_low_leverage = rec.liquidated_below(2.0)
    summary = {
        "scenario": name,
        "overrides": {k: _json_value(v) for k, v in ov.items()},
        "seed": s.run.seed,
        "code_version": code_version(),
        "accounts": int(ch.accounts.n),
        "steps": int(rec.step),  # the recorded steps (the rows of steps.parquet), after the pre-open's
        "pre_open_steps": int(sim.steps) - int(rec.step),
        "market_time_s": sim.now_ns / SECOND_NS,  # where the run ended: the last whole step within duration_s
        "event_hash": sim.event_hash,
        "adjustments": list(b.adjustments),
        "ledger_check": check,
        "headline": headline(frames, s, b),
        "timing_s": {
            "build": round(build_s, 3),
            "run": round(run_s, 3),
            "phases": {k: round(v, 3) for k, v in sim.clock.seconds().items()},
            # inside "venue: risk+liquidation": detect (the incremental scan), the tiers, takeovers and ADL, unwinding
            "risk_phases": {k: round(v, 3) for k, v in risk.clock.seconds().items()},  # type: ignore[attr-defined]
        },
    }
    result = RunResult(s, ov, summary, frames, None, b)
    if out is not None:
        write(result, Path(out), figures)
    return result


def load_from(s: Scenario, overrides: dict[str, Any] | list[str]) -> Scenario:
    """A Scenario object with overrides applied (through its TOML form, so validation is the same)."""
    raw = tomllib.loads(to_toml(s))
    return validate(raw, f"scenario {s.name!r}", overrides)


def _json_value(v: Any) -> Any:
    """An override's value as JSON can hold it (tables and lists kept as such, anything else as text)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json_value(x) for x in v]
    return str(v)


def _remove_old_figures(out: Path) -> None:
    """Remove the figures an earlier run wrote into ``out/figures`` (only the tool's own files), and the folder if empty."""
    folder = out / "figures"
    if not folder.is_dir():
        return
    names = set(FIGURES)
    try:  # the earlier run's summary lists the figures it drew
        old = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        listed = old.get("figures", []) if isinstance(old, dict) else []
        names |= {n for n in listed if isinstance(n, str) and n.endswith(".png") and Path(n).name == n}
    except (OSError, ValueError):
        pass
    for name in names:
        f = folder / name
        if f.is_file() or f.is_symlink():
            f.unlink()
    with contextlib.suppress(OSError):  # other files are there: not ours to remove
        folder.rmdir()


def write(result: RunResult, out: Path, figures: bool = True) -> Path:
    """Write the run directory: tables, summary, resolved scenario, figures (the old figures removed first).

    Raises RunDirError naming ``out`` (with ``.result`` set) if anything cannot be written.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _remove_old_figures(out)
        for name in TABLES:
            result.frames[name].write_parquet(out / f"{name}.parquet")
        (out / "scenario.toml").write_text(to_toml(result.scenario), encoding="utf-8")
        result.summary.pop("figures", None)
        if figures:
            from cascadelab.report.figures import draw_all

            result.summary["figures"] = [str(p.name) for p in draw_all(result, out / "figures")]
        (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str), encoding="utf-8")
    except Exception as exc:
        raise RunDirError(f"{out}: could not write the run directory: {type(exc).__name__}: {exc}", result) from exc
    result.out_dir = out
    return out


__all__ = ["FIGURES", "TABLES", "RunDirError", "RunResult", "check_out_dir", "code_version", "run", "write"]
