"""Exact integer arithmetic that never overflows int64 in its intermediate steps.

Money values fit in int64 (9.2e18 units of 1e-8 = $92B per account), but products such as
``balance x price`` or ``notional x rate`` do not. These helpers split operands so that each
partial product stays below the magnitude of the final result, and they round by a stated
rule. They are Numba functions so the margin scan can use them; they work from Python too.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def muldiv_floor(a, b, d):
    """floor(a * b / d) for any int a, b >= 0, d > 0; exact while the result fits int64."""
    b1 = b // d
    b0 = b - b1 * d
    q = a // d
    r = a - q * d
    return a * b1 + q * b0 + (r * b0) // d


@njit(cache=True, inline="always")
def muldiv_ceil(a, b, d):
    """ceil(a * b / d) for any int a, b >= 0, d > 0 (the venue-favouring rounding of a charge)."""
    return -muldiv_floor(-a, b, d)


@njit(cache=True, inline="always")
def muldiv_trunc(a, b, d):
    """a * b / d rounded toward zero (used to apportion a cost basis)."""
    if a >= 0:
        return muldiv_floor(a, b, d)
    return -muldiv_floor(-a, b, d)


def exact_sum(values: np.ndarray) -> int:
    """Exact Python-int sum of an int64 array, immune to int64 overflow of the total."""
    v = np.asarray(values, np.int64)
    hi = v >> 32  # arithmetic shift: floor division by 2**32
    lo = v - (hi << 32)  # 0 <= lo < 2**32
    return (int(hi.sum()) << 32) + int(lo.sum())
