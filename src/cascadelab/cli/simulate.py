"""Commands that run and check simulations: ``run``, ``check``, ``scenarios``, ``scenario show``, ``paper``."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

scenario_app = typer.Typer(help="Inspect scenarios.", no_args_is_help=True)
paper_app = typer.Typer(help="Reproduce published results.", no_args_is_help=True)


def register(app: typer.Typer, console: Any, fail: Any) -> None:
    """Add the simulation commands to ``app`` (``fail(message)`` prints one error line and exits 2)."""
    app.add_typer(scenario_app, name="scenario")
    app.add_typer(paper_app, name="paper")

    @app.command("run")
    def run_cmd(
        scenario: Annotated[
            str, typer.Argument(help="a built-in scenario (see `cascadelab scenarios`) or a TOML file")
        ] = "oct-11",
        seed: Annotated[int | None, typer.Option(help="the run's seed (overrides run.seed)")] = None,
        set_: Annotated[list[str] | None, typer.Option("--set", help="override any field: key.path=value (repeatable)")] = None,
        out: Annotated[str | None, typer.Option(help="run directory (default runs/<scenario>-<timestamp>/)")] = None,
        debug: Annotated[bool, typer.Option("--debug", help="check conservation exactly after every step")] = False,
        figures: Annotated[bool, typer.Option(help="draw the PNG figures")] = True,
    ) -> None:
        """Run a scenario, print its summary, write the run directory (tables, summary.json, figures).

        Exit status 0 on success, 1 if the ledger check failed, 2 on bad input or when the run
        directory cannot be written (checked before the run; one error line on stderr).
        """
        from cascadelab.runner import RunDirError, check_out_dir, run, write
        from cascadelab.scenario.load import ScenarioError, describe, load

        overrides = list(set_ or [])
        if debug:
            overrides.append("venue.debug=true")
        try:  # validate everything (the seed too) before anything runs
            s = load(scenario, overrides + ([f"run.seed={seed}"] if seed is not None else []))
        except ScenarioError as exc:
            fail(str(exc))
            return
        if out is not None and not out.strip():
            fail("--out: empty path; give the run directory to write (or leave --out out for runs/<scenario>-<timestamp>/)")
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path(out) if out is not None else Path("runs") / f"{s.name}-{stamp}"
        try:
            check_out_dir(folder)
        except RunDirError as exc:
            fail(f"--out {exc}")
        label = dt.datetime.fromisoformat(s.run.start_label.replace("Z", "+00:00"))
        started = False
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[clock]}"),
                      TimeElapsedColumn(), console=console, transient=False) as bar:  # fmt: skip
            task = bar.add_task(f"{s.name}", total=1.0, clock="building")

            shown = [-1]  # the last whole second of market time shown

            def progress(now_ns: int, end_ns: int) -> None:
                nonlocal started
                started = True
                if now_ns // 1_000_000_000 != shown[0]:  # once per second of market time, whatever the step
                    shown[0] = now_ns // 1_000_000_000
                    clock = (label + dt.timedelta(seconds=now_ns / 1e9)).strftime("%H:%M:%S UTC")
                    bar.update(task, completed=now_ns / end_ns, clock=f"market time {clock}")

            try:  # the overrides go through so that summary.json records every one of them
                result = run(s, seed=seed, overrides=overrides, progress=progress, figures=figures)
            except ScenarioError as exc:
                fail(str(exc))
                return
            except Exception as exc:  # a safety net: one line, never a traceback
                stage = "the run failed" if started else "could not build the scenario"
                fail(f"{describe(scenario)}: {stage}: {type(exc).__name__}: {exc}")
                return
            bar.update(task, completed=1.0)
        console.print(summary_table(result.summary))
        for note in result.summary.get("adjustments", []):
            console.print(f"[yellow]adjusted:[/] {escape(note)}")
        try:
            write(result, folder, figures)
        except RunDirError as exc:
            fail(f"{exc} (the run finished, its summary is printed above, but its run directory was not written)")
        console.print(f"run directory: {escape(str(folder))}  (event hash {result.summary['event_hash']})")
        if not result.summary["ledger_check"]["passed"]:
            console.print(f"[red]ledger check failed:[/] {escape(result.summary['ledger_check']['message'])}")
            raise typer.Exit(1)

    @app.command("check")
    def check_cmd(run_dir: Annotated[Path, typer.Argument(help="a run directory written by `cascadelab run`")]) -> None:
        """Compare a run with what the 10-11 October event looked like; exit 1 if any target fails, 2 on a bad run directory."""
        from cascadelab.record.summary import facts, targets

        summary, info, tables = _read_run_dir(run_dir, fail)
        try:
            h = facts(tables["steps"], tables["seconds"], tables["events"], info)
            h["liquidated_below_2x"] = summary["headline"].get("liquidated_below_2x", 0)
            h["info"] = info
            results = targets(h)
        except Exception as exc:
            fail(f"{run_dir}: summary.json and the tables do not belong together ({type(exc).__name__}: {exc})")
            return
        table = Table(title=f"check: {escape(str(summary.get('scenario', '?')))} (seed {summary.get('seed')})")
        for col in ("target", "value", "band", "result"):
            table.add_column(col)
        for t in results:
            table.add_row(escape(t.name), escape(t.value), escape(t.band), "[green]pass[/]" if t.passed else "[red]fail[/]")
        console.print(table)
        failed = sum(not t.passed for t in results)
        console.print(f"{len(results) - failed} of {len(results)} targets pass")
        raise typer.Exit(1 if failed else 0)

    @app.command("scenarios")
    def scenarios_cmd() -> None:
        """List the built-in scenarios."""
        from cascadelab.scenario.load import builtin_names, load

        table = Table(title="built-in scenarios")
        table.add_column("name")
        table.add_column("description")
        for name in builtin_names():
            table.add_row(name, escape(load(name).description))
        console.print(table)

    @scenario_app.command("show")
    def scenario_show(
        name: Annotated[str, typer.Argument(help="a built-in scenario or a TOML file")],
        set_: Annotated[list[str] | None, typer.Option("--set", help="override any field: key.path=value")] = None,
    ) -> None:
        """Print the full resolved scenario as TOML (every default written out) to copy and edit."""
        from cascadelab.scenario.load import ScenarioError, load, to_toml

        try:
            typer.echo(to_toml(load(name, list(set_ or []))), nl=False)
        except ScenarioError as exc:
            fail(str(exc))

    @paper_app.command("avellaneda-stoikov")
    def paper_as(
        gamma: Annotated[float, typer.Option(help="risk aversion (the paper: 0.01, 0.1, 0.5)")] = 0.1,
        paths: Annotated[int, typer.Option(help="simulated paths (the paper: 1000)")] = 1000,
        seed: Annotated[int | None, typer.Option(help="seed of the paths")] = None,
    ) -> None:
        """The Monte Carlo of Avellaneda & Stoikov (2008), section 4: inventory vs symmetric strategy.

        One line per strategy: name, mean profit, std of profit, mean final inventory, std of
        final inventory, average spread, then the standard errors of the mean profit and of
        the mean final inventory.
        """
        from cascadelab.agents.quoting import format_paper_lines, simulate_avellaneda_stoikov

        if not (math.isfinite(gamma) and 0 < gamma <= MAX_PAPER_GAMMA):
            fail(f"--gamma must be > 0 and <= {MAX_PAPER_GAMMA:g}, got {gamma}")
        if not 2 <= paths <= MAX_PAPER_PATHS:
            fail(f"--paths must be between 2 and {MAX_PAPER_PATHS:,} (the paths are held in memory), got {paths}")
        if seed is not None and not 0 <= seed < 2**63:
            fail(f"--seed must be >= 0 (and below 2**63), got {seed}")
        for line in format_paper_lines(simulate_avellaneda_stoikov(gamma, paths, seed)):
            typer.echo(line)


MAX_PAPER_PATHS = 1_000_000
"""Most Monte Carlo paths of ``cascadelab paper avellaneda-stoikov`` (a few arrays of this length in memory)."""
MAX_PAPER_GAMMA = 1_000.0

_INFO_TYPES: dict[str, tuple[type, ...]] = {
    "news_s": (int, float),
    "end_s": (int, float),
    "tracked": (str,),
    "token": (str,),
    "perps": (list,),
    "spots": (list,),
    "majors": (list,),
    "altcoins": (list,),
}


def _summary_problem(summary: object) -> str | None:
    """What makes ``summary`` unlike a run's summary.json (None if it looks right)."""
    if not isinstance(summary, dict):
        return f"expected a JSON object, got a JSON {type(summary).__name__}"
    h = summary.get("headline")
    if not isinstance(h, dict):
        return "'headline' must be an object" if "headline" in summary else "no 'headline'"
    info = h.get("info")
    if not isinstance(info, dict):
        return "'headline.info' must be an object"
    for key, types in _INFO_TYPES.items():
        v = info.get(key)
        if isinstance(v, bool) or not isinstance(v, types):
            return f"'headline.info.{key}' must be {'a number' if float in types else 'a ' + types[0].__name__}, got {v!r}"
        if isinstance(v, list) and not all(isinstance(x, str) for x in v):
            return f"'headline.info.{key}' must be a list of instrument symbols, got {v!r}"
        if isinstance(v, float) and not math.isfinite(v):
            return f"'headline.info.{key}' must be a finite number, got {v!r}"
    below = h.get("liquidated_below_2x", 0)
    if below is not None and (isinstance(below, bool) or not isinstance(below, int)):
        return f"'headline.liquidated_below_2x' must be an integer, got {below!r}"
    return None


def _read_run_dir(run_dir: Path, fail: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(summary, headline info, tables) of a run directory; ``fail`` (one line, exit 2) names the file that is wrong."""
    import polars as pl

    path = run_dir / "summary.json"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        fail(f"{run_dir}: not a readable run directory ({path}: {reason})")
    try:
        summary = json.loads(text)
    except ValueError as exc:
        fail(f"{path}: not valid JSON ({exc})")
    problem = _summary_problem(summary)
    if problem:
        fail(f"{path}: not the summary of a cascadelab run: {problem}")
    tables = {}
    for name in ("steps", "seconds", "events"):
        table = run_dir / f"{name}.parquet"
        try:
            tables[name] = pl.read_parquet(table)
        except Exception as exc:  # polars raises its own errors (ComputeError, ...) on a damaged file
            reason = " ".join(str(exc).split())[:200]
            fail(f"{table}: not a readable Parquet table ({type(exc).__name__}: {reason})")
    return summary, summary["headline"]["info"], tables


def summary_table(summary: dict[str, Any]) -> Table:
    """The headline of a run as a table."""
    h = summary["headline"]
    info = h["info"]
    t = Table(title=f"{summary['scenario']} (seed {summary['seed']}, {summary['accounts']:,} accounts)", show_header=False)
    liq = h["liquidations"]

    def money(x: float | None) -> str:
        return "n/a" if x is None else f"{x / 1e6:,.2f}M"

    for tier in ("book", "takeover", "adl"):
        t.add_row(f"liquidated by {tier}", f"long {money(liq[f'{tier}.long'])}, short {money(liq[f'{tier}.short'])} "
                  f"({liq[f'{tier}.long.count'] + liq[f'{tier}.short.count']:,} fills)")  # fmt: skip
    peak = h.get("peak_minute_s")
    if peak is not None:
        label = dt.datetime.fromisoformat(info["start_label"].replace("Z", "+00:00")) + dt.timedelta(seconds=peak)
        t.add_row("peak minute", f"{label:%H:%M} UTC: {money(h.get('peak_minute_notional'))}")
    trough = h.get("depth_trough_ratio")
    t.add_row(f"±1% depth trough ({info['tracked']})", "n/a" if trough is None else f"{100 * trough:.1f}% of the pre-news level")
    di, de = h["drawdown_internal"], h["drawdown_external"]
    for sym in info["perps"] + [info["token"]]:
        if sym in di:
            a, b = di[sym], de.get(sym)
            t.add_row(f"drawdown {sym}", f"internal {'n/a' if a is None else f'{100 * a:.1f}%'}, "
                      f"external {'n/a' if b is None else f'{100 * b:.1f}%'}")  # fmt: skip
    t.add_row("ADL", f"{h['adl_count']:,} closes, {money(h['adl_notional'])}")
    t.add_row("bad debt (socialized)", money(h["bad_debt"]))
    start, low, end = h["fund_start"], h["fund_min"], h["fund_end"]
    flows = f"paid out {money(h.get('fund_paid'))}, took in {money(h.get('fund_received'))}" if "fund_paid" in h else ""
    t.add_row("insurance fund", f"start {money(start)}, low {money(low)}, end {money(end)}" + (f"; {flows}" if flows else ""))
    t.add_row("accounts liquidated / bankrupt", f"{h['accounts_liquidated']:,} / {h['accounts_bankrupt']:,}")
    t.add_row("open interest", "n/a" if h.get("oi_drop") is None else f"down {100 * h['oi_drop']:.1f}% at its low")
    t.add_row("ledger check", "passed" if summary["ledger_check"]["passed"] else "FAILED")
    return t


__all__ = ["register", "summary_table"]
