"""Exact integer arithmetic, written once for the whole project.

Money values fit in int64 (9.2e18 units of 1e-8 = $92B per account), but products such as
``balance x price`` or ``notional x rate`` do not. Everything that multiplies, divides, rounds
or apportions money comes from here:

* :func:`ceil_div`: the project's one rounding rule for charges (a fee, a maintenance
  margin, an amount owed to the venue rounds up, toward the venue);
* :func:`muldiv_floor`, :func:`muldiv_ceil`, :func:`muldiv_trunc`: ``a x b / d`` rounded by a
  stated rule, exact whenever the result fits int64, whatever the intermediate product;
* :func:`muldiv_vec`: the same over an int64 array;
* :func:`largest_remainder`: split an integer total in proportion to integer weights so
  that the parts sum exactly to the total (ties to the lower index);
* :func:`exact_sum`: the sum of an int64 array as a Python int, immune to overflow;
* :func:`wide_add` / :func:`wide_value`: 96-bit balances (two int64 limbs) for system
  accounts whose totals can exceed int64 (the outside world, settlement pools).

The scalar functions are Numba functions, so compiled kernels call them; they work from
Python too.
"""

from __future__ import annotations

import numpy as np

from cascadelab.compiled import kernel, kernel_inline

SMALL_DIVISOR = 3_037_000_499
"""Largest ``d`` with ``d * d`` < 2**63: below it the fast path of :func:`muldiv_floor` is exact."""

_TWO32 = 1 << 32
_MASK32 = _TWO32 - 1


@kernel_inline
def ceil_div(a, b):
    """ceil(a / b) for b > 0: the venue-favouring rounding of an amount owed to the venue."""
    return -((-a) // b)


@kernel
def muldivmod(a, b, d):
    """(floor(a * b / d), (a * b) mod d) for 0 <= a, b and 0 < d, exact whenever the quotient fits int64.

    Below :data:`SMALL_DIVISOR` the product is split so every partial product fits int64; above
    it the 128-bit product is divided by long division (about 128 steps, rarely needed).
    """
    if d <= SMALL_DIVISOR:
        b1 = b // d
        b0 = b - b1 * d
        q = a // d
        r = a - q * d
        t = r * b0
        return a * b1 + q * b0 + t // d, t % d
    ua = np.uint64(a)
    ub = np.uint64(b)
    m = np.uint64(_MASK32)
    s = np.uint64(32)
    a0 = ua & m
    a1 = ua >> s
    b0u = ub & m
    b1u = ub >> s
    p00 = a0 * b0u
    p01 = a0 * b1u
    p10 = a1 * b0u
    p11 = a1 * b1u
    mid = (p00 >> s) + (p01 & m) + (p10 & m)
    lo = (p00 & m) | ((mid & m) << s)
    hi = p11 + (p01 >> s) + (p10 >> s) + (mid >> s)
    ud = np.uint64(d)
    rem = np.uint64(0)
    qu = np.uint64(0)
    one = np.uint64(1)
    for bit in range(127, -1, -1):
        nb = hi >> np.uint64(bit - 64) & one if bit >= 64 else lo >> np.uint64(bit) & one
        top = rem >> np.uint64(63)
        rem = (rem << one) | nb
        if top != np.uint64(0) or rem >= ud:
            rem = rem - ud
            if bit < 64:
                qu = qu | (one << np.uint64(bit))
    return np.int64(qu), np.int64(rem)


@kernel
def muldiv_floor(a, b, d):
    """floor(a * b / d) for any int64 a, b and 0 < d; exact whenever the result fits int64."""
    if d <= SMALL_DIVISOR:
        b1 = b // d
        b0 = b - b1 * d
        q = a // d
        r = a - q * d
        return a * b1 + q * b0 + (r * b0) // d
    q, r = muldivmod(abs(a), abs(b), d)
    if (a < 0) != (b < 0):
        return -q - 1 if r != 0 else -q
    return q


@kernel
def muldiv_ceil(a, b, d):
    """ceil(a * b / d): the venue-favouring rounding of a charge computed as a product."""
    return -muldiv_floor(-a, b, d)


@kernel
def muldiv_trunc(a, b, d):
    """a * b / d rounded toward zero (used to apportion a cost basis)."""
    if (a < 0) != (b < 0):
        return -muldiv_floor(abs(a), abs(b), d)
    return muldiv_floor(abs(a), abs(b), d)


@kernel
def _muldiv_array(a, b, d, ceil, out):
    for j in range(a.shape[0]):
        out[j] = muldiv_ceil(a[j], b, d) if ceil else muldiv_floor(a[j], b, d)


@kernel
def _muldiv_each(a, b, d, ceil, out):
    for j in range(a.shape[0]):
        out[j] = muldiv_ceil(a[j], b[j], d[j]) if ceil else muldiv_floor(a[j], b[j], d[j])


def muldiv_each(a: np.ndarray, b: np.ndarray, d: np.ndarray, ceil: bool = False) -> np.ndarray:
    """Elementwise floor (or ceil) of ``a * b / d`` with a divisor per element (every ``d`` > 0), exact."""
    arrs = [np.ascontiguousarray(np.broadcast_to(x, np.broadcast(a, b, d).shape), np.int64).ravel() for x in (a, b, d)]
    out = np.empty(arrs[0].size, np.int64)
    _muldiv_each(*arrs, bool(ceil), out)
    return out.reshape(np.broadcast(a, b, d).shape)


def muldiv_vec(a: np.ndarray, b: int, d: int, ceil: bool = False) -> np.ndarray:
    """Elementwise floor (or ceil) of ``a * b / d`` over an int64 array, exact (see :func:`muldiv_floor`)."""
    arr = np.ascontiguousarray(a, np.int64)
    out = np.empty(arr.size, np.int64)
    _muldiv_array(arr.ravel(), np.int64(b), np.int64(d), bool(ceil), out)
    return out.reshape(arr.shape)


@kernel_inline
def _before(rem, tiebreak, a, b):
    """Does index ``a`` come before ``b``: larger remainder first, then smaller tiebreak."""
    return rem[a] > rem[b] or (rem[a] == rem[b] and tiebreak[a] < tiebreak[b])


@kernel
def _sift_down(idx, rem, tiebreak, root, n):
    while True:
        child = 2 * root + 1
        if child >= n:
            return
        # a max-heap on "comes later", so the heap's top is the last in order
        if child + 1 < n and _before(rem, tiebreak, idx[child], idx[child + 1]):
            child += 1
        if _before(rem, tiebreak, idx[root], idx[child]):
            idx[root], idx[child] = idx[child], idx[root]
            root = child
        else:
            return


@kernel
def apportion(total, w, tiebreak, out, rem, idx):
    """Compiled :func:`largest_remainder` into ``out`` (``rem``, ``idx``: int64 scratch of the same length).

    ``total`` >= 0, weights >= 0 with an int64 sum; parts sum exactly to ``total`` (all zero
    when the weights are). Units left over go to the largest remainders, ties to the smaller
    ``tiebreak`` (an in-place heapsort of the indices: no allocation).
    """
    n = w.shape[0]
    wsum = 0
    for j in range(n):
        wsum += w[j]
        out[j] = 0
    if n == 0 or wsum == 0 or total == 0:
        return
    left = total
    for j in range(n):
        out[j], rem[j] = muldivmod(w[j], total, wsum)
        left -= out[j]
        idx[j] = j
    if left == 0:
        return
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(idx, rem, tiebreak, start, n)
    for end in range(n - 1, 0, -1):
        idx[0], idx[end] = idx[end], idx[0]
        _sift_down(idx, rem, tiebreak, 0, end)
    for j in range(left):
        out[idx[j]] += 1


def largest_remainder(total: int, weights: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Split ``total`` (>= 0) in proportion to ``weights`` (>= 0) so the parts sum to ``total`` exactly.

    Each part is ``floor(total x w / sum(w))``; the units left over go one each to the largest
    remainders, ties to the smaller ``tiebreak`` value (default: the index). With all weights
    zero nothing can be apportioned and every part is zero (the caller decides what then).
    """
    w = np.ascontiguousarray(weights, np.int64)
    if total < 0 or (w < 0).any():
        raise ValueError("largest_remainder: total and weights must be >= 0")
    if exact_sum(w) > np.iinfo(np.int64).max:
        raise OverflowError("largest_remainder: the weights sum beyond int64")
    tb = np.arange(len(w), dtype=np.int64) if tiebreak is None else np.ascontiguousarray(tiebreak, np.int64)
    out = np.zeros(len(w), np.int64)
    apportion(np.int64(total), w, tb, out, np.zeros(len(w), np.int64), np.zeros(len(w), np.int64))
    return out


def exact_sum(values: np.ndarray) -> int:
    """Exact Python-int sum of an int64 array, immune to int64 overflow of the total."""
    v = np.asarray(values, np.int64)
    hi = v >> 32  # arithmetic shift: floor division by 2**32
    lo = v - (hi << 32)  # 0 <= lo < 2**32
    return (int(hi.sum()) << 32) + int(lo.sum())


@kernel_inline
def wide_add(hi, lo, row, col, amount):
    """Add int64 ``amount`` to the 96-bit value ``hi[row, col] * 2**32 + lo[row, col]`` (0 <= lo < 2**32)."""
    lo[row, col] += amount & _MASK32
    hi[row, col] += amount >> 32
    if lo[row, col] >= _TWO32:
        lo[row, col] -= _TWO32
        hi[row, col] += 1


def wide_value(hi: int, lo: int) -> int:
    """The Python int held by one (hi, lo) pair of :func:`wide_add`."""
    return (int(hi) << 32) + int(lo)
