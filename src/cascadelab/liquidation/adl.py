"""Auto-deleveraging: who is closed first when a bankrupt position cannot be absorbed.

Every ranking takes, per candidate position on the side opposite the bankrupt one, the
same few figures (all money in one unit, e.g. 1e-8 USDT; sizes in lots, signed):

* ``size``, ``entry_notional`` (signed cost), ``mark_notional`` (signed size x mark),
* ``upnl`` = mark_notional - entry_notional,
* ``wallet`` (cross wallet balance, or the isolated margin), ``maint`` (the position's
  maintenance margin), ``equity`` (the margin balance backing the position).

Scores (higher = deleveraged first; ties go to the lower account id):

* ``binance``: PnL% = max(0, upnl) / max(1 unit of quote, wallet); margin ratio =
  maint / (wallet + upnl), 0 when that is <= 0; score = PnL% x margin ratio (Binance FAQ).
* ``bitmex``: PnL% = upnl / |entry|; effective leverage = |mark notional| / equity;
  score = PnL% x lev if PnL% > 0 else PnL% / lev (BitMEX, and the form the sources quote).
* ``hyperliquid``: (mark / entry) x (|notional| / account value) for longs; for shorts we use
  entry / mark so that profit ranks first on both sides (the docs give only the long form).
* ``pnl_pct``: upnl / |entry|.
* ``pro_rata``: no ranking; every candidate gives up the same fraction of its size.
* ``water_filling``: Campbell, Hey, Moallemi & Nutz (2026): cut the most levered first down to
  a common leverage; the score is leverage = |mark notional| / equity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascadelab.units import MONEY_SCALE

RANKINGS = ("binance", "bitmex", "hyperliquid", "pnl_pct", "pro_rata", "water_filling")


class AdlError(ValueError):
    """An unknown ranking or inconsistent inputs."""


@dataclass
class Candidates:
    """The positions that can be deleveraged, one entry each (see module docstring)."""

    account: np.ndarray
    size: np.ndarray
    entry_notional: np.ndarray
    mark_notional: np.ndarray
    wallet: np.ndarray
    maint: np.ndarray
    equity: np.ndarray

    @property
    def upnl(self) -> np.ndarray:
        """Unrealized PnL of each position."""
        return self.mark_notional - self.entry_notional


def scores(ranking: str, c: Candidates, quote_unit: int = MONEY_SCALE) -> np.ndarray:
    """ADL score of every candidate under ``ranking`` (float: used only to order positions)."""
    entry = np.abs(c.entry_notional.astype(np.float64))
    mark = c.mark_notional.astype(np.float64)
    upnl = c.upnl.astype(np.float64)
    wallet = c.wallet.astype(np.float64)
    equity = c.equity.astype(np.float64)
    safe_entry = np.where(entry > 0, entry, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if ranking == "binance":
            pnl_pct = np.maximum(0.0, upnl) / np.maximum(float(quote_unit), wallet)
            base = wallet + upnl
            ratio = np.where(base > 0, c.maint.astype(np.float64) / np.where(base > 0, base, 1.0), 0.0)
            return pnl_pct * ratio
        if ranking == "bitmex":
            pnl_pct = upnl / safe_entry
            lev = np.where(equity > 0, np.abs(mark) / np.where(equity > 0, equity, 1.0), np.inf)
            return np.where(pnl_pct > 0, pnl_pct * lev, np.where(np.isinf(lev), 0.0, pnl_pct / lev))
        if ranking == "hyperliquid":
            long = c.size > 0
            ratio = np.where(long, np.abs(mark) / safe_entry, safe_entry / np.where(mark != 0, np.abs(mark), 1.0))
            lev = np.where(equity > 0, np.abs(mark) / np.where(equity > 0, equity, 1.0), np.inf)
            return ratio * lev
        if ranking == "pnl_pct":
            return upnl / safe_entry
        if ranking == "pro_rata":
            return np.zeros(len(c.account))
        if ranking == "water_filling":
            return np.where(equity > 0, np.abs(mark) / np.where(equity > 0, equity, 1.0), np.inf)
    raise AdlError(f"unknown ADL ranking {ranking!r}; choose one of {RANKINGS}")


def order(score: np.ndarray, account: np.ndarray) -> np.ndarray:
    """Indices from first to last deleveraged: score descending, then account id ascending."""
    return np.lexsort((account, -score))


def allocate(ranking: str, c: Candidates, quantity: int, price_value: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lots to take from each candidate to absorb ``quantity`` lots; returns (cuts, scores).

    Ranked rules take whole positions in order; ``pro_rata`` takes the same fraction from
    everyone (largest remainder, ties to the lower id); ``water_filling`` lowers the
    leverage of the most levered down to a common level (lots rounded up in rank order so
    the total is exact). ``price_value`` (money per lot at mark) is needed for water-filling.
    """
    quantity = int(quantity)
    size = np.abs(c.size).astype(np.int64)
    s = scores(ranking, c)
    cuts = np.zeros(len(size), np.int64)
    total = int(size.sum())
    if quantity <= 0 or total == 0:
        return cuts, s
    quantity = min(quantity, total)
    if ranking == "pro_rata":
        exact = size * quantity
        cuts = exact // total
        rest = quantity - int(cuts.sum())
        frac = exact % total
        idx = np.lexsort((c.account, -frac))[:rest]
        cuts[idx] += 1
        return cuts, s
    if ranking == "water_filling":
        if price_value is None or price_value <= 0:
            raise AdlError("water_filling needs the value of one lot at mark")
        equity = np.maximum(c.equity.astype(np.float64), 1.0)
        lev = size * price_value / equity
        # find the common leverage L with sum(max(0, size - L * equity / price_value)) = quantity
        lo, hi = 0.0, float(lev.max())
        for _ in range(200):
            mid = (lo + hi) / 2
            taken = np.maximum(0.0, size - mid * equity / price_value).sum()
            if taken > quantity:
                lo = mid
            else:
                hi = mid
        want = np.minimum(size, np.floor(np.maximum(0.0, size - hi * equity / price_value))).astype(np.int64)
        rest = quantity - int(want.sum())
        for j in order(lev, c.account):  # top up, most levered first, to hit the quantity exactly
            if rest <= 0:
                break
            extra = min(rest, int(size[j] - want[j]))
            want[j] += extra
            rest -= extra
        return want, lev
    remaining = quantity
    for j in order(s, c.account):
        if remaining <= 0:
            break
        take = min(remaining, int(size[j]))
        cuts[j] = take
        remaining -= take
    return cuts, s


def quantiles(score: np.ndarray, account: np.ndarray) -> np.ndarray:
    """ADL quantile 0-4 of each position among its peers: 4 = the top 20% (first in line)."""
    n = len(score)
    if n == 0:
        return np.zeros(0, np.int64)
    rank = np.empty(n, np.int64)
    rank[order(score, account)] = np.arange(n)  # 0 = first in line
    # share of positions at or behind this one, in fifths: the first in line is in the top fifth
    return ((5 * (n - rank) + n - 1) // n - 1).astype(np.int64)


def lights(q: np.ndarray) -> np.ndarray:
    """Indicator lights 1-5 shown to traders (quantile + 1)."""
    return q + 1
