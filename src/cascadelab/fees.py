"""Maker/taker fees on fills, as exact integers with the project's one rounding rule.

``fee = round_to_venue(notional * rate / RATE_SCALE)``: a positive fee (paid by the
trader) rounds up, a negative fee (a maker rebate, paid to the trader) rounds toward
zero. Both favour the venue, so the venue never pays out a fraction it did not collect.
"""

from __future__ import annotations

import numpy as np

from cascadelab.book.codes import F_PRICE, F_QTY
from cascadelab.instruments import Instrument
from cascadelab.units import RATE_SCALE, round_to_venue


def fee(notional: int, rate: int) -> int:
    """Fee in money units owed by the trader on ``notional`` at ``rate`` (millionths)."""
    return round_to_venue(int(notional) * int(rate), RATE_SCALE)


def fees_vectorized(notional: np.ndarray, rate: int) -> np.ndarray:
    """:func:`fee` over an int64 array, exact without int64 overflow.

    The notional is split as ``hi * RATE_SCALE + lo`` so that neither product can overflow.
    """
    notional = np.asarray(notional, np.int64)
    hi, lo = np.divmod(notional, RATE_SCALE)
    return hi * rate + -((-(lo * rate)) // RATE_SCALE)


def fill_fees(instrument: Instrument, fills: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(notional, maker fee, taker fee) per fill row, in money units of the quote asset."""
    notional = fills[:, F_PRICE] * fills[:, F_QTY] * instrument.unit_notional
    return notional, fees_vectorized(notional, instrument.maker_rate), fees_vectorized(notional, instrument.taker_rate)
