"""The ``cascadelab adl-rank`` tool: hand-checked scores, all venues, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascadelab.cli import app
from cascadelab.liquidation.adl_tool import PositionFileError, rank_positions, read_positions

DATA = Path(__file__).parent / "data" / "positions.csv"
HEADER = "account,symbol,side,size,entry_price,mark_price,wallet_balance\n"


def test_binance_scores_by_hand() -> None:
    rows = {r["account"]: r for r in rank_positions(read_positions(DATA), "binance")}
    # alice: short 2 BTC 100,000 -> 90,000: uPnL 20,000, wallet 15,000 -> PnL% 4/3;
    # MM at 180,000 notional (tier 0.5%, cum 50) = 850; ratio 850 / 35,000
    assert rows["alice"]["score"] == pytest.approx((20_000 / 15_000) * (850 / 35_000), rel=1e-12)
    assert (rows["alice"]["rank"], rows["alice"]["quantile"], rows["alice"]["lights"]) == (1, 4, 5)
    assert rows["carol"]["score"] == 0 and rows["carol"]["rank"] == 3  # losing short: never first
    assert rows["dave"]["of"] == 1  # alone on its side


def test_all_venues_on_the_command_line() -> None:
    r = CliRunner().invoke(app, ["adl-rank", str(DATA), "--venue", "all", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {x["venue"] for x in rows} == {"binance", "bybit", "okx", "hyperliquid", "bitmex"}
    assert all(0 <= x["quantile"] <= 4 and x["lights"] == x["quantile"] + 1 for x in rows)
    table = CliRunner().invoke(app, ["adl-rank", str(DATA), "--venue", "hyperliquid"])
    assert table.exit_code == 0 and "hyperliquid" in table.output and "alice" in table.output


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (HEADER + "a,BTCUSDT,sideways,1,1,1,1\n", "row 2, column 'side'"),
        (HEADER + "a,BTCUSDT,long,1,1,1,1\nb,BTCUSDT,long,-3,1,1,1\n", "row 3, column 'size'"),
        (HEADER + "a,BTCUSDT,long,1,abc,1,1\n", "row 2, column 'entry_price': 'abc' is not a number"),
        ("account,symbol,side,size\na,BTCUSDT,long,1\n", "missing column"),
        (HEADER.strip() + ",colour\na,BTCUSDT,long,1,1,1,1,red\n", "unknown column"),
        (HEADER, "no positions"),
    ],
)
def test_bad_files_name_row_and_column(tmp_path: Path, body: str, needle: str) -> None:
    p = tmp_path / "p.csv"
    p.write_text(body)
    with pytest.raises(PositionFileError, match=needle):
        read_positions(p)
    r = CliRunner().invoke(app, ["adl-rank", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_unknown_venue_is_refused() -> None:
    r = CliRunner().invoke(app, ["adl-rank", str(DATA), "--venue", "ftx"])
    assert r.exit_code == 2 and "unknown venue" in r.output
