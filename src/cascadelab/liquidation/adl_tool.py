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
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from cascadelab.liquidation import adl
from cascadelab.units import MONEY_SCALE

REQUIRED = ("account", "symbol", "side", "size", "entry_price", "mark_price", "wallet_balance")
OPTIONAL = ("maintenance_margin", "equity")


class PositionFileError(ValueError):
    """A positions file that cannot be read; the message names the row and column."""


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


def _money(x: Decimal) -> int:
    return int((x * MONEY_SCALE).to_integral_value())


def read_positions(path: str | Path) -> list[Position]:
    """Parse and validate the CSV; every error names the file, row and column."""
    path = Path(path)
    if not path.is_file():
        raise PositionFileError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise PositionFileError(f"{path}: missing column(s) {missing}; required: {list(REQUIRED)}")
        extra = [c for c in cols if c not in REQUIRED + OPTIONAL]
        if extra:
            raise PositionFileError(f"{path}: unknown column(s) {extra}; allowed: {list(REQUIRED + OPTIONAL)}")
        out = []
        for n, rec in enumerate(reader, start=2):

            def num(col: str, positive: bool = False, optional: bool = False, rec=rec, n=n) -> Decimal | None:
                raw = (rec.get(col) or "").strip()
                if optional and raw == "":
                    return None
                try:
                    v = Decimal(raw)
                except InvalidOperation:
                    raise PositionFileError(f"{path}: row {n}, column {col!r}: {raw!r} is not a number") from None
                if not v.is_finite() or (positive and v <= 0):
                    raise PositionFileError(f"{path}: row {n}, column {col!r}: {raw!r} must be a number > 0")
                return v

            side_raw = (rec.get("side") or "").strip().lower()
            if side_raw not in ("long", "short"):
                raise PositionFileError(f"{path}: row {n}, column 'side': {side_raw!r} must be 'long' or 'short'")
            symbol = (rec.get("symbol") or "").strip().upper()
            if not symbol:
                raise PositionFileError(f"{path}: row {n}, column 'symbol': must not be empty")
            maint, equity = num("maintenance_margin", optional=True), num("equity", optional=True)
            out.append(
                Position(
                    n,
                    (rec.get("account") or "").strip(),
                    symbol,
                    1 if side_raw == "long" else -1,
                    num("size", positive=True),
                    num("entry_price", positive=True),
                    num("mark_price", positive=True),
                    _money(num("wallet_balance")),
                    None if maint is None else _money(maint),
                    None if equity is None else _money(equity),
                )
            )
    if not out:
        raise PositionFileError(f"{path}: no positions")
    return out


def rank_positions(positions: list[Position], venue: str) -> list[dict[str, object]]:
    """Score, rank, quantile (0-4) and lights (1-5) of every position under ``venue``'s rule."""
    from cascadelab.venue.profiles import profile

    p = profile(venue)
    ranking = p.liquidation["adl_ranking"].value
    upnl_by_account: dict[str, int] = {}
    for pos in positions:
        upnl = _money(pos.side * pos.size * (pos.mark - pos.entry))
        upnl_by_account[pos.account] = upnl_by_account.get(pos.account, 0) + upnl
    results: list[dict[str, object]] = []
    groups: dict[tuple[str, int], list[Position]] = {}
    for pos in positions:
        groups.setdefault((pos.symbol, pos.side), []).append(pos)
    for (symbol, side), group in groups.items():
        base = symbol.removesuffix("USDT").removesuffix("USDC")
        tiers = p.tiers_for(base)
        mark_n = np.array([_money(side * g.size * g.mark) for g in group], np.int64)
        entry_n = np.array([_money(side * g.size * g.entry) for g in group], np.int64)
        maint = np.array(
            [g.maint if g.maint is not None else tiers.maintenance(abs(int(mn))) for g, mn in zip(group, mark_n, strict=True)],
            np.int64,
        )
        wallet = np.array([g.wallet for g in group], np.int64)
        equity = np.array([g.equity if g.equity is not None else g.wallet + upnl_by_account[g.account] for g in group], np.int64)
        idx = np.arange(len(group))
        c = adl.Candidates(
            idx, np.array([side * int(g.size * 10**8) for g in group], np.int64), entry_n, mark_n, wallet, maint, equity
        )
        s = adl.scores(ranking, c)
        if ranking == "pro_rata":
            s = np.abs(c.size).astype(np.float64)
        q = adl.quantiles(s, idx)
        rank = np.empty(len(group), np.int64)
        rank[adl.order(s, idx)] = np.arange(1, len(group) + 1)
        for j, g in enumerate(group):
            results.append(
                {
                    "row": g.row,
                    "account": g.account,
                    "symbol": symbol,
                    "side": "long" if side > 0 else "short",
                    "venue": venue,
                    "ranking": ranking,
                    "score": float(s[j]),
                    "rank": int(rank[j]),
                    "of": len(group),
                    "quantile": int(q[j]),
                    "lights": int(q[j]) + 1,
                }
            )
    return sorted(results, key=lambda r: r["row"])
