"""The ``cascadelab`` command line. Nothing imports this module."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="cascadelab: a simulator of crypto derivatives exchanges under stress.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
replay_app = typer.Typer(help="Replay recorded market data through the cascadelab order book.", no_args_is_help=True)
app.add_typer(replay_app, name="replay")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from cascadelab import __version__

        console.print(f"cascadelab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """cascadelab: a simulator of crypto derivatives exchanges under stress."""


def _fail(message: str, code: int = 2) -> None:
    """Print ``error: <message>`` as one line on stderr (file contents are never read as markup) and exit."""
    err.print(f"[bold red]error:[/] {escape(' '.join(message.splitlines()))}", highlight=False)
    raise typer.Exit(code)


def _json_safe(x: object) -> object:
    """Plain JSON values: non-finite floats become ``null``, numpy scalars Python numbers, tuples lists."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def _print_json(data: object) -> None:
    """Strict JSON on stdout: never ``NaN`` or ``Infinity`` (they are written as ``null``)."""
    typer.echo(json.dumps(_json_safe(data), indent=2, allow_nan=False))


@replay_app.command("lobster")
def replay_lobster(
    message_csv: Annotated[Path, typer.Argument(help="LOBSTER message file (header row optional)")],
    orderbook_csv: Annotated[Path, typer.Argument(help="LOBSTER orderbook file matching the message file")],
    mismatches: Annotated[int, typer.Option(help="how many first mismatches to print")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Rebuild the book from LOBSTER messages and compare it with every orderbook row.

    Exit status 0 when every compared row matched, 1 when some did not, 2 on bad input.
    """
    from cascadelab.io.lobster import LobsterError, replay

    try:
        report = replay(message_csv, orderbook_csv, max_mismatches=mismatches)
    except LobsterError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(report.__dict__ | {"messages_per_second": report.messages_per_second})
    else:
        table = Table(title=f"LOBSTER replay: {escape(message_csv.name)}", show_header=False)
        table.add_row("levels per side", f"{report.levels}")
        table.add_row("messages", f"{report.messages:,}")
        table.add_row("rows compared", f"{report.rows_compared:,}")
        table.add_row("rows matched", f"{report.rows_matched:,}")
        table.add_row("messages naming unseen orders", f"{report.unseen_order_messages:,}")
        table.add_row("stale levels dropped", f"{report.stale_levels_dropped:,}")
        table.add_row("replay time", f"{report.seconds:.3f} s ({report.messages_per_second:,.0f} messages/s)")
        console.print(table)
        for m in report.first_mismatches:
            console.print(f"[yellow]mismatch after line {m['line']}[/] message {m['message']}")
            console.print(f"  expected {m['expected']}")
            console.print(f"  got      {m['got']}")
        verdict = "[green]every row matched[/]" if report.all_matched else "[red]some rows did not match[/]"
        console.print(verdict)
    raise typer.Exit(0 if report.all_matched else 1)


@app.command("adl-rank")
def adl_rank(
    positions_csv: Annotated[Path, typer.Argument(help="positions file (columns documented in cascadelab.io.positions)")],
    venue: Annotated[str, typer.Option(help="binance, bybit, okx, hyperliquid, bitmex, or 'all'")] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Score each position for auto-deleveraging under a venue's rule: score, rank, quantile 0-4, lights 1-5.

    Exit status 0 on success, 2 on bad input (one line on stderr naming file, row and column).
    A position whose account has no positive equity is being liquidated itself: it is ranked
    last and its score is shown as "liquidating" (null with --json).
    """
    from cascadelab.cli.adl_rank import rank_positions
    from cascadelab.io.positions import PositionFileError, read_positions
    from cascadelab.venue.profiles import PROFILES

    venues = sorted(PROFILES) if venue.lower() == "all" else [venue.lower()]
    unknown = [v for v in venues if v not in PROFILES]
    if unknown:
        _fail(f"--venue: unknown venue {unknown[0]!r}; allowed: {sorted(PROFILES)} or 'all'")
    try:
        positions = read_positions(positions_csv)
    except PositionFileError as exc:
        _fail(str(exc))
    rows = [r for v in venues for r in rank_positions(positions, v)]
    if as_json:
        _print_json([dataclasses.asdict(r) for r in rows])
        return
    for v in venues:
        mine = [r for r in rows if r.venue == v]
        table = Table(title=f"ADL ranking under {v} ({mine[0].ranking} rule)")
        for col in ("row", "account", "symbol", "side", "score", "rank", "quantile", "lights"):
            table.add_column(col, justify="right" if col in ("row", "score", "rank", "quantile") else "left")
        for r in mine:
            table.add_row(
                str(r.row),
                escape(r.account),  # labels from the file are text, not rich markup
                escape(r.symbol),
                r.side,
                "liquidating" if r.score is None else f"{r.score:.6g}",
                f"{r.rank}/{r.of}",
                str(r.quantile),
                "●" * r.lights + "○" * (5 - r.lights),
            )
        console.print(table)


def _register_simulation() -> None:
    from cascadelab.cli.simulate import register

    register(app, console, _fail)


_register_simulation()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
