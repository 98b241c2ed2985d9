"""Typed records: every row that crosses a layer boundary, as a NumPy structured dtype.

The same dtypes are read and written inside Numba kernels (``arr[j].price``) and in Python
(``arr["price"]``), and a record array converts to a Polars frame in one call
(:func:`frame`). Defined once here, in the lowest layer, and read by field name
everywhere: no bare column numbers, no dicts, no free-text notes.

Integer codes that records carry (order types, reject reasons, event kinds...) are the
``IntEnum`` classes next to each dtype.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import polars as pl

i1, i2, i4, i8, f8 = np.int8, np.int16, np.int32, np.int64, np.float64


def _dtype(fields: list[tuple[str, type]]) -> np.dtype:
    return np.dtype(fields, align=True)


# --- the order book -------------------------------------------------------------------------
class Side(IntEnum):
    """Order side; the sign is used in arithmetic (a buy adds to a position)."""

    BUY = 1
    SELL = -1


class Op(IntEnum):
    """Kinds of book operation (and of venue request)."""

    LIMIT = 0
    MARKET = 1
    CANCEL = 2
    AMEND = 3
    CANCEL_ALL = 4
    REDUCE = 5  # external size reduction of a resting order (replayed data, e.g. LOBSTER)


class TIF(IntEnum):
    """Time in force of a limit order."""

    GTC = 0
    IOC = 1
    FOK = 2
    POST_ONLY = 3


class STP(IntEnum):
    """Self-trade prevention: what happens when an order would trade against its own owner."""

    NONE = 0  # allow the self trade
    CANCEL_RESTING = 1
    CANCEL_INCOMING = 2
    CANCEL_BOTH = 3


class Status(IntEnum):
    """Outcome of one book operation; anything but OK left the book untouched."""

    OK = 0
    REJECTED_INVALID = 1  # size/price/side/kind out of range
    REJECTED_DUPLICATE_ID = 2
    REJECTED_UNKNOWN_ID = 3
    REJECTED_NOT_OWNER = 4
    REJECTED_POST_ONLY = 5  # post-only order would have taken liquidity
    REJECTED_FOK = 6  # fill-or-kill could not fill in full
    REJECTED_NO_LIQUIDITY = 7  # market order with nothing on the other side


class CancelReason(IntEnum):
    """Why quantity left the book without trading."""

    USER = 0
    IOC_REMAINDER = 1  # unfilled part of IOC / market order, or beyond the protection bound
    FOK = 2
    POST_ONLY = 3
    STP_RESTING = 4
    STP_INCOMING = 5
    AMEND_DOWN = 6
    CANCEL_ALL = 7
    EXTERNAL = 8  # REDUCE operation (replayed data)
    NO_LIQUIDITY = 9
    REDUCE_ONLY = 10  # a reduce-only order that can no longer reduce its owner's position
    LIQUIDATION = 11  # the risk engine cancelled the orders of an account it liquidates
    ADL = 12  # orders of a position closed by auto-deleveraging


FLAG_REDUCE_ONLY = 1
"""Order flag: may only reduce the owner's position (capped at fill time, see the book)."""
FLAG_LIQUIDATION = 2
"""Order flag: sent by the risk engine (no client checks; fills are marked as liquidations)."""
FLAG_UNWIND = 4
"""Order flag, with FLAG_LIQUIDATION: the venue's liquidator selling what it took over."""

BOOK_OP = _dtype(
    [
        ("order_id", i8),
        ("owner", i8),
        ("price", i8),  # limit price in ticks; for MARKET: the protection distance in ticks
        ("qty", i8),  # lots
        ("ts", i8),
        ("kind", i1),  # Op
        ("side", i1),  # Side
        ("tif", i1),  # TIF
        ("stp", i1),  # STP
        ("flags", i4),  # FLAG_*
    ]
)
"""One operation for the book."""

BOOK_RESULT = _dtype([("filled", i8), ("resting", i8), ("cancelled", i8), ("status", i1)])
"""What one book operation did to its own order."""

BOOK_FILL = _dtype(
    [
        ("ts", i8),
        ("maker_id", i8),
        ("taker_id", i8),
        ("maker_owner", i8),
        ("taker_owner", i8),
        ("price", i8),
        ("qty", i8),
        ("aggressor", i1),  # the taker's side
        ("maker_flags", i4),
        ("taker_flags", i4),
    ]
)
"""One trade in one book."""

BOOK_CANCEL = _dtype(
    [
        ("ts", i8),
        ("order_id", i8),
        ("owner", i8),
        ("price", i8),
        ("qty", i8),
        ("side", i1),
        ("reason", i1),  # CancelReason
        ("flags", i4),
    ]
)
"""Quantity that left one book without trading."""


# --- the venue ------------------------------------------------------------------------------
class Reject(IntEnum):
    """Why the venue refused an order (OK: accepted)."""

    OK = 0
    UNKNOWN_INSTRUMENT = 1
    UNKNOWN_ACCOUNT = 2
    ACCOUNT_NOT_NORMAL = 3
    INVALID_SIDE = 4
    INVALID_QUANTITY = 5
    INVALID_PRICE = 6
    OFF_TICK = 7
    OFF_LOT = 8
    BELOW_MIN_NOTIONAL = 9
    REDUCE_ONLY_WOULD_INCREASE = 10
    POSITION_LIMIT = 11
    LEVERAGE_EXCEEDS_TIER = 12
    INSUFFICIENT_MARGIN = 13
    INSUFFICIENT_BALANCE = 14
    NO_LIQUIDITY = 15
    POST_ONLY_WOULD_TAKE = 16
    FOK_NOT_FILLABLE = 17
    UNKNOWN_ORDER = 18
    INVALID_REQUEST = 19  # unknown request type, time in force or self-trade mode
    VENUE_UNAVAILABLE = 20  # order entry is down for this account (an outage)
    UNKNOWN_ASSET = 21
    LTV_LIMIT = 22  # a loan or withdrawal would lift the loan-to-value above the initial LTV


class FillKind(IntEnum):
    """What produced a fill."""

    TRADE = 0
    LIQUIDATION = 1  # the taker is a liquidation order of the risk engine
    UNWIND = 2  # the venue's liquidator selling what it took over
    TAKEOVER = 3  # a position moved to the liquidator at the mark (no book)
    ADL = 4  # a position closed against a bankrupt one by auto-deleveraging (no book)
    AUCTION = 5  # the opening auction that books a population's positions before a run (no fee)


ORDER_REQUEST = _dtype(
    [
        ("ts", i8),  # client time stamp (ns); requests are processed in time order
        ("account", i8),
        ("order_id", i8),  # for CANCEL / AMEND: the order; else 0 (the venue assigns ids)
        ("price", i8),  # ticks (LIMIT / AMEND); ignored for MARKET
        ("qty", i8),  # lots
        ("instrument", i4),  # venue instrument index (perpetuals first, then spot pairs)
        ("flags", i4),  # FLAG_REDUCE_ONLY
        ("kind", i1),  # Op: LIMIT, MARKET, CANCEL, AMEND, CANCEL_ALL
        ("side", i1),
        ("tif", i1),
        ("stp", i1),
    ]
)
"""An order request from a client (or the risk engine) to the venue."""

ACK = _dtype(
    [
        ("ts", i8),
        ("request", i8),  # index of the request in its batch
        ("order_id", i8),
        ("account", i8),
        ("filled", i8),
        ("resting", i8),
        ("cancelled", i8),
        ("instrument", i4),
        ("reason", i2),  # Reject
    ]
)
"""The venue's answer to one request."""

FILL = _dtype(
    [
        ("ts", i8),
        ("maker_order", i8),
        ("taker_order", i8),
        ("maker_account", i8),
        ("taker_account", i8),
        ("price", i8),
        ("qty", i8),
        ("maker_fee", i8),  # money units of the quote asset; negative = rebate
        ("taker_fee", i8),
        ("maker_pnl", i8),  # realized PnL of the fill (perpetuals), money units
        ("taker_pnl", i8),
        ("instrument", i4),
        ("aggressor", i1),  # the taker's side
        ("kind", i1),  # FillKind
    ]
)
"""One settled trade (or takeover / ADL transfer) at the venue."""

TRADE = _dtype(
    [
        ("ts", i8),
        ("price", i8),  # ticks
        ("qty", i8),  # lots
        ("instrument", i4),
        ("aggressor", i1),  # the taker's side
        ("kind", i1),  # FillKind (liquidations are public on real venues)
    ]
)
"""One public trade: a fill without its owners (the venue's public tape)."""

CANCEL = _dtype(
    [
        ("ts", i8),
        ("order_id", i8),
        ("account", i8),
        ("price", i8),
        ("qty", i8),
        ("instrument", i4),
        ("side", i1),
        ("reason", i1),  # CancelReason
    ]
)
"""Quantity that left a venue book without trading."""


class AccountOp(IntEnum):
    """Kinds of account request: money in and out of the venue, loans."""

    DEPOSIT = 0  # from the client's wallet outside the venue (e.g. a margin top-up)
    WITHDRAW = 1  # to the client's wallet outside the venue
    BORROW = 2  # from the venue's lending pool, within the initial LTV
    REPAY = 3  # to the lending pool, at most the debt


ACCOUNT_REQUEST = _dtype(
    [
        ("ts", i8),  # client time stamp (ns); processed in time order with the order requests
        ("account", i8),
        ("amount", i8),  # money units of the asset (> 0)
        ("asset", i2),  # the clearing house's asset index
        ("kind", i1),  # AccountOp
    ]
)
"""A request to move money in or out of an account, or to borrow or repay."""

ACCOUNT_ACK = _dtype([("ts", i8), ("request", i8), ("account", i8), ("amount", i8), ("reason", i2)])
"""The venue's answer to one account request: the amount done (a repayment is capped at the debt) or a Reject."""


class AccountType(IntEnum):
    """Who holds an account (recorded with every event, never read by the venue)."""

    VENUE = 0  # the liquidator and other venue accounts
    RETAIL = 1
    LOOPER = 2
    FUND = 3
    MARKET_MAKER = 4
    ARBITRAGEUR = 5
    NOISE = 6


# --- the ledger -----------------------------------------------------------------------------
class Kind(IntEnum):
    """What a journal entry is for."""

    DEPOSIT = 1
    WITHDRAW = 2
    TRADE_FEE = 3
    REALIZED_PNL = 4
    FUNDING = 5
    SPOT_TRADE = 6
    LIQUIDATION_FEE = 7
    INSURANCE = 8
    BAD_DEBT = 9
    ADL = 10
    LOAN = 11
    REPAY = 12
    INTEREST = 13
    FUND_SEED = 14
    TAKEOVER = 15


JOURNAL = _dtype([("ts", i8), ("src", i8), ("dst", i8), ("amount", i8), ("asset", i2), ("kind", i1)])
"""One double-entry transfer: ``amount`` of ``asset`` from ``src`` to ``dst`` (system accounts < 0)."""


# --- the risk engine ------------------------------------------------------------------------
class Ev(IntEnum):
    """Kinds of liquidation event."""

    LIQUIDATION_START = 1
    ORDERS_CANCELLED = 2
    LIQUIDATION_ORDER = 3
    LIQUIDATION_FILL = 4
    CLEARANCE_FEE = 5
    COMPLIANT = 6
    TAKEOVER = 7
    COLLATERAL_TAKEN = 8
    DEBT_TAKEN = 9
    FUND_IN = 10
    FUND_OUT = 11
    ADL_TRIGGER = 12  # amount = the loss to cover; pnl = what the fund takes on (for the liquidator's carried
    # loss, a commitment: the fund is debited only when that loss is realized by the unwind, so its
    # balance need not move at the trigger); the rest is closed by ADL
    ADL_CLOSE = 13
    BAD_DEBT = 14
    UNWIND_ORDER = 15
    UNWIND_FILL = 16


class Why(IntEnum):
    """The reason an event happened (the ``reason`` field of a liquidation event)."""

    NONE = 0
    BELOW_MAINTENANCE = 1  # cross margin balance below maintenance
    ISOLATED_BELOW_MAINTENANCE = 2
    LTV_ABOVE_LIQUIDATION = 3  # loan-to-value above the liquidation LTV
    STYLE_TAKES_OVER = 4  # the profile takes over at once (BitMEX)
    BACKSTOP = 5  # equity below the backstop fraction of maintenance (Hyperliquid)
    BOOK_COULD_NOT_RESTORE = 6  # tier 1 left the account below maintenance
    REMAINING_MARGIN = 7  # a taken-over account's positive remainder goes to the fund
    DEFICIT_COVERED = 8  # the fund pays a deficit
    LIQUIDATOR_RESULT = 9  # the liquidator's gains or losses from unwinding
    TRIGGER_INSUFFICIENT = 10  # ADL: the fund cannot cover
    TRIGGER_DRAWDOWN = 11  # ADL: the fund would fall below its drawdown floor
    TRIGGER_NEGATIVE_EQUITY = 12  # ADL: the account's value is negative (Hyperliquid)
    TRIGGER_NONE = 16  # ADL would be needed but the profile's trigger forbids it (the rest is socialized)
    COLLATERAL = 13  # an unwind of collateral rather than a position
    VAULT_SHORTFALL = 14  # the vault's balance would be negative
    PARTIAL_CHUNK = 15  # a partial liquidation order (Hyperliquid 20% rule)


FUND_NONE = -1
"""``fund`` field of an event that involves no insurance fund."""

LIQ_EVENT = _dtype(
    [
        ("ts", i8),
        ("account", i8),
        ("qty", i8),
        ("price", i8),
        ("amount", i8),  # money units (fees, fund flows, deficits, equity)
        ("pnl", i8),  # realized PnL (fills, ADL closes) or the part a fund pays or commits (ADL trigger)
        ("fund_balance", i8),  # the fund's (or vault's) balance after the event, where a fund is involved
        ("score", f8),
        ("rank", i4),
        ("instrument", i4),  # venue instrument index, -1 for none
        ("kind", i2),  # Ev
        ("reason", i2),  # Why
        ("fund", i2),  # fund index, FUND_NONE for none
        ("asset", i2),  # asset index, -1 for none
        ("side", i1),
    ]
)
"""One liquidation, takeover, fund, ADL or unwind event."""


def stack(arrays: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Concatenate record arrays of one dtype: one part as it is, several copied as raw bytes into one new array.

    ``np.concatenate`` re-derives a structured dtype once per part (about 15 µs each), which costs
    more than the copy for the small batches agents send and dominates for a run's tens of
    thousands of per-step batches.
    """
    if len(arrays) == 1 and arrays[0].dtype == dtype:
        return arrays[0]
    out = np.zeros(sum(len(a) for a in arrays), dtype)
    raw = out.view(np.uint8)
    j = 0
    for a in arrays:
        if a.dtype != dtype:
            raise ValueError(f"stack: a part has dtype {a.dtype}, expected {dtype}")
        nb = a.nbytes
        raw[j : j + nb] = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
        j += nb
    return out


def sorted_member(x: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``np.isin(x, of)`` for ``of`` sorted ascending: one binary search per element (no sort of both arrays).

    The small, sorted id lists of a hot path (the venue's own accounts) are tested this way
    every step; a list of one is a plain comparison.
    """
    if not len(of):
        return np.zeros(len(x), np.bool_)
    if len(of) == 1:
        return np.asarray(x) == of[0]
    pos = np.minimum(np.searchsorted(of, x), len(of) - 1)
    return of[pos] == x


def empty(dtype: np.dtype, n: int = 0) -> np.ndarray:
    """A zeroed record array of ``n`` rows."""
    return np.zeros(n, dtype)


def _labels() -> dict[np.dtype, dict[str, type[IntEnum]]]:
    return {
        ORDER_REQUEST: {"kind": Op},
        ACK: {"reason": Reject},
        ACCOUNT_REQUEST: {"kind": AccountOp},
        ACCOUNT_ACK: {"reason": Reject},
        FILL: {"kind": FillKind},
        TRADE: {"kind": FillKind},
        CANCEL: {"reason": CancelReason},
        JOURNAL: {"kind": Kind},
        LIQ_EVENT: {"kind": Ev, "reason": Why},
    }


def frame(records: np.ndarray, labels: bool = False) -> pl.DataFrame:
    """A record array as a Polars frame, one column per field.

    Enum codes stay integers unless ``labels``: then the code fields of the venue's record
    types (``kind`` of events, fills, requests and journal entries, ``reason`` of acks,
    cancels and events) become their names as Polars Enum columns, for reading.
    """
    df = pl.from_numpy(np.ascontiguousarray(records))
    if not labels:
        return df
    for name, enum in _labels().get(records.dtype, {}).items():
        names = [m.name for m in enum]
        lookup = {int(m): m.name for m in enum}
        df = df.with_columns(pl.col(name).replace_strict(lookup, default=None, return_dtype=pl.Enum(names)))
    return df


__all__ = [
    "ACCOUNT_ACK",
    "ACCOUNT_REQUEST",
    "ACK",
    "BOOK_CANCEL",
    "BOOK_FILL",
    "BOOK_OP",
    "BOOK_RESULT",
    "CANCEL",
    "FILL",
    "FLAG_LIQUIDATION",
    "FLAG_REDUCE_ONLY",
    "FLAG_UNWIND",
    "FUND_NONE",
    "JOURNAL",
    "LIQ_EVENT",
    "ORDER_REQUEST",
    "STP",
    "TIF",
    "TRADE",
    "AccountOp",
    "AccountType",
    "CancelReason",
    "Ev",
    "FillKind",
    "Kind",
    "Op",
    "Reject",
    "Side",
    "Status",
    "Why",
    "empty",
    "frame",
    "sorted_member",
    "stack",
]
