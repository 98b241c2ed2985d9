"""Integer codes shared by the fast book, the reference book and their callers.

Operations travel to the book as rows of an ``int64`` array (columns ``C_*``); fills and
cancellations come back as rows of ``int64`` arrays (columns ``F_*`` and ``X_*``). Plain
integers keep the hot path free of Python objects.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    """Order side; the sign is used in arithmetic (a buy adds to a position)."""

    BUY = 1
    SELL = -1


class Op(IntEnum):
    """Kinds of book operation."""

    LIMIT = 0
    MARKET = 1
    CANCEL = 2
    AMEND = 3
    CANCEL_ALL = 4
    REDUCE = 5  # external size reduction of a resting order (LOBSTER partial cancel/execution)


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
    """Outcome of one operation; anything but OK left the book untouched."""

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


FLAG_REDUCE_ONLY = 1
"""Bit in the op's flags column; carried for the venue, ignored by matching."""

# op columns
C_KIND, C_ID, C_OWNER, C_SIDE, C_PRICE, C_QTY, C_TIF, C_STP, C_FLAGS, C_TS = range(10)
N_OP_COLS = 10
# fill columns
F_TS, F_MAKER_ID, F_TAKER_ID, F_MAKER_OWNER, F_TAKER_OWNER, F_PRICE, F_QTY, F_AGGRESSOR = range(8)
N_FILL_COLS = 8
# cancel columns
X_TS, X_ID, X_OWNER, X_SIDE, X_PRICE, X_QTY, X_REASON = range(7)
N_CANCEL_COLS = 7
# result columns (one row per op)
R_STATUS, R_FILLED, R_RESTING, R_CANCELLED = range(4)
N_RESULT_COLS = 4
