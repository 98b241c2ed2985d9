"""Maker/taker fees, exact, with the project's one rounding rule for charges.

``fee = ceil(notional x rate / RATE_SCALE)``: a positive fee (paid by the trader) rounds up,
a negative fee (a maker rebate, paid to the trader) rounds toward zero. Both favour the
venue, so the venue never pays out a fraction it did not collect. Compiled code calls
:func:`cascadelab.arith.muldiv_ceil` with the same arguments.
"""

from __future__ import annotations

import numpy as np

from cascadelab.arith import muldiv_ceil, muldiv_vec
from cascadelab.units import RATE_SCALE


def fee(notional: int, rate: int) -> int:
    """Fee in money units owed by the trader on ``notional`` at ``rate`` (millionths); rebates are negative."""
    return int(muldiv_ceil(int(notional), int(rate), RATE_SCALE))


def fees_vectorized(notional: np.ndarray, rate: int) -> np.ndarray:
    """:func:`fee` over an int64 array, exact."""
    return muldiv_vec(notional, int(rate), RATE_SCALE, ceil=True)
