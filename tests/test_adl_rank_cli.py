"""The ``cascadelab adl-rank`` tool: hand-checked scores, all venues, and clear errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascadelab.cli import app
from cascadelab.cli.adl_rank import RankedPosition, rank_positions
from cascadelab.io.positions import PositionFileError, read_positions

DATA = Path(__file__).parent / "data" / "positions.csv"
HEADER = "account,symbol,side,size,entry_price,mark_price,wallet_balance\n"


def test_binance_scores_by_hand() -> None:
    rows = {r.account: r for r in rank_positions(read_positions(DATA), "binance")}
    assert all(isinstance(r, RankedPosition) for r in rows.values())
    # alice: short 2 BTC 100,000 -> 90,000: uPnL 20,000, wallet 15,000 -> PnL% 4/3;
    # MM at 180,000 notional (tier 0.5%, cum 50) = 850; ratio 850 / 35,000 (alice's only position: the
    # account-level maintenance and uPnL are the position's)
    assert rows["alice"].score == pytest.approx((20_000 / 15_000) * (850 / 35_000), rel=1e-12)
    assert (rows["alice"].rank, rows["alice"].quantile, rows["alice"].lights) == (1, 4, 5)
    assert rows["carol"].score == 0 and rows["carol"].rank == 3  # losing short: never first
    assert rows["dave"].of == 1  # alone on its side


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


# --- bad input on the command line: one clear line, exit status 2, never a traceback ------------------

ROW = "a,BTCUSDT,long,1,100,110,1000\n"


def _strict_json(text: str) -> object:
    """``json.loads`` that refuses the non-standard constants NaN, Infinity and -Infinity."""

    def refuse(name: str) -> object:
        raise ValueError(f"not valid JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _assert_one_error_line(r, *needles: str) -> str:
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit), r.exception  # a clean exit, not an uncaught exception
    assert "Traceback" not in r.output and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "row 1: contains a NUL byte", id="binary"),
        pytest.param(
            (HEADER + ROW).encode("utf-16"), "is not UTF-8 text (found a UTF-16 little-endian byte-order mark)", id="utf16-bom"
        ),
        pytest.param(b"\xfe\xff" + (HEADER + ROW).encode("utf-16-be"), "UTF-16 big-endian byte-order mark", id="utf16be-bom"),
        pytest.param(
            (HEADER + ROW).encode("utf-16-le"), "looks like UTF-16 little-endian without a byte-order mark", id="utf16-no-bom"
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100,110,1000\n" + "b\xe9,BTCUSDT,long,1,100,110,1\n").encode("latin-1"),
            "row 3: is not UTF-8 text (invalid byte 0xe9",
            id="latin-1",
        ),
        pytest.param(b"", "file is empty (expected a header row: account,symbol,side", id="empty"),
        pytest.param(b"\n  \n\r\n", "file is empty", id="blank-lines-only"),
        pytest.param(HEADER.encode(), "no positions after the header (row 1)", id="header-only"),
        pytest.param((HEADER + "\n\n").encode(), "no positions after the header", id="header-and-blank-lines"),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100,110,1000,7\n").encode(),
            "row 2: has 8 fields but the header has 7 columns; extra value(s) ['7']",
            id="extra-field",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100\n").encode(),
            "row 2, column 'mark_price': missing; the row has 5 fields but the header has 7 columns",
            id="fewer-fields",
        ),
        pytest.param(
            (HEADER.strip() + ",size\n" + ROW.strip() + ",2\n").encode(),
            "row 1, column 'size': appears twice in the header (columns 4 and 8)",
            id="duplicate-header",
        ),
        pytest.param(
            (HEADER.strip() + ",\n" + ROW.strip() + ",\n").encode(), "row 1: header column 8 has no name", id="empty-header-name"
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100,110,1e400\n").encode(),
            "row 2, column 'wallet_balance': '1e400' is out of range (allowed: -10,000,000,000 to 10,000,000,000",
            id="1e400-wallet",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1e400,100,110,1\n").encode(),
            "row 2, column 'size': '1e400' is out of range (allowed: 0.00000001 to 10,000,000,000)",
            id="1e400-size",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,1e-400,110,1\n").encode(),
            "row 2, column 'entry_price': '1e-400' is out of range",
            id="tiny-price",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100,110,12345678901234567890123\n").encode(),
            "row 2, column 'wallet_balance': '12345678901234567890123' is out of range (allowed:",
            id="23-digit-wallet",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100,110,NaN\n").encode(),
            "column 'wallet_balance': 'NaN' is not a finite number",
            id="nan",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,Infinity,100,110,1\n").encode(),
            "column 'size': 'Infinity' is not a finite number",
            id="inf",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,-inf,110,1\n").encode(), "column 'entry_price': '-inf' is not a finite number", id="-inf"
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100,110,0.123456789\n").encode(),
            "column 'wallet_balance': '0.123456789' has more than 8 decimals",
            id="money-precision",
        ),
        pytest.param(
            (HEADER.strip() + ",equity\n" + ROW.strip() + ",1e-9\n").encode(),
            "column 'equity': '1e-9' has more than 8 decimals",
            id="equity-precision",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1_000,100,110,1\n").encode(), "column 'size': '1_000' is not a number", id="underscore"
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,,100,110,1\n").encode(), "row 2, column 'size': empty; expected a number", id="empty-number"
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1000000,100000,110,1\n").encode(),
            "row 2, column 'entry_price': size x entry_price = 100,000,000,000 is out of range",
            id="notional",
        ),
        pytest.param((HEADER + '"a,BTCUSDT,long,1,100,110,1\n').encode(), "row 2: not well-formed CSV", id="open-quote"),
        pytest.param(
            (HEADER + ROW + "\n\nb,BTCUSDT,long,x,100,110,1\n").encode(),
            "row 5, column 'size': 'x' is not a number",
            id="row-is-line-number",
        ),
        pytest.param(
            (HEADER + "".join(f"a,C{j}USDT,long,100000,1,100000,1\n" for j in range(10))).encode(),
            "row 2, column 'equity': the default (wallet_balance + account 'a''s unrealised PnL) is out of range",
            id="default-equity",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100000,90000,1000\na,BTCUSDT,short,1,100000,90000,2000\n").encode(),
            "row 3: account 'a' already holds BTCUSDT on row 2",
            id="same-account-both-sides",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100000,110000,1000\nb,BTCUSDT,short,1,100000,120000,1000\n").encode(),
            "row 3, column 'mark_price': BTCUSDT has a different mark price on row 2",
            id="two-marks",
        ),
        pytest.param(
            (HEADER + "a,BTCUSDT,long,1,100000,110000,1000\na,ETHUSDT,short,1,4000,4000,2000\n").encode(),
            "row 3, column 'wallet_balance': account 'a' has a different wallet balance on row 2",
            id="two-wallets",
        ),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, body: bytes, needle: str) -> None:
    p = tmp_path / "positions.csv"
    p.write_bytes(body)
    with pytest.raises(PositionFileError, match=re.escape(needle)):
        read_positions(p)
    for extra in ([], ["--json"]):
        r = CliRunner().invoke(app, ["adl-rank", str(p), *extra])
        _assert_one_error_line(r, f"error: {p}: ", needle)


def test_paths_that_are_not_readable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    _assert_one_error_line(runner.invoke(app, ["adl-rank", str(tmp_path)]), f"{tmp_path}: is a directory, not a file")
    missing = tmp_path / "missing.csv"
    _assert_one_error_line(runner.invoke(app, ["adl-rank", str(missing)]), f"{missing}: file not found")
    locked = tmp_path / "locked.csv"
    locked.write_text(HEADER + ROW)

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)  # chmod does not stop root, so simulate it
    _assert_one_error_line(runner.invoke(app, ["adl-rank", str(locked)]), f"{locked}: permission denied")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + (HEADER + ROW).encode())
    (pos,) = read_positions(p)
    assert (pos.account, pos.row, pos.wallet) == ("a", 2, 1000 * 10**8)
    r = CliRunner().invoke(app, ["adl-rank", str(p), "--json"])
    assert r.exit_code == 0, r.output
    assert {x["account"] for x in _strict_json(r.stdout)} == {"a"}


def test_blank_lines_are_skipped_and_rows_are_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("\n" + HEADER + "\n" + ROW + "  \n" + ROW.replace("a,", "b,") + "\n\n")
    assert [x.row for x in read_positions(p)] == [4, 6]


def test_values_at_the_bounds_rank_without_overflow(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text(
        HEADER.strip() + ",maintenance_margin,equity\n"
        "a,BTCUSDT,long,10000000000,1,0.00000001,-10000000000,,\n"
        "b,ETHUSDT,long,0.00000001,10000000000,1,10000000000,10000000000,-10000000000\n"
        "c,SOLUSDT,short,100000,100000,0.00000001,0.00000001,,10000000000\n"
        "d,DOGEUSDT,short,1.123456789012345678901234567890,0.2,0.17,-0.00000001,0,\n"
    )
    r = CliRunner().invoke(app, ["adl-rank", str(p), "--json"])
    assert r.exit_code == 0, r.output
    rows = _strict_json(r.stdout)
    assert len(rows) == 4 * 5 and all(x["score"] is None or math.isfinite(x["score"]) for x in rows)


NO_EQUITY = (  # a and b have no positive equity (their accounts are being liquidated); c has equity 1
    HEADER.strip() + ",equity\n" + "a,BTCUSDT,long,1,100,110,1,-5\nb,BTCUSDT,long,1,100,110,1,0\nc,BTCUSDT,long,1,100,110,1,1\n"
)


def test_json_is_strict_when_scores_are_infinite(tmp_path: Path) -> None:
    # equity <= 0 once gave an infinite score under several rules; by design such a position now has no
    # score at all (None: "liquidating" in the table, null in JSON) under every rule
    p = tmp_path / "p.csv"
    p.write_text(NO_EQUITY)
    venues = ("binance", "bybit", "okx", "hyperliquid", "bitmex")
    ranked = [r for v in venues for r in rank_positions(read_positions(p), v)]
    liquidating = [r for r in ranked if r.score is None]
    assert {(r.venue, r.account) for r in liquidating} == {(v, a) for v in venues for a in ("a", "b")}
    assert all(r.score is not None and math.isfinite(r.score) for r in ranked if r.account == "c")
    r = CliRunner().invoke(app, ["adl-rank", str(p), "--json"])
    assert r.exit_code == 0, r.output
    assert "Infinity" not in r.stdout and "NaN" not in r.stdout
    rows = _strict_json(r.stdout)
    by = {(x["venue"], x["account"]): x for x in rows}
    for x in liquidating:
        assert by[(x.venue, x.account)]["score"] is None
        assert by[(x.venue, x.account)]["rank"] == x.rank
    table = CliRunner().invoke(app, ["adl-rank", str(p), "--venue", "hyperliquid"])
    assert table.exit_code == 0 and "liquidating" in table.output


def test_positions_without_positive_equity_are_ranked_last(tmp_path: Path) -> None:
    # adl_tool.RankedPosition, adl's module docstring and the adl-rank help: a position whose account has no
    # positive equity is being liquidated itself and is ranked last (never first in line)
    p = tmp_path / "p.csv"
    p.write_text(NO_EQUITY)
    for v in ("binance", "bybit", "okx", "hyperliquid", "bitmex"):
        rows = {r.account: r for r in rank_positions(read_positions(p), v)}
        assert (rows["c"].rank, rows["c"].lights) == (1, 5), v  # the only position with equity is first in line
        assert {rows["a"].rank, rows["b"].rank} == {2, 3}, v


def test_file_text_is_never_read_as_markup(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text(HEADER + "[/bold],BTCUSDT,long,1,100,110,1000\n")
    r = CliRunner().invoke(app, ["adl-rank", str(p), "--venue", "binance"])
    assert r.exit_code == 0 and "[/bold]" in r.output, r.output
    p.write_text(HEADER + "a,BTCUSDT,[red]up,1,100,110,1000\n")
    _assert_one_error_line(
        CliRunner().invoke(app, ["adl-rank", str(p)]), "row 2, column 'side': '[red]up' must be 'long' or 'short'"
    )
