"""LOBSTER parsing and replay: every orderbook row must match; bad files give clear errors."""

from __future__ import annotations

import json
import re
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


# --- bad input: one clear line naming file, line and cause; never a traceback --------------------------

GOOD = "34200.1,1,5,10,100,1\n34200.2,1,6,10,100,1\n"


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"not valid JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _assert_one_error_line(r, *needles: str) -> str:
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param(
            GOOD + "34200.3,1,7,10",
            "line 3 has 4 fields, expected 6 columns (time, type, order_id, size, price, direction): "
            "truncated line? (the last line of the file)",
            id="truncated-last-line",
        ),
        pytest.param(
            "34200.1,1,5,10\n" + GOOD,
            "line 1 has 4 fields, expected 6 columns (time, type, order_id, size, price, direction): fields are missing",
            id="short-line",
        ),
        pytest.param(
            GOOD + "34200.3,1,7,10,100,1,\n",
            "line 3 has 7 fields, expected 6 columns (time, type, order_id, size, price, direction): "
            "extra fields (a trailing comma?)",
            id="trailing-comma",
        ),
        pytest.param(GOOD + "34200.3,1,7,10,100,1,9,9\n", "line 3 has 8 fields, expected 6 columns", id="extra-fields"),
        pytest.param(
            "34200.1,1,5,10,100,1\n\n34200.2,1,6,10,100,1\n",
            "line 2 is blank; blank lines are allowed only at the end of the file",
            id="blank-line-in-middle",
        ),
        pytest.param("34200.1,1,5,10,100,1\n \t\n34200.2,1,6,10,100,1\n", "line 2 is blank", id="whitespace-line-in-middle"),
        pytest.param("\n" + GOOD, "line 1 is blank", id="leading-blank-line"),
        pytest.param(GOOD + "34200.3,1,7,ten,100,1\n", "line 3, column 'size': 'ten' is not an integer", id="non-numeric"),
        pytest.param(GOOD + "34200.3,1,7,,100,1\n", "line 3, column 'size': is empty; expected an integer", id="empty-field"),
        pytest.param(
            GOOD + "34200.3,1,99999999999999999999,10,100,1\n",
            "line 3, column 'order_id': '99999999999999999999' is out of range for a 64-bit integer",
            id="int64-overflow",
        ),
        pytest.param(
            "99999999999999999999.5,1,5,10,100,1\n",
            "line 1, column 'time': '99999999999999999999.5' is not seconds after midnight",
            id="huge-time",
        ),
        pytest.param(
            "34200.1,1,1152921504606846976,10,100,1\n",
            "line 1, column 'order_id': 1152921504606846976 is not allowed; must be below 2**60",
            id="reserved-order-id",
        ),
        pytest.param(
            "34200.1,1,5,10,10000000000000000,1\n",
            "line 1, column 'price': 10000000000000000 is not allowed; must be at most 1,000,000,000,000,000",
            id="huge-price",
        ),
        pytest.param(GOOD.encode("utf-16"), "is not UTF-8 text (found a UTF-16 little-endian byte-order mark)", id="utf16-bom"),
        pytest.param(
            GOOD.encode("utf-16-le"),
            "is not UTF-8 text (it looks like UTF-16 little-endian without a byte-order mark)",
            id="utf16-no-bom",
        ),
        pytest.param(
            b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)),
            "line 1 contains a NUL byte (byte offset 7): a binary file, not CSV text",
            id="binary",
        ),
        pytest.param(
            GOOD.encode() + b"34200.3,1,7,10,\xff\xfe,1\n", "line 3 is not UTF-8 text (invalid byte 0xff", id="non-utf8"
        ),
        pytest.param("", "file is empty", id="empty"),
        pytest.param("\n\r\n  \n", "file is empty (only blank lines)", id="blank-lines-only"),
        pytest.param("Time,Type,OrderId,Size,Price,Direction\n", "no data after the header (line 1)", id="header-only"),
    ],
)
def test_bad_message_files_are_one_clear_line(tmp_path: Path, body: str | bytes, needle: str) -> None:
    p = tmp_path / "messages.csv"
    if isinstance(body, str):
        p.write_text(body)
    else:
        p.write_bytes(body)
    with pytest.raises(LobsterError, match=re.escape(needle)):
        load_messages(p)
    r = CliRunner().invoke(app, ["replay", "lobster", str(p), str(AAPL_OB)])
    _assert_one_error_line(r, f"error: {p}: ", needle)


def test_trailing_blank_lines_crlf_and_utf8_bom_are_accepted(tmp_path: Path) -> None:
    plain = load_messages(_write(tmp_path, GOOD))
    for text in (GOOD + "\n\n", GOOD + "\n  \n\t\n", GOOD.replace("\n", "\r\n") + "\r\n\r\n", GOOD.rstrip("\n")):
        m = load_messages(_write(tmp_path, text))
        assert np.array_equal(m.ts_ns, plain.ts_ns) and np.array_equal(m.price, plain.price), repr(text)
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert np.array_equal(load_messages(p).order_id, plain.order_id)


def test_samples_with_trailing_blank_lines_still_match_every_row(tmp_path: Path) -> None:
    msg, ob = tmp_path / "m.csv", tmp_path / "ob.csv"
    msg.write_text(AAPL_MSG.read_text() + "\n\n")
    ob.write_text(AAPL_OB.read_text() + "\n \n")
    r = replay(msg, ob)
    assert r.rows_compared == 998 and r.rows_matched == 998


def test_truncated_orderbook_names_line_and_cause(tmp_path: Path) -> None:
    text = AAPL_OB.read_text()
    ob = tmp_path / "ob.csv"
    ob.write_text(text[: text.rindex(",", 0, len(text) - 20)])  # the download stopped mid-line
    with pytest.raises(
        LobsterError, match=r"line 999 has \d+ fields, expected 40 columns \(ask price, ask size, bid price, bid size"
    ):
        load_orderbook(ob)
    r = CliRunner().invoke(app, ["replay", "lobster", str(AAPL_MSG), str(ob)])
    _assert_one_error_line(r, f"error: {ob}: line 999 has ", "expected 40 columns", "for each of 10 levels", "truncated line?")
    ob.write_text("100,1,99,1\n\n100,1,99,1\n")
    with pytest.raises(LobsterError, match="line 2 is blank"):
        load_orderbook(ob)
    ob.write_text("100,1,99,1,5\n")
    with pytest.raises(LobsterError, match="line 1 has 5 fields; an orderbook file has 4 per level"):
        load_orderbook(ob)


def test_paths_that_are_not_readable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    _assert_one_error_line(
        runner.invoke(app, ["replay", "lobster", str(tmp_path), str(AAPL_OB)]), f"{tmp_path}: is a directory, not a file"
    )
    _assert_one_error_line(
        runner.invoke(app, ["replay", "lobster", str(AAPL_MSG), str(tmp_path)]), f"{tmp_path}: is a directory, not a file"
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _assert_one_error_line(runner.invoke(app, ["replay", "lobster", str(AAPL_MSG), str(empty)]), f"{empty}: file is empty")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)  # chmod does not stop root, so simulate it
    _assert_one_error_line(
        runner.invoke(app, ["replay", "lobster", str(AAPL_MSG), str(AAPL_OB)]), f"{AAPL_MSG}: permission denied"
    )


def test_cli_json_report_is_strict_json() -> None:
    r = CliRunner().invoke(app, ["replay", "lobster", str(AAPL_MSG), str(AAPL_OB), "--json"])
    assert r.exit_code == 0, r.output
    report = _strict_json(r.stdout)
    assert report["rows_matched"] == 998
    assert report["messages_per_second"] is None or report["messages_per_second"] > 0


def test_cli_json_writes_an_infinite_rate_as_null(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascadelab.io.lobster as lobster

    monkeypatch.setattr(lobster.time, "perf_counter", lambda: 0.0)  # a replay "in no time": rate = inf
    r = CliRunner().invoke(app, ["replay", "lobster", str(AAPL_MSG), str(AAPL_OB), "--json"])
    assert r.exit_code == 0, r.output
    report = _strict_json(r.stdout)
    assert report["seconds"] == 0 and report["messages_per_second"] is None
