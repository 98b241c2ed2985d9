"""The ``cascadelab`` command line. Nothing imports this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


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
        console.print_json(json.dumps(report.__dict__ | {"messages_per_second": report.messages_per_second}))
    else:
        table = Table(title=f"LOBSTER replay: {message_csv.name}", show_header=False)
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
