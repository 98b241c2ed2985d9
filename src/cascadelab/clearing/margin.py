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

import numpy as np
from numba import njit, prange

from cascadelab.clearing.arith import muldiv_ceil, muldiv_floor
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
        """Hyperliquid rule: MMR = half the initial margin rate at max leverage (per tier)."""
        rows = caps or [(None, max_leverage)]
        return cls.from_table([(cap, str(Decimal(1) / (2 * lev)), lev) for cap, lev in rows])

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


# --- the margin scan ---------------------------------------------------------------------
@njit(cache=True, inline="always")
def _tier_of(caps, n_tiers, notional):
    t = 0
    while t < n_tiers - 1 and notional > caps[t]:
        t += 1
    return t


@njit(cache=True, parallel=True)
def margin_scan(
    size,
    cost,
    mark,
    unit,
    caps,
    mmr,
    cum,
    max_lev,
    n_tiers,
    leverage,
    isolated,
    iso_margin,
    bal,
    debt,
    price,
    ratio,
    quote,
    equity,
    maint,
    initial,
    iso_breach,
):
    """Exact margin figures of every account at the given marks and collateral prices.

    Per account: ``equity`` = cross margin balance (haircut collateral, minus debts at full
    value, plus cross unrealized PnL), ``maint`` and ``initial`` = cross maintenance and
    initial margin, ``iso_breach`` = some isolated position is below its own maintenance.
    ``price[a]`` is money units per whole coin of asset ``a`` (1e-8 precision),
    ``ratio[a]`` the collateral ratio in millionths; ``quote`` is the settlement asset.
    """
    n_inst, n_acc = size.shape
    n_assets = bal.shape[0]
    for i in prange(n_acc):
        eq = 0
        mm = 0
        im = 0
        breach = False
        for a in range(n_assets):
            b = bal[a, i]
            if a == quote:
                for k in range(n_inst):
                    b -= iso_margin[k, i]
            if b != 0:
                v = muldiv_floor(b, price[a], MONEY_SCALE)
                if v > 0:
                    v = muldiv_floor(v, ratio[a], RATE_SCALE)
                eq += v
            d = debt[a, i]
            if d != 0:
                eq -= muldiv_ceil(d, price[a], MONEY_SCALE)
        for k in range(n_inst):
            q = size[k, i]
            if q == 0:
                continue
            value = q * mark[k] * unit[k]
            upnl = value - cost[k, i]
            notional = value if value >= 0 else -value
            t = _tier_of(caps[k], n_tiers[k], notional)
            m = muldiv_ceil(notional, mmr[k, t], RATE_SCALE) - cum[k, t]
            lev = min(leverage[k, i], max_lev[k, t])
            if isolated[k, i]:
                if iso_margin[k, i] + upnl < m:
                    breach = True
            else:
                eq += upnl
                mm += m
                im += -((-notional) // lev)
        equity[i] = eq
        maint[i] = mm
        initial[i] = im
        iso_breach[i] = breach


@dataclass
class ScanResult:
    """Output of one margin scan, one entry per account."""

    equity: np.ndarray
    maintenance: np.ndarray
    initial: np.ndarray
    iso_breach: np.ndarray

    @property
    def below_maintenance(self) -> np.ndarray:
        """Accounts to liquidate: cross margin balance below cross maintenance, or an isolated breach."""
        return ((self.maintenance > 0) & (self.equity < self.maintenance)) | self.iso_breach

    @property
    def margin_ratio(self) -> np.ndarray:
        """Maintenance / margin balance (Binance's 'margin ratio'; >= 1 means liquidation)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.maintenance / self.equity.astype(np.float64)
        return np.where(self.equity > 0, r, np.where(self.maintenance > 0, np.inf, 0.0))


__all__ = ["MarginTiers", "ScanResult", "bankruptcy_price", "liquidation_price", "margin_scan", "muldiv_floor"]
