"""Read a trader's positions from CSV and rank them for ADL under each venue's rule.

CSV columns (header required; extra columns are an error, optional ones may be omitted):

| column | meaning |
|---|---|
| ``account`` | any label (positions of one account share its wallet and equity) |
| ``symbol`` | e.g. ``BTCUSDT``; the base asset picks the venue's margin tiers |
| ``side`` | ``long`` or ``short`` |
| ``size`` | position size in coins, > 0 |
| ``entry_price`` | average entry price, > 0 |
| ``mark_price`` | current mark price, > 0 |
| ``wallet_balance`` | cross wallet balance (or the isolated margin), in quote |
| ``maintenance_margin`` | optional: the position's maintenance margin; default from the venue's tiers |
| ``equity`` | optional: margin balance backing the position; default wallet_balance + the account's uPnL |

Positions are ranked against the others in the file on the same symbol and side.

The file must be UTF-8 text (a UTF-8 byte-order mark is accepted); blank lines are
skipped; a row's number is its line number in the file (the header is row 1). Numbers
are plain decimals (``12``, ``-0.5``, ``1.5e3``); NaN and infinity are refused. So that
every amount is an exact int64 count of money units (1e-8), the bounds are:

* ``size``, ``entry_price``, ``mark_price``: from 0.00000001 to 10,000,000,000, any
  number of decimals, and size x price at most 10,000,000,000;
* ``wallet_balance``, ``maintenance_margin``, ``equity``: from -10,000,000,000 to
  10,000,000,000 with at most 8 decimals (a finer amount is refused, never rounded);
* a default equity (wallet_balance + the account's uPnL) within about ±92,000,000,000.

Every error raises :class:`PositionFileError` with one line:
``<file>: row N, column 'x': <what is wrong>; <what is allowed>``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from cascadelab.units import MONEY_DECIMALS, MONEY_SCALE

REQUIRED = ("account", "symbol", "side", "size", "entry_price", "mark_price", "wallet_balance")
OPTIONAL = ("maintenance_margin", "equity")

MAX_AMOUNT = Decimal(10) ** 10
"""Largest size, price, notional or money amount accepted (ten billion)."""
MIN_POSITIVE = Decimal(1).scaleb(-MONEY_DECIMALS)
"""Smallest size or price accepted (one money unit, 0.00000001)."""
_INT64_MAX = 2**63 - 1
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|snan|inf|infinity)", re.IGNORECASE)
_POSITIVE_RANGE = f"allowed: {MIN_POSITIVE:f} to {MAX_AMOUNT:,}"
_MONEY_RANGE = f"allowed: -{MAX_AMOUNT:,} to {MAX_AMOUNT:,} with at most {MONEY_DECIMALS} decimals"


class PositionFileError(ValueError):
    """A positions file that cannot be read; the message names the file, row and column."""


@dataclass
class Position:
    """One row of the positions file, money converted to integer units."""

    row: int
    account: str
    symbol: str
    side: int
    size: Decimal
    entry: Decimal
    mark: Decimal
    wallet: int
    maint: int | None
    equity: int | None


def money_units(x: Decimal) -> int:
    """A decimal amount of money as integer 1e-8 units (the reader has checked it is exact)."""
    return int((x * MONEY_SCALE).to_integral_value())


def _read_text(path: Path) -> str:
    """The file's text, or a :class:`PositionFileError` saying why it is not readable UTF-8 text."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PositionFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise PositionFileError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        if path.is_dir():  # what Windows raises for a directory
            raise PositionFileError(f"{path}: is a directory, not a file") from None
        raise PositionFileError(f"{path}: permission denied (the file is not readable)") from None
    except OSError as exc:
        raise PositionFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    for bom, name in (
        (b"\xff\xfe\x00\x00", "UTF-32 little-endian"),
        (b"\x00\x00\xfe\xff", "UTF-32 big-endian"),
        (b"\xff\xfe", "UTF-16 little-endian"),
        (b"\xfe\xff", "UTF-16 big-endian"),
    ):
        if data.startswith(bom):
            raise PositionFileError(f"{path}: is not UTF-8 text (found a {name} byte-order mark); save it as UTF-8 CSV")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise PositionFileError(f"{path}: {_nul_cause(data, nul)}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PositionFileError(
            f"{path}: row {line}: is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start}); "
            "save it as UTF-8 CSV"
        ) from None


def _nul_cause(data: bytes, first: int) -> str:
    """Why a file holds NUL bytes: UTF-16 without a byte-order mark, or binary content."""
    sample = data[:4096]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if half and max(even, odd) > 0.4 * half and min(even, odd) < 0.05 * half:
        order = "little" if odd > even else "big"
        return f"is not UTF-8 text (it looks like UTF-16 {order}-endian without a byte-order mark); save it as UTF-8 CSV"
    line = data.count(b"\n", 0, first) + 1
    return f"row {line}: contains a NUL byte (byte offset {first}); a binary file, not CSV text"


def _is_blank(fields: list[str]) -> bool:
    return all(not f.strip() for f in fields) and len(fields) <= 1


def _fits_money_units(v: Decimal) -> bool:
    """Is ``v`` a whole number of money units (at most ``MONEY_DECIMALS`` decimals)? Exact, no rounding."""
    _, digits, exp = v.as_tuple()
    cut = -(int(exp) + MONEY_DECIMALS)  # digits that must be zero
    if cut <= 0:
        return True
    if cut >= len(digits):
        return not any(digits)
    return not any(digits[-cut:])


def _number(path: Path, row: int, col: str, raw: str, money: bool) -> Decimal:
    """Parse one numeric cell; the error names the row and column and gives the allowed range."""
    where = f"{path}: row {row}, column {col!r}"
    allowed = _MONEY_RANGE if money else _POSITIVE_RANGE
    if raw == "":
        raise PositionFileError(f"{where}: empty; expected a number ({allowed})")
    if _NON_FINITE.fullmatch(raw):
        raise PositionFileError(f"{where}: {raw!r} is not a finite number ({allowed})")
    if not _NUMBER.fullmatch(raw):
        raise PositionFileError(f"{where}: {raw!r} is not a number (expected a decimal like 12.5; {allowed})")
    try:
        v = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise PositionFileError(f"{where}: {raw!r} is not a number ({allowed})") from None
    if money:
        if v.adjusted() >= 11 or v.copy_abs() > MAX_AMOUNT:
            raise PositionFileError(f"{where}: {raw!r} is out of range ({allowed})")
        if not _fits_money_units(v):
            raise PositionFileError(
                f"{where}: {raw!r} has more than {MONEY_DECIMALS} decimals; money is counted in units of {MIN_POSITIVE:f} "
                "and is never rounded silently"
            )
        return v
    if v <= 0:
        raise PositionFileError(f"{where}: {raw!r} must be a number > 0 ({allowed})")
    if v.adjusted() >= 11 or v > MAX_AMOUNT or v < MIN_POSITIVE:
        raise PositionFileError(f"{where}: {raw!r} is out of range ({allowed})")
    return v


def _header(path: Path, fields: list[str], row: int) -> list[str]:
    cols = [f.strip() for f in fields]
    for j, c in enumerate(cols):
        if c == "":
            raise PositionFileError(
                f"{path}: row {row}: header column {j + 1} has no name (a stray comma?); allowed: {list(REQUIRED + OPTIONAL)}"
            )
        if c in cols[:j]:
            raise PositionFileError(
                f"{path}: row {row}, column {c!r}: appears twice in the header (columns {cols.index(c) + 1} and {j + 1})"
            )
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise PositionFileError(f"{path}: row {row}: missing column(s) {missing}; required: {list(REQUIRED)}")
    extra = [c for c in cols if c not in REQUIRED + OPTIONAL]
    if extra:
        raise PositionFileError(f"{path}: row {row}: unknown column(s) {extra}; allowed: {list(REQUIRED + OPTIONAL)}")
    return cols


def _records(path: Path, text: str):
    """Yield (row number, fields) for every non-blank CSV record; row = first line of the record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise PositionFileError(f"{path}: row {start}: not well-formed CSV ({exc})") from None
        end = reader.line_num
        if not _is_blank(fields):
            yield start, fields


def read_positions(path: str | Path) -> list[Position]:
    """Parse and validate the CSV; every error names the file, row and column (see the module docstring)."""
    path = Path(path)
    records = _records(path, _read_text(path))
    first = next(records, None)
    if first is None:
        raise PositionFileError(f"{path}: file is empty (expected a header row: {','.join(REQUIRED)})")
    header_row, header = first
    cols = _header(path, header, header_row)
    out = []
    for n, fields in records:
        if len(fields) != len(cols):
            if len(fields) > len(cols):
                raise PositionFileError(
                    f"{path}: row {n}: has {len(fields)} fields but the header has {len(cols)} columns; "
                    f"extra value(s) {fields[len(cols) :]} (a stray comma?)"
                )
            raise PositionFileError(
                f"{path}: row {n}, column {cols[len(fields)]!r}: missing; the row has {len(fields)} fields but the header "
                f"has {len(cols)} columns (missing {cols[len(fields) :]}): truncated row?"
            )
        rec = {c: f.strip() for c, f in zip(cols, fields, strict=True)}
        side_raw = rec["side"].lower()
        if side_raw not in ("long", "short"):
            raise PositionFileError(f"{path}: row {n}, column 'side': {rec['side']!r} must be 'long' or 'short'")
        symbol = rec["symbol"].upper()
        if not symbol:
            raise PositionFileError(f"{path}: row {n}, column 'symbol': must not be empty")
        size, entry, mark = (_number(path, n, c, rec[c], money=False) for c in ("size", "entry_price", "mark_price"))
        for col, price in (("entry_price", entry), ("mark_price", mark)):
            if size * price > MAX_AMOUNT:
                raise PositionFileError(
                    f"{path}: row {n}, column {col!r}: size x {col} = {size * price:,f} is out of range "
                    f"(allowed: notional up to {MAX_AMOUNT:,})"
                )
        wallet = _number(path, n, "wallet_balance", rec["wallet_balance"], money=True)
        maint, equity = (
            None if rec.get(c, "") == "" else _number(path, n, c, rec[c], money=True) for c in ("maintenance_margin", "equity")
        )
        out.append(
            Position(
                n,
                rec["account"],
                symbol,
                1 if side_raw == "long" else -1,
                size,
                entry,
                mark,
                money_units(wallet),
                None if maint is None else money_units(maint),
                None if equity is None else money_units(equity),
            )
        )
    if not out:
        raise PositionFileError(f"{path}: no positions after the header (row {header_row})")
    _check_consistent(path, out)
    _check_default_equity(path, out)
    return out


def _check_consistent(path: Path, positions: list[Position]) -> None:
    """One position per account and symbol (venues net a side), one wallet per account, one mark per symbol."""
    seen: dict[tuple[str, str], int] = {}
    wallet: dict[str, tuple[int, int]] = {}
    mark: dict[str, tuple[object, int]] = {}
    for p in positions:
        key = (p.account, p.symbol)
        if key in seen:
            raise PositionFileError(
                f"{path}: row {p.row}: account {p.account!r} already holds {p.symbol} on row {seen[key]} "
                f"(one position per account and symbol: a venue nets long and short)"
            )
        seen[key] = p.row
        w = wallet.setdefault(p.account, (p.wallet, p.row))
        if w[0] != p.wallet:
            raise PositionFileError(
                f"{path}: row {p.row}, column 'wallet_balance': account {p.account!r} has a different wallet balance "
                f"on row {w[1]} "
                f"(the wallet is the account's, the same on each of its rows)"
            )
        m = mark.setdefault(p.symbol, (p.mark, p.row))
        if m[0] != p.mark:
            raise PositionFileError(
                f"{path}: row {p.row}, column 'mark_price': {p.symbol} has a different mark price on row {m[1]} "
                f"(one mark per symbol)"
            )


def _check_default_equity(path: Path, positions: list[Position]) -> None:
    """A position without ``equity`` gets wallet + the account's uPnL; it must fit int64 money units."""
    upnl: dict[str, int] = {}
    for pos in positions:
        upnl[pos.account] = upnl.get(pos.account, 0) + money_units(pos.side * pos.size * (pos.mark - pos.entry))
    for pos in positions:
        if pos.equity is None and abs(pos.wallet + upnl[pos.account]) > _INT64_MAX:
            raise PositionFileError(
                f"{path}: row {pos.row}, column 'equity': the default (wallet_balance + account {pos.account!r}'s "
                f"unrealised PnL) is out of range (allowed: ±{_INT64_MAX // MONEY_SCALE:,}); give 'equity' explicitly"
            )
