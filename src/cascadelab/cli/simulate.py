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
        scenario: Annotated[str, typer.Argument(help="a built-in scenario (see `cascadelab scenarios`) or a TOML file")] = "oct-11",
        seed: Annotated[int | None, typer.Option(help="the run's seed (overrides run.seed)")] = None,
        set_: Annotated[list[str] | None, typer.Option("--set", help="override any field: key.path=value (repeatable)")] = None,
        out: Annotated[Path | None, typer.Option(help="run directory (default runs/<scenario>-<timestamp>/)")] = None,
        debug: Annotated[bool, typer.Option("--debug", help="check conservation exactly after every step")] = False,
        figures: Annotated[bool, typer.Option(help="draw the PNG figures")] = True,
    ) -> None:
        """Run a scenario, print its summary, write the run directory (tables, summary.json, figures)."""
        from cascadelab.runner import run
        from cascadelab.scenario.load import ScenarioError, load

        overrides = list(set_ or [])
        if debug:
            overrides.append("venue.debug=true")
        try:
            s = load(scenario, overrides)
        except ScenarioError as exc:
            fail(str(exc))
            return
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = out or Path("runs") / f"{s.name}-{stamp}"
        label = dt.datetime.fromisoformat(s.run.start_label.replace("Z", "+00:00"))
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[clock]}"),
                      TimeElapsedColumn(), console=console, transient=False) as bar:  # fmt: skip
            task = bar.add_task(f"{s.name}", total=1.0, clock="building")

            def progress(now_ns: int, end_ns: int) -> None:
                if now_ns % 1_000_000_000 == 0:  # once per second of market time
                    clock = (label + dt.timedelta(seconds=now_ns / 1e9)).strftime("%H:%M:%S UTC")
                    bar.update(task, completed=now_ns / end_ns, clock=f"market time {clock}")

            try:
                result = run(s, seed=seed, out=folder, progress=progress, figures=figures)
            except (ScenarioError, ValueError) as exc:
                fail(str(exc))
                return
            bar.update(task, completed=1.0)
        console.print(summary_table(result.summary))
        console.print(f"run directory: {escape(str(folder))}  (event hash {result.summary['event_hash']})")
        if not result.summary["ledger_check"]["passed"]:
            console.print(f"[red]ledger check failed:[/] {escape(result.summary['ledger_check']['message'])}")
            raise typer.Exit(1)

    @app.command("check")
    def check_cmd(run_dir: Annotated[Path, typer.Argument(help="a run directory written by `cascadelab run`")]) -> None:
        """Compare a run with what the 10-11 October event looked like; exit 1 if any target fails."""
        from cascadelab.record.summary import facts, targets

        tables = {}
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
            info = summary["headline"]["info"]
            import polars as pl

            for name in ("steps", "seconds", "events"):
                tables[name] = pl.read_parquet(run_dir / f"{name}.parquet")
        except (OSError, KeyError, ValueError) as exc:
            fail(f"{run_dir}: not a readable run directory ({exc})")
            return
        h = facts(tables["steps"], tables["seconds"], tables["events"], info)
        h["liquidated_below_2x"] = summary["headline"].get("liquidated_below_2x", 0)
        h["info"] = info
        table = Table(title=f"check: {escape(summary.get('scenario', '?'))} (seed {summary.get('seed')})")
        for col in ("target", "value", "band", "result"):
            table.add_column(col)
        results = targets(h)
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

        if not (math.isfinite(gamma) and gamma > 0):
            fail(f"--gamma must be > 0, got {gamma}")
        if paths < 2:
            fail(f"--paths must be >= 2, got {paths}")
        for line in format_paper_lines(simulate_avellaneda_stoikov(gamma, paths, seed)):
            typer.echo(line)


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
    t.add_row("insurance fund", f"start {money(start)}, low {money(low)}, end {money(end)} (used {money((start or 0) - (low or 0))})")
    t.add_row("accounts liquidated / bankrupt", f"{h['accounts_liquidated']:,} / {h['accounts_bankrupt']:,}")
    t.add_row("open interest", "n/a" if h.get("oi_drop") is None else f"down {100 * h['oi_drop']:.1f}% at its low")
    t.add_row("ledger check", "passed" if summary["ledger_check"]["passed"] else "FAILED")
    return t


__all__ = ["register", "summary_table"]
