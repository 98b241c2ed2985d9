"""Margin: tiered maintenance and initial margin, liquidation and bankruptcy prices, the scan.

Tiers follow Binance and Hyperliquid: a position whose notional lies in
``(floor_n, cap_n]`` pays ``MM = notional x MMR_n - cum_n`` with
``cum_n = floor_n x (MMR_n - MMR_{n-1}) + cum_{n-1}``, which makes MM continuous in the
notional. Initial margin is ``notional / leverage`` with leverage capped by the tier.

All money is integer (1e-8 of the quote asset); charges round toward the venue (MM and
IM up). The liquidation and bankruptcy price formulas return exact fractions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from cascadelab.arith import ceil_div, muldiv_ceil, muldiv_floor
from cascadelab.compiled import kernel, kernel_inline
from cascadelab.units import MONEY_SCALE, RATE_SCALE, money_to_units, rate_to_units

INT64_MAX = np.iinfo(np.int64).max


class MarginError(ValueError):
    """An invalid margin table; the message names the tier and field."""


@dataclass(frozen=True)
class MarginTiers:
    """Notional brackets of one instrument; ``caps`` in money units, the last is unbounded."""

    caps: tuple[int, ...]
    mmr: tuple[int, ...]  # millionths
    max_leverage: tuple[int, ...]
    cum: tuple[int, ...]

    @classmethod
    def from_table(cls, rows: list[tuple[str | None, str, int]], what: str = "margin tiers") -> MarginTiers:
        """Build from ``[(cap in quote units or None for the last, MMR as a fraction, max leverage), ...]``."""
        if not rows:
            raise MarginError(f"{what}: at least one tier is needed")
        caps, mmrs, levs, cums = [], [], [], []
        prev_cap, prev_mmr, cum = 0, 0, 0
        for n, (cap, mmr, lev) in enumerate(rows, start=1):
            c = INT64_MAX if cap is None else money_to_units(cap, f"{what} tier {n} cap")
            if cap is None and n != len(rows):
                raise MarginError(f"{what} tier {n}: only the last tier may be unbounded")
            if c <= prev_cap:
                raise MarginError(f"{what} tier {n}: cap must exceed the previous tier's cap")
            m = rate_to_units(mmr, f"{what} tier {n} mmr")
            if not 0 < m < RATE_SCALE or m < prev_mmr:
                raise MarginError(f"{what} tier {n}: mmr must be in (0, 1) and not below the previous tier's")
            if not isinstance(lev, int) or lev < 1:
                raise MarginError(f"{what} tier {n}: max_leverage must be an integer >= 1")
            step = prev_cap * (m - prev_mmr)
            if step % RATE_SCALE:
                raise MarginError(f"{what} tier {n}: cum is not a whole money unit")
            cum += step // RATE_SCALE
            caps.append(c)
            mmrs.append(m)
            levs.append(lev)
            cums.append(cum)
            prev_cap, prev_mmr = c, m
        return cls(tuple(caps), tuple(mmrs), tuple(levs), tuple(cums))

    @classmethod
    def hyperliquid(cls, max_leverage: int, caps: list[tuple[str | None, int]] | None = None) -> MarginTiers:
        """Hyperliquid rule: MMR = half the initial margin rate at max leverage (per tier).

        Rates are exact to 1e-6, so a rate such as 1/6 (3x) is rounded up, toward the venue.
        """
        rows = caps or [(None, max_leverage)]
        return cls.from_table([(cap, str(Decimal(-(-RATE_SCALE // (2 * lev))) / RATE_SCALE), lev) for cap, lev in rows])

    def tier(self, notional: int) -> int:
        """Index of the tier that applies to ``notional`` (money units, >= 0)."""
        for n, cap in enumerate(self.caps):
            if notional <= cap:
                return n
        return len(self.caps) - 1

    def maintenance(self, notional: int) -> int:
        """Maintenance margin in money units (0 for a flat position)."""
        notional = abs(int(notional))
        if notional == 0:
            return 0
        n = self.tier(notional)
        return -((-notional * self.mmr[n]) // RATE_SCALE) - self.cum[n]

    def initial(self, notional: int, leverage: int) -> int:
        """Initial margin at ``leverage`` (capped at the tier's maximum)."""
        notional = abs(int(notional))
        lev = min(int(leverage), self.max_leverage[self.tier(notional)])
        return -((-notional) // lev)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(caps, mmr, cum, max_leverage) as int64 arrays for the scan kernel."""
        return (
            np.array(self.caps, np.int64),
            np.array(self.mmr, np.int64),
            np.array(self.cum, np.int64),
            np.array(self.max_leverage, np.int64),
        )


# --- closed-form prices (Binance one-way mode), exact fractions ----------------------------
def liquidation_price(
    wallet: Fraction | Decimal | int,
    tmm_other: Fraction | Decimal | int,
    upnl_other: Fraction | Decimal | int,
    cum: Fraction | Decimal | int,
    side: int,
    size: Fraction | Decimal | int,
    entry: Fraction | Decimal | int,
    mmr: Fraction | Decimal,
) -> Fraction:
    """Binance: LP = (WB - TMM_other + UPNL_other + cum - side*size*entry) / (size*MMR - side*size).

    For an isolated position pass its isolated margin as ``wallet`` and zero for the
    ``*_other`` terms. ``size`` is positive; ``side`` is +1 long, -1 short.
    """
    wb, tmm, up, c, q, e, m = (Fraction(x) for x in (wallet, tmm_other, upnl_other, cum, size, entry, mmr))
    return (wb - tmm + up + c - side * q * e) / (q * m - side * q)


def bankruptcy_price(
    wallet: Fraction | Decimal | int,
    upnl_other: Fraction | Decimal | int,
    side: int,
    size: Fraction | Decimal | int,
    entry: Fraction | Decimal | int,
) -> Fraction:
    """The price at which the margin balance is zero: WB + UPNL_other + side*size*(BP - entry) = 0."""
    wb, up, q, e = (Fraction(x) for x in (wallet, upnl_other, size, entry))
    return e - (wb + up) / (side * q)


# --- exact figures ------------------------------------------------------------------------
def cross_breach(equity: Any, maintenance: Any) -> Any:
    """The cross-margin liquidation test (ints or arrays): below maintenance with positions, or a negative equity.

    A negative margin balance is a deficit whether or not positions remain (a fill below
    the bankruptcy price can leave a flat account negative): it must reach the fund.
    """
    return ((maintenance > 0) & (equity < maintenance)) | (equity < 0)


class MarginParams(NamedTuple):
    """What margin depends on besides the accounts, as arrays for compiled kernels.

    ``marks`` and ``price`` are updated in place by the clearing house; the tier arrays are
    padded to a common length by repeating each instrument's last tier.
    """

    unit: np.ndarray  # (perps,) money per tick-lot
    caps: np.ndarray  # (perps, tiers) notional caps, money
    mmr: np.ndarray  # (perps, tiers) maintenance rates, millionths
    cum: np.ndarray  # (perps, tiers) maintenance amounts, money
    max_lev: np.ndarray  # (perps, tiers)
    n_tiers: np.ndarray  # (perps,)
    marks: np.ndarray  # (perps,) mark price, ticks
    price: np.ndarray  # (assets,) collateral price, money units per whole coin
    ratio: np.ndarray  # (assets,) collateral ratio, millionths
    quote: int  # index of the settlement asset


def margin_params(tiers: list[MarginTiers], units: list[int], ratios: list[int], quote: int) -> MarginParams:
    """Pack tiers, lot values and collateral ratios into :class:`MarginParams` (marks 0, quote priced at 1)."""
    k = len(tiers)
    t = max((len(x.caps) for x in tiers), default=1)
    arrs = [np.zeros((k, t), np.int64) for _ in range(4)]
    for j, tt in enumerate(tiers):
        for dst, src in zip(arrs, tt.arrays(), strict=True):
            dst[j, : len(src)] = src
            dst[j, len(src) :] = src[-1]
    price = np.zeros(len(ratios), np.int64)
    price[quote] = MONEY_SCALE
    return MarginParams(
        np.array(units, np.int64),
        arrs[0],
        arrs[1],
        arrs[2],
        arrs[3],
        np.array([len(x.caps) for x in tiers], np.int64),
        np.zeros(k, np.int64),
        price,
        np.array(ratios, np.int64),
        int(quote),
    )


@kernel_inline
def tier_of(P, k, notional):
    """Index of the tier of instrument ``k`` that applies to ``notional``."""
    t = 0
    while t < P.n_tiers[k] - 1 and notional > P.caps[k, t]:
        t += 1
    return t


@kernel_inline
def position_maintenance(P, k, notional):
    """Maintenance margin of a position of ``notional`` (>= 0) in instrument ``k``, rounded up."""
    if notional == 0:
        return 0
    t = tier_of(P, k, notional)
    return muldiv_ceil(notional, P.mmr[k, t], RATE_SCALE) - P.cum[k, t]


@kernel_inline
def position_initial(P, k, notional, leverage):
    """Initial margin of a position of ``notional`` at ``leverage`` (capped by its tier), rounded up."""
    cap = P.max_lev[k, tier_of(P, k, notional)]
    return ceil_div(notional, leverage if leverage < cap else cap)


@kernel_inline
def collateral_value(P, asset, balance):
    """Margin value of a balance: haircut when positive, full price when negative (rounded down)."""
    v = muldiv_floor(balance, P.price[asset], MONEY_SCALE)
    if v > 0:
        v = muldiv_floor(v, P.ratio[asset], RATE_SCALE)
    return v


@kernel
def account_figures(P, A, bal, i):
    """Exact (cross equity, cross maintenance, cross initial, isolated breach) of account ``i``.

    Cross equity = haircut collateral (the quote balance less isolated margins) minus debts
    at full value (rounded up) plus cross unrealized PnL at the marks. An isolated position
    is in breach when its margin plus its unrealized PnL is below its own maintenance.
    """
    n_inst = A.size.shape[0]
    iso_sum = 0
    for k in range(n_inst):
        if A.isolated[k, i]:
            iso_sum += A.iso_margin[k, i]
    eq = 0
    for a in range(bal.shape[0]):
        b = bal[a, i] - (iso_sum if a == P.quote else 0)
        if b != 0:
            eq += collateral_value(P, a, b)
        d = A.debt[a, i]
        if d != 0:
            eq -= muldiv_ceil(d, P.price[a], MONEY_SCALE)
    mm = 0
    im = 0
    breach = False
    for k in range(n_inst):
        q = A.size[k, i]
        if q == 0:
            continue
        val = q * P.marks[k] * P.unit[k]
        upnl = val - A.cost[k, i]
        notional = val if val >= 0 else -val
        m = position_maintenance(P, k, notional)
        if A.isolated[k, i]:
            if A.iso_margin[k, i] + upnl < m:
                breach = True
        else:
            eq += upnl
            mm += m
            im += position_initial(P, k, notional, A.leverage[k, i])
    return eq, mm, im, breach


@kernel
def loan_to_value(P, A, bal, i):
    """Loan-to-value of account ``i`` in millionths: debts at full value / haircut positive balances.

    0 without debt; int64 max when there is debt but no collateral.
    """
    owed = 0
    coll = 0
    for a in range(bal.shape[0]):
        d = A.debt[a, i]
        if d != 0:
            owed += muldiv_ceil(d, P.price[a], MONEY_SCALE)
        b = bal[a, i]
        if b > 0:
            coll += collateral_value(P, a, b)
    if owed == 0:
        return 0
    if coll <= 0:
        return INT64_MAX
    return muldiv_floor(owed, RATE_SCALE, coll)


@njit(cache=True, parallel=True)
def margin_exact(ids, P, A, bal, equity, maint, initial, iso_breach):
    """:func:`account_figures` of every account in ``ids`` (in parallel)."""
    for j in prange(len(ids)):
        equity[j], maint[j], initial[j], iso_breach[j] = account_figures(P, A, bal, ids[j])


@kernel
def margin_exact_serial(ids, P, A, bal, equity, maint, initial, iso_breach):
    """:func:`margin_exact` on one thread: for a few accounts, waking the other threads costs more than the work."""
    for j in range(len(ids)):
        equity[j], maint[j], initial[j], iso_breach[j] = account_figures(P, A, bal, ids[j])


EXACT_PARALLEL_FROM = 4096
"""Batches of at least this many accounts get their exact figures on every thread."""


PRESCREEN_BAND = 1e-9
"""Relative error band of the float pre-screen. float64 arithmetic over a few dozen terms errs by
well under 1e-14 of their magnitude, so any account the float pass leaves outside this band is
certainly on the same side of maintenance as its exact figures say."""


PRESCREEN_BLOCK = 2048


@njit(cache=True, parallel=True, fastmath=True)
def margin_prescreen(
    n_acc,
    size,
    cost,
    mark,
    unit,
    mmr,
    cum,
    isolated,
    iso_margin,
    bal,
    debt,
    debt_assets,
    price,
    ratio,
    quote,
    equity,
    maint,
    suspect,
):
    """Float estimates of equity and maintenance for every account, and which need an exact look.

    Accounts ``0..n_acc-1`` of capacity-wide (C-contiguous) columns are priced.
    ``suspect[i]`` is set when the account is below maintenance or within
    :data:`PRESCREEN_BAND` of it (cross or any isolated position); only those need
    :func:`margin_exact`. Accounts are processed in blocks with the account loop innermost
    and branch-free so the compiler can use SIMD; each block reads every input through a row
    slice indexed by the loop counter (indexing ``arr[row, lo + j]`` directly defeats the
    vectoriser and runs about four times slower). Maintenance is the maximum over the tier
    lines ``notional x MMR_t - cum_t``, which equals the tiered formula because MM is
    continuous and convex in the notional. Only assets in ``debt_assets`` are read for debts.
    """
    n_inst = size.shape[0]
    n_assets = bal.shape[0]
    pf = price.astype(np.float64) / MONEY_SCALE
    hf = pf * ratio / RATE_SCALE
    vf = mark.astype(np.float64) * unit
    mf = mmr.astype(np.float64) / RATE_SCALE
    cf = cum.astype(np.float64)
    n_t = mmr.shape[1]
    big = 1e300
    n_blocks = (n_acc + PRESCREEN_BLOCK - 1) // PRESCREEN_BLOCK
    for blk in prange(n_blocks):
        lo = blk * PRESCREEN_BLOCK
        w = min(PRESCREEN_BLOCK, n_acc - lo)
        eq = np.zeros(w)
        mm = np.zeros(w)
        mag = np.zeros(w)
        worst = np.full(w, big)
        iso_total = np.zeros(w)
        m = np.empty(w)
        upnl = np.empty(w)
        notional = np.empty(w)
        absvc = np.empty(w)
        for k in range(n_inst):
            vk = vf[k]
            sz = size[k, lo : lo + w]
            cs = cost[k, lo : lo + w]
            m0 = mf[k, 0]
            c0 = cf[k, 0]
            for j in range(w):
                val = sz[j] * vk
                c = np.float64(cs[j])
                upnl[j] = val - c
                notional[j] = abs(val)
                absvc[j] = abs(val) + abs(c)
                m[j] = notional[j] * m0 - c0
            for t in range(1, n_t):
                slope = mf[k, t]
                offset = cf[k, t]
                for j in range(w):
                    m[j] = max(m[j], notional[j] * slope - offset)
            isk = isolated[k, lo : lo + w]
            imk = iso_margin[k, lo : lo + w]
            for j in range(w):
                isf = np.float64(isk[j])
                cross = 1.0 - isf
                im = np.float64(imk[j]) * isf
                iso_total[j] += im
                eq[j] += upnl[j] * cross
                mm[j] += m[j] * cross
                mag[j] += (absvc[j] + m[j]) * cross + abs(im)
                slack = im + upnl[j] - m[j] - PRESCREEN_BAND * (abs(im) + absvc[j] + m[j]) - 1.0 + cross * big
                worst[j] = min(worst[j], slack)
        for a in range(n_assets):
            p = pf[a]
            h = hf[a]
            own = 1.0 if a == quote else 0.0  # isolated margins are earmarked out of the quote balance
            ba = bal[a, lo : lo + w]
            for j in range(w):
                b = np.float64(ba[j]) - own * iso_total[j]
                pos = max(b, 0.0)
                neg = min(b, 0.0)
                eq[j] += pos * h + neg * p
                mag[j] += (pos - neg) * p
        for x in range(len(debt_assets)):
            a = debt_assets[x]
            p = pf[a]
            da = debt[a, lo : lo + w]
            for j in range(w):
                d = np.float64(da[j]) * p
                eq[j] -= d
                mag[j] += d
        eo = equity[lo : lo + w]
        mo = maint[lo : lo + w]
        so = suspect[lo : lo + w]
        for j in range(w):
            eo[j] = eq[j]
            mo[j] = mm[j]
            # exact equity < 0 is within the float error of a float equity below PRESCREEN_BAND x mag (exact when mag is 0)
            so[j] = (
                worst[j] <= 0 or (mm[j] > 0 and eq[j] - mm[j] <= PRESCREEN_BAND * mag[j] + 1.0) or eq[j] < PRESCREEN_BAND * mag[j]
            )


@dataclass
class ScanResult:
    """One margin scan: float estimates for every account, exact figures for the suspects.

    ``below_maintenance`` is exact: an account is below maintenance only if the exact check
    of a suspect says so.
    """

    equity: np.ndarray  # float estimate, money units
    maintenance: np.ndarray  # float estimate, money units
    suspects: np.ndarray  # ids checked exactly
    exact_equity: np.ndarray
    exact_maintenance: np.ndarray
    exact_initial: np.ndarray
    exact_iso_breach: np.ndarray
    n_accounts: int
    prescreen_seconds: float = 0.0

    @property
    def below_maintenance(self) -> np.ndarray:
        """Accounts to liquidate (exact): cross balance below cross maintenance, or an isolated breach."""
        out = np.zeros(self.n_accounts, np.bool_)
        bad = cross_breach(self.exact_equity, self.exact_maintenance) | self.exact_iso_breach
        out[self.suspects[bad]] = True
        return out

    @property
    def margin_ratio(self) -> np.ndarray:
        """Maintenance / margin balance (Binance's 'margin ratio'; >= 1 means liquidation), estimated."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.maintenance / self.equity
        return np.where(self.equity > 0, r, np.where(self.maintenance > 0, np.inf, 0.0))


__all__ = [
    "MarginParams",
    "MarginTiers",
    "ScanResult",
    "account_figures",
    "bankruptcy_price",
    "liquidation_price",
    "loan_to_value",
    "margin_exact",
    "margin_params",
    "margin_prescreen",
    "position_initial",
    "position_maintenance",
]
