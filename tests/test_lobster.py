"""LOBSTER parsing and replay: every orderbook row must match; bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascadelab.cli import app
from cascadelab.io.lobster import LobsterError, load_messages, load_orderbook, replay

HERE = Path(__file__).parent / "data" / "lobster"
AAPL_MSG = HERE / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
AAPL_OB = HERE / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "lobster"
AMZN_MSG = SHARED / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
AMZN_OB = SHARED / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv"


def test_aapl_sample_matches_every_row() -> None:
    r = replay(AAPL_MSG, AAPL_OB)
    assert (r.levels, r.messages) == (10, 999)
    assert r.rows_compared == 998 and r.rows_matched == 998, r.first_mismatches


@pytest.mark.skipif(not AMZN_MSG.exists(), reason=f"AMZN full-day sample not present at {SHARED} (skipped)")
def test_amzn_full_day_matches_every_row() -> None:
    r = replay(AMZN_MSG, AMZN_OB)
    assert r.levels == 1 and r.messages == 57_515
    assert r.rows_compared == 57_514 and r.rows_matched == 57_514, r.first_mismatches


def test_time_is_parsed_exactly_to_the_nanosecond() -> None:
    m = load_messages(AAPL_MSG)
    assert m.ts_ns[0] == 34200_004241176
    assert m.ts_ns[1] == 34200_004260640  # "34200.00426064": padded, not float-rounded


def test_a_corrupted_row_is_detected_as_mismatch(tmp_path: Path) -> None:
    rows = AAPL_OB.read_text().splitlines()
    fields = rows[500].split(",")
    fields[3] = str(int(fields[3]) + 1)  # best bid size off by one
    rows[500] = ",".join(fields)
    bad = tmp_path / "ob.csv"
    bad.write_text("\n".join(rows) + "\n")
    r = replay(AAPL_MSG, bad)
    assert r.rows_compared - r.rows_matched >= 1
    assert r.first_mismatches[0]["line"] == 501


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "m.csv"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("34200.1,1,5,10,100\n", "expected 6 columns"),
        ("34200.1,9,5,10,100,1\n", "line 1, column 'type': 9 is not allowed"),
        ("34200.1,1,5,10,100,1\n34200.2,1,6,x,100,1\n", "line 2, column 'size': 'x' is not an integer"),
        ("34200.1,1,5,10,100,0\n", "column 'direction'"),
        ("34200.1,1,5,0,100,1\n", "column 'size'"),
        ("34200.1234567891,1,5,10,100,1\n", "column 'time'"),
        ("Time,Type,OrderId,Size,Price,Direction\n34200.2,1,5,10,100,1\n34200.1,1,6,10,100,1\n", "line 3, column 'time'"),
        ("", "empty"),
    ],
)
def test_bad_message_files_name_line_and_column(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(LobsterError, match=needle):
        load_messages(_write(tmp_path, text))


def test_header_row_is_optional(tmp_path: Path) -> None:
    body = "34200.1,1,5,10,100,1\n"
    a = load_messages(_write(tmp_path, body))
    b = load_messages(_write(tmp_path, "Time,Type,OrderId,Size,Price,Direction\n" + body))
    assert np.array_equal(a.ts_ns, b.ts_ns) and np.array_equal(a.size, b.size)


def test_orderbook_shape_errors(tmp_path: Path) -> None:
    p = tmp_path / "ob.csv"
    p.write_text("1,2,3\n")
    with pytest.raises(LobsterError, match="4 per level"):
        load_orderbook(p)
    p.write_text("100,1,99,1\n")
    with pytest.raises(LobsterError, match="must be the book after message"):
        replay(AAPL_MSG, p)


def test_cli_replay_prints_result_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["replay", "lobster", str(AAPL_MSG), str(AAPL_OB)])
    assert r.exit_code == 0, r.output
    assert "rows matched" in r.output and "998" in r.output and "every row matched" in r.output
    r = runner.invoke(app, ["replay", "lobster", str(tmp_path / "missing.csv"), str(AAPL_OB)])
    assert r.exit_code == 2 and "file not found" in r.output and "Traceback" not in r.output
