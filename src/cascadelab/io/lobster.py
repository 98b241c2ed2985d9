"""LOBSTER order-book data: parse message/orderbook files and replay them through our book.

LOBSTER (lobsterdata.com) writes, per ticker and day, a message file (time, type, order
id, size, price, direction) and an orderbook file whose row k is the visible book
(``L`` levels a side) *after* message k. The book before the first message and any
level beyond the ``L`` visible ones are unknown, so the replay

1. seeds the book from orderbook row 0 with one synthetic order per visible level;
2. applies message k (1 add, 2 partial cancel, 3 delete, 4 visible execution; 5 hidden
   execution and 7 halt do not change the visible book); a message that names an
   order we never saw (it rested before the open or arrived while out of view) is
   applied to the synthetic order at its price;
3. compares our book with row k on the levels visible in row k-1 (the range we can
   know), and records a mismatch if they differ;
4. adopts levels that row k reveals beyond that range, so they are known from then on.

Prices stay in LOBSTER's integer units (dollars x 10,000), sizes in shares.

Input files must be UTF-8 (in practice ASCII) comma-separated text, LF or CRLF line ends,
no quoting; a header row is optional. Blank lines at the *end* of a file are ignored;
a blank line anywhere else, a line with too few or too many fields, a non-integer field,
binary or UTF-16 content is an error (:class:`LobsterError`) whose one-line message names
the file, the line number and the cause, e.g. ``m.csv: line 57 has 4 fields, expected 6
columns (time, type, order_id, size, price, direction): truncated line? (the last line of the file)``.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from cascadelab.book import kernels as K
from cascadelab.book.fast import OrderBook
from cascadelab.compiled import kernel
from cascadelab.records import BOOK_OP, BOOK_RESULT, Op

MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
VALID_TYPES = (1, 2, 3, 4, 5, 7)
DUMMY_PRICE = 9_999_999_999
SYNTHETIC_BASE = 1 << 60
_INF = 1 << 62
MAX_VALUE = 10**15
"""Largest price or size accepted (far beyond any market; keeps the replay's int64 sums exact)."""
ORDERBOOK_LEVEL_COLUMNS = ("ask price", "ask size", "bid price", "bid size")
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 little-endian"),
    (b"\x00\x00\xfe\xff", "UTF-32 big-endian"),
    (b"\xff\xfe", "UTF-16 little-endian"),
    (b"\xfe\xff", "UTF-16 big-endian"),
)


class LobsterError(ValueError):
    """A LOBSTER file that cannot be read; the message names file, row and column."""


@dataclass
class Messages:
    """A parsed message file, one array per column (time in integer nanoseconds)."""

    path: Path
    ts_ns: np.ndarray
    type: np.ndarray
    order_id: np.ndarray
    size: np.ndarray
    price: np.ndarray
    direction: np.ndarray

    def __len__(self) -> int:
        return len(self.type)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a :class:`LobsterError` saying why it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LobsterError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LobsterError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        if path.is_dir():  # what Windows raises for a directory
            raise LobsterError(f"{path}: is a directory, not a file") from None
        raise LobsterError(f"{path}: permission denied (the file is not readable)") from None
    except OSError as exc:
        raise LobsterError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_text(path: Path, data: bytes) -> bytes:
    """Refuse UTF-16/32, binary and non-UTF-8 content; drop a UTF-8 byte-order mark."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise LobsterError(f"{path}: is not UTF-8 text (found a {name} byte-order mark); save it as UTF-8 CSV")
    data = data.removeprefix(b"\xef\xbb\xbf")
    nul = data.find(b"\x00")
    if nul >= 0:
        sample = data[:4096]
        even, odd, half = sample[0::2].count(0), sample[1::2].count(0), len(sample) // 2
        if half and max(even, odd) > 0.4 * half and min(even, odd) < 0.05 * half:
            order = "little" if odd > even else "big"
            raise LobsterError(
                f"{path}: is not UTF-8 text (it looks like UTF-16 {order}-endian without a byte-order mark); save it as UTF-8 CSV"
            )
        raise LobsterError(
            f"{path}: line {_line_of(data, nul)} contains a NUL byte (byte offset {nul}): a binary file, not CSV text"
        )
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LobsterError(
                f"{path}: line {_line_of(data, exc.start)} is not UTF-8 text "
                f"(invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start}): a binary file?"
            ) from None
    return data


def _expected(names: tuple[str, ...] | None, n_fields: int) -> str:
    if names is not None:
        return f"{len(names)} columns ({', '.join(names)})"
    levels = n_fields // 4
    per_level = ", ".join(ORDERBOOK_LEVEL_COLUMNS)
    return f"{n_fields} columns ({per_level} for each of {levels} level{'s' if levels != 1 else ''}, as on line 1)"


def _split_lines(path: Path, data: bytes, names: tuple[str, ...] | None) -> tuple[bytes, int, int]:
    """Check the line structure; returns the data without trailing blank lines, its line count and fields per line.

    Every line up to the last non-blank one must have the same number of fields (``len(names)``,
    or for an orderbook file the number on line 1, a multiple of 4); trailing blank lines are ignored.
    """
    buf = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = newlines if data.endswith(b"\n") else np.r_[newlines, len(data)]
    starts = np.r_[0, newlines + 1][: len(ends)]
    has_cr = np.zeros(len(ends), bool)
    nonempty = ends > starts
    has_cr[nonempty] = buf[ends[nonempty] - 1] == 13
    stops = ends - has_cr
    n = len(ends)
    while n > 0 and not data[starts[n - 1] : stops[n - 1]].strip():
        n -= 1  # trailing blank lines are ignored
    if n == 0:
        raise LobsterError(f"{path}: file is empty" + (" (only blank lines)" if data else ""))
    starts, stops = starts[:n], stops[:n]
    data = data[: stops[-1]]
    commas = np.flatnonzero(buf[: len(data)] == 44)
    fields = np.searchsorted(commas, stops) - np.searchsorted(commas, starts) + 1
    want = len(names) if names is not None else int(fields[0])
    if names is None and want % 4:
        raise LobsterError(
            f"{path}: line 1 has {want} fields; an orderbook file has 4 per level ({', '.join(ORDERBOOK_LEVEL_COLUMNS)})"
        )
    bad = np.flatnonzero(fields != want)
    if len(bad):
        k = int(bad[0])
        line, got = data[starts[k] : stops[k]], int(fields[k])
        where = f"{path}: line {k + 1}"
        if not line.strip():
            raise LobsterError(f"{where} is blank; blank lines are allowed only at the end of the file")
        expected = _expected(names, want)
        if got < want and k == n - 1:
            cause = "truncated line? (the last line of the file)"
        elif got < want:
            cause = "fields are missing"
        elif line.rstrip().endswith(b","):
            cause = "extra fields (a trailing comma?)"
        else:
            cause = "extra fields"
        raise LobsterError(f"{where} has {got} field{'s' if got != 1 else ''}, expected {expected}: {cause}")
    return data, n, want


def _read_text_table(path: Path, names: tuple[str, ...] | None) -> tuple[pl.DataFrame, int]:
    """All columns as strings, plus the number of header lines (0 or 1); see the module docstring."""
    path = Path(path)
    data, n_lines, n_fields = _split_lines(path, _check_text(path, _read_bytes(path)), names)
    first = data.split(b"\n", 1)[0].split(b",", 1)[0].strip().decode("utf-8", "replace")
    header = 0 if first.lstrip("-").replace(".", "", 1).isdigit() else 1
    if header and n_lines == 1:
        raise LobsterError(f"{path}: no data after the header (line 1)")
    cols = list(names) if names else [f"c{i}" for i in range(n_fields)]
    try:
        df = pl.read_csv(
            io.BytesIO(data), has_header=False, skip_rows=header, new_columns=cols, infer_schema=False, quote_char=None
        )
    except pl.exceptions.PolarsError as exc:
        raise LobsterError(f"{path}: not a well-formed CSV file: {str(exc).splitlines()[0]}") from None
    if df.width != len(cols):
        raise LobsterError(f"{path}: expected {len(cols)} columns, found {df.width}")
    return df, header


def _int_column(df: pl.DataFrame, col: str, path: Path, header: int) -> np.ndarray:
    s = df[col].str.strip_chars()
    ints = s.str.to_integer(strict=False)
    bad = ints.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raw = s[row] or ""
        if raw == "":
            what = "is empty; expected an integer"
        elif re.fullmatch(r"[+-]?[0-9]+", raw):
            what = f"{raw!r} is out of range for a 64-bit integer"
        else:
            what = f"{raw!r} is not an integer"
        raise LobsterError(f"{path}: line {row + 1 + header}, column {col!r}: {what}")
    return ints.to_numpy().astype(np.int64)


def _time_column(df: pl.DataFrame, path: Path, header: int) -> np.ndarray:
    """Seconds after midnight with up to 9 decimals -> exact integer nanoseconds."""
    s = df["time"].str.strip_chars()
    ok = s.str.contains(r"^\d{1,9}(\.\d{1,9})?$").fill_null(False)
    if not ok.all():
        row = int((~ok).arg_true()[0])
        raise LobsterError(
            f"{path}: line {row + 1 + header}, column 'time': {s[row]!r} is not seconds after midnight "
            "(at most 9 digits, then at most 9 decimals)"
        )
    parts = s.str.split_exact(".", 1).struct.unnest()
    whole = parts["field_0"].cast(pl.Int64).to_numpy()
    frac = parts["field_1"].fill_null("").str.pad_end(9, "0").cast(pl.Int64).to_numpy()
    return whole * 1_000_000_000 + frac


def load_messages(path: str | Path) -> Messages:
    """Parse a LOBSTER message file (header row optional) with strict validation."""
    path = Path(path)
    df, header = _read_text_table(path, MESSAGE_COLUMNS)
    ts = _time_column(df, path, header)
    cols = {c: _int_column(df, c, path, header) for c in MESSAGE_COLUMNS[1:]}
    t = cols["type"]

    def fail(mask: np.ndarray, col: str, allowed: str) -> None:
        row = int(np.flatnonzero(mask)[0])
        value = {"time": ts, **cols}[col][row]
        raise LobsterError(f"{path}: line {row + 1 + header}, column {col!r}: {value} is not allowed; {allowed}")

    bad = ~np.isin(t, VALID_TYPES)
    if bad.any():
        fail(bad, "type", f"allowed event types are {VALID_TYPES}")
    book_event = np.isin(t, (1, 2, 3, 4))
    bad = book_event & ~np.isin(cols["direction"], (1, -1))
    if bad.any():
        fail(bad, "direction", "must be 1 (buy) or -1 (sell)")
    bad = book_event & (cols["size"] <= 0)
    if bad.any():
        fail(bad, "size", "must be > 0 for event types 1-4")
    bad = book_event & (cols["price"] <= 0)
    if bad.any():
        fail(bad, "price", "must be > 0 for event types 1-4")
    bad = book_event & (cols["order_id"] < 0)
    if bad.any():
        fail(bad, "order_id", "must be >= 0")
    bad = book_event & (cols["order_id"] >= SYNTHETIC_BASE)
    if bad.any():
        fail(bad, "order_id", f"must be below 2**60 = {SYNTHETIC_BASE} (higher ids are the replay's synthetic orders)")
    for col in ("size", "price"):
        bad = book_event & (cols[col] > MAX_VALUE)
        if bad.any():
            fail(bad, col, f"must be at most {MAX_VALUE:,}")
    if np.any(np.diff(ts) < 0):
        fail(np.r_[False, np.diff(ts) < 0], "time", "times must not decrease")
    return Messages(path, ts, t, cols["order_id"], cols["size"], cols["price"], cols["direction"])


def _level_column(j: int) -> str:
    """LOBSTER's name of orderbook column ``j`` (0-based): ask_price_1, ask_size_1, bid_price_1, bid_size_1, ask_price_2, ..."""
    return f"{ORDERBOOK_LEVEL_COLUMNS[j % 4].replace(' ', '_')}_{j // 4 + 1}"


def load_orderbook(path: str | Path) -> np.ndarray:
    """Parse a LOBSTER orderbook file into an ``(N, 4L)`` int64 array."""
    path = Path(path)
    df, header = _read_text_table(path, None)
    if df.width % 4:
        raise LobsterError(
            f"{path}: {df.width} columns; an orderbook file has 4 per level ({', '.join(ORDERBOOK_LEVEL_COLUMNS)})"
        )
    df = df.rename({c: _level_column(j) for j, c in enumerate(df.columns)})  # LOBSTER's names
    arr = (
        np.column_stack([_int_column(df, c, path, header) for c in df.columns]) if len(df) else np.zeros((0, df.width), np.int64)
    )
    sizes = arr[:, 1::2]
    if (sizes < 0).any():
        row, col = map(int, np.argwhere(sizes < 0)[0])
        name = _level_column(2 * col + 1)
        raise LobsterError(f"{path}: line {row + 1 + header}, column {2 * col + 2} ({name}): negative size {sizes[row, col]}")
    if (np.abs(arr) > MAX_VALUE).any():
        row, col = map(int, np.argwhere(np.abs(arr) > MAX_VALUE)[0])
        raise LobsterError(
            f"{path}: line {row + 1 + header}, column {col + 1} ({_level_column(col)}): {arr[row, col]} "
            f"is out of range (allowed: at most {MAX_VALUE:,} in absolute value)"
        )
    return arr


def messages_to_ops(msg: Messages) -> np.ndarray:
    """BOOK_OP records for a message file; kinds of -1 mark messages with no visible effect."""
    n = len(msg)
    ops = np.zeros(n, BOOK_OP)
    kind = np.full(n, -1, np.int64)
    kind[msg.type == 1] = Op.LIMIT
    kind[np.isin(msg.type, (2, 4))] = Op.REDUCE
    kind[msg.type == 3] = Op.CANCEL  # deletion removes the whole order, whatever size we hold
    ops["kind"] = kind
    ops["order_id"] = msg.order_id
    ops["side"] = msg.direction
    ops["price"] = msg.price
    ops["qty"] = msg.size
    ops["ts"] = msg.ts_ns
    return ops


# --- the replay kernel (uses only the book's public compiled API; book 0 of its set) --------
@kernel
def _synthetic_id(si, price):
    return SYNTHETIC_BASE + 2 * price + (1 if si == 0 else 0)


@kernel
def _trim_level(st, si, price, amount):
    """Remove up to ``amount`` from the level: its synthetic order first, then the oldest orders.

    Returns how much could not be removed (the level ran out).
    """
    slot = K.find(st, _synthetic_id(si, price))
    while amount > 0:
        if slot == -1:
            slot = K.level_head(st, 0, si, price)
            if slot == -1:
                return amount
        cut = min(amount, st.o_qty[slot])
        amount -= cut
        if cut == st.o_qty[slot]:
            K.remove_order(st, slot)
        else:
            K.shrink_order(st, slot, cut)
        slot = -1
    return 0


@kernel
def _force_level(st, si, price, target):
    """Make the level at ``price`` hold exactly ``target`` (via its synthetic order)."""
    cur = K.level_qty(st, 0, si, price)
    if target < cur:
        _trim_level(st, si, price, cur - target)
    elif target > cur:
        sid = _synthetic_id(si, price)
        slot = K.find(st, sid)
        if slot == -1:
            K.add_resting(st, 0, sid, -1, 1 if si == 0 else -1, price, target - cur, 0, 0, 0, 0)
        else:
            K.grow_order(st, slot, target - cur)


@kernel
def _decrement(st, si, price, oid, size, delete, counters):
    """Apply a cancel/delete/execution message: the level loses exactly ``size``.

    The named order gives up to ``size``; any shortfall comes from the rest of the level
    (the order was never seen, or shrank while out of view). A deleted order's leftover
    beyond ``size`` belonged to others at that level, so it moves to the synthetic order.
    """
    slot = K.find(st, oid)
    if slot == -1:
        counters[0] += 1
    else:
        cut = min(size, st.o_qty[slot])
        size -= cut
        left = st.o_qty[slot] - cut
        if left == 0 or delete:
            K.remove_order(st, slot)
            if left > 0:
                _force_level(st, si, price, K.level_qty(st, 0, si, price) + left)
        else:
            K.shrink_order(st, slot, cut)
    if size > 0 and _trim_level(st, si, price, size) > 0:
        counters[1] += 1


@kernel
def _row_worst(rows, k, n_levels, si):
    """Bound of what row k shows on side si: its worst price if all levels are filled, else 'everything'."""
    # columns per level: ask price, ask size, bid price, bid size
    pcol = 4 * (n_levels - 1) + (2 if si == 0 else 0)
    if rows[k, pcol + 1] > 0:
        return rows[k, pcol]
    return -_INF if si == 0 else _INF


@kernel
def _inside(si, price, bound):
    """Is ``price`` at least as good as ``bound`` on side ``si``?"""
    return price >= bound if si == 0 else price <= bound


@kernel
def _compare_side(st, rows, k, n_levels, si, bound):
    n = K.level_count(st, 0, si)
    rank = 0
    j = 0
    off = 2 if si == 0 else 0
    while True:
        row_ok = j < n_levels and rows[k, 4 * j + off + 1] > 0 and _inside(si, rows[k, 4 * j + off], bound)
        ours_ok = False
        p = 0
        q = 0
        if rank < n:
            p, q = K.level_at(st, 0, si, rank)
            ours_ok = _inside(si, p, bound)
        if not row_ok and not ours_ok:
            return True
        if row_ok != ours_ok:
            return False
        if rows[k, 4 * j + off] != p or rows[k, 4 * j + off + 1] != q:
            return False
        j += 1
        rank += 1


@kernel
def _sync_side(st, rows, k, n_levels, si, known_bound, scratch):
    """Adopt row k's levels that lie beyond ``known_bound`` but within what row k shows."""
    shown = _row_worst(rows, k, n_levels, si)
    if _inside(si, shown, known_bound):
        return  # row k shows nothing beyond what row k-1 showed
    off = 2 if si == 0 else 0
    # our levels in the region that row k does not show are gone
    n = K.level_count(st, 0, si)
    m = 0
    for rank in range(n):
        p, _q = K.level_at(st, 0, si, rank)
        if not _inside(si, p, known_bound) and _inside(si, p, shown):
            scratch[m] = p
            m += 1
    for t in range(m):
        p = scratch[t]
        present = False
        for j in range(n_levels):
            if rows[k, 4 * j + off + 1] > 0 and rows[k, 4 * j + off] == p:
                present = True
        if not present:
            _force_level(st, si, p, 0)
    for j in range(n_levels):
        q = rows[k, 4 * j + off + 1]
        p = rows[k, 4 * j + off]
        if q > 0 and not _inside(si, p, known_bound):
            _force_level(st, si, p, q)


@kernel
def replay_kernel(st, ops, rows, n_levels, start, row_status, counters, res_arr, no_pos, scratch):
    """Replay messages ``start..``; ``row_status[k]`` = 1 match, 2 mismatch. Returns next k.

    ``counters``: [0] messages naming orders never seen (applied to their level),
    [1] such messages whose level held too little, [2] stale levels dropped because an
    add would have crossed them. It stops early, for the caller to grow the book, when
    the book or the scratch might overflow.
    """
    n = ops.shape[0]
    res = res_arr[0]
    if start == 0:
        _sync_side(st, rows, 0, n_levels, 0, _INF, scratch)
        _sync_side(st, rows, 0, n_levels, 1, -_INF, scratch)
        start = 1
    for k in range(start, n):
        lcap = st.lv_key.shape[2]
        if (
            st.meta[K.M_NFREE] < 2 * n_levels + 2
            or max(K.level_count(st, 0, 0), K.level_count(st, 0, 1)) + 2 * n_levels + 2 >= lcap
            or not K.has_room(st, 0, 0, 0)
            or scratch.shape[0] < lcap
        ):
            return k
        o = ops[k]
        kind = o.kind
        si = 0 if o.side == 1 else 1
        price = o.price
        if kind == K.OP_REDUCE or kind == K.OP_CANCEL:
            _decrement(st, si, price, o.order_id, o.qty, kind == K.OP_CANCEL, counters)
            kind = -1
        elif kind == K.OP_LIMIT:
            # real adds never cross: opposite levels they would cross are stale (left out of view)
            so = 1 - si
            while K.level_count(st, 0, so) > 0:
                best = K.best_price(st, 0, so)
                if not K.acceptable(si, best, price):
                    break
                _force_level(st, so, best, 0)
                counters[2] += 1
        if kind >= 0:
            K.apply_op(st, 0, kind, o.order_id, 0, o.side, o.price, o.qty, K.TIF_GTC, 0, 0, o.ts, res, no_pos)
            st.meta[K.M_NFILLS] = 0
            st.meta[K.M_NCANCELS] = 0
        ok = True
        for si in range(2):
            known = _row_worst(rows, k - 1, n_levels, si)
            shown = _row_worst(rows, k, n_levels, si)
            both = max(known, shown) if si == 0 else min(known, shown)
            if not _compare_side(st, rows, k, n_levels, si, both):
                ok = False
            _sync_side(st, rows, k, n_levels, si, known, scratch)
        row_status[k] = 1 if ok else 2
    return n


@dataclass
class ReplayReport:
    """Outcome of a replay: how many rows were compared and matched, and where it failed."""

    message_file: str
    orderbook_file: str
    levels: int
    messages: int
    rows_compared: int
    rows_matched: int
    unseen_order_messages: int
    short_level_messages: int
    stale_levels_dropped: int
    seconds: float
    first_mismatches: list[dict] = field(default_factory=list)

    @property
    def all_matched(self) -> bool:
        """True when every compared row matched."""
        return self.rows_compared == self.rows_matched

    @property
    def messages_per_second(self) -> float:
        """Replay throughput (messages applied and rows compared per second)."""
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


def replay(message_file: str | Path, orderbook_file: str | Path, max_mismatches: int = 5) -> ReplayReport:
    """Rebuild the book from ``message_file`` and check it against ``orderbook_file``."""
    msg = load_messages(message_file)
    rows = load_orderbook(orderbook_file)
    if len(rows) != len(msg):
        raise LobsterError(
            f"{orderbook_file}: {len(rows)} rows, but {message_file} has {len(msg)} messages; "
            "row k of the orderbook file must be the book after message k"
        )
    if len(msg) == 0:
        raise LobsterError(f"{message_file}: no messages")
    n_levels = rows.shape[1] // 4
    ops = messages_to_ops(msg)
    _run(ops[:2], rows[:2], n_levels)  # load (or compile) the kernels outside the timing
    t0 = time.perf_counter()
    status, counters, _ = _run(ops, rows, n_levels)
    seconds = time.perf_counter() - t0
    first = []
    for k in np.flatnonzero(status == 2)[:max_mismatches].tolist():
        _, _, book = _run(ops[: k + 1], rows[: k + 1], n_levels)  # our book right after message k
        depth = n_levels + 2
        first.append(
            {
                "line": k + 1,
                "message": {
                    c: int(getattr(msg, a)[k])
                    for c, a in zip(MESSAGE_COLUMNS, ("ts_ns", "type", "order_id", "size", "price", "direction"), strict=True)
                },
                "expected": {"asks": _row_levels(rows[k], 0), "bids": _row_levels(rows[k], 2)},
                "got": {"asks": book.l2(depth).asks, "bids": book.l2(depth).bids},
            }
        )
    return ReplayReport(
        message_file=str(message_file),
        orderbook_file=str(orderbook_file),
        levels=n_levels,
        messages=len(msg),
        rows_compared=int((status > 0).sum()),
        rows_matched=int((status == 1).sum()),
        unseen_order_messages=int(counters[0]),
        short_level_messages=int(counters[1]),
        stale_levels_dropped=int(counters[2]),
        seconds=seconds,
        first_mismatches=first,
    )


def _run(ops: np.ndarray, rows: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray, OrderBook]:
    """Run the replay kernel to the end, growing the book whenever it asks."""
    book = OrderBook(order_capacity=1 << 12, level_capacity=1 << 8)
    status = np.zeros(len(ops), np.int8)
    counters = np.zeros(3, np.int64)
    res = np.zeros(1, BOOK_RESULT)
    k = 0
    while True:
        scratch = np.zeros(book.st.lv_key.shape[2] + 1, np.int64)
        k = replay_kernel(book.st, ops, rows, n_levels, k, status, counters, res, K.NO_POSITIONS, scratch)
        if k >= len(ops):
            return status, counters, book
        book.grow_for(orders=2 * n_levels + 2, levels=2 * n_levels + 2)


def _row_levels(row: np.ndarray, off: int) -> list[tuple[int, int]]:
    return [(int(row[4 * j + off]), int(row[4 * j + off + 1])) for j in range(len(row) // 4) if row[4 * j + off + 1] > 0]


__all__ = [
    "LobsterError",
    "Messages",
    "ReplayReport",
    "load_messages",
    "load_orderbook",
    "messages_to_ops",
    "replay",
]
