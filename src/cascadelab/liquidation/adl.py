"""Auto-deleveraging: who is closed first when a bankrupt position cannot be absorbed.

One scoring function per rule (:func:`scores`), used by the risk engine and by the
``cascadelab adl-rank`` command alike. Every candidate is one position on the side
opposite the bankrupt one, described at two levels (money in one unit, sizes in lots):

* position level: ``size`` (signed), ``entry_notional`` (signed cost), ``mark_notional``
  (signed size x mark), ``upnl`` = mark_notional - entry_notional, ``pos_maint``;
* account level (cross margin; for an isolated position the same fields describe the
  isolated position alone): ``wallet`` (collateral without unrealized PnL, or the isolated
  margin), ``acct_maint`` (maintenance of all cross positions), ``acct_upnl`` (unrealized
  PnL of all cross positions), ``equity`` = wallet + acct_upnl (the margin balance).

Scores (higher = deleveraged first):

* ``binance`` (Binance FAQ "What is Auto-Deleveraging", 2019/2021): PnL% = max(0, position
  unrealized profit) / max(1 unit of quote, wallet balance); margin ratio = maintenance
  margin / (wallet balance + unrealized PnL), 0 when that is <= 0, both account level;
  score = PnL% x margin ratio.
* ``bitmex`` (BitMEX, Auto-Deleveraging): PnL% = (mark value - entry value) / |entry value|;
  effective leverage = |mark value| / (mark value - bankrupt value), the distance to
  bankruptcy being the equity backing the position; score = PnL% x leverage if PnL% > 0,
  else PnL% / leverage. Bybit and OKX rank by the same profit-times-leverage product.
* ``hyperliquid`` (Hyperliquid docs, Auto-deleveraging): (mark price / entry price) x
  (position notional / account value), the same formula for both sides as the docs give it.
* ``pnl_pct``: upnl / |entry|; ``pro_rata``: no order (every position gives up the same
  fraction); ``water_filling`` (Campbell, Hey, Moallemi & Nutz 2026): cut the most levered
  first down to a common leverage; the score is leverage = |mark notional| / equity.

**Who goes first.** Every rule closes profitable positions (upnl > 0) before losing ones:
the venues' documents speak of the "most profitable" or of "users in profit"; a losing
position is reached only when no profitable one is left on that side. Within each group
the rule's score orders positions, ties to the lower account id. A position whose equity is
not positive belongs to an account being liquidated: it is never a candidate in the engine,
and the ``adl-rank`` tool shows it last with no score (its score is ``-inf`` here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascadelab.arith import apportion
from cascadelab.compiled import kernel
from cascadelab.units import MONEY_SCALE

RANKINGS = ("binance", "bitmex", "hyperliquid", "pnl_pct", "pro_rata", "water_filling")


class AdlError(ValueError):
    """An unknown ranking or inconsistent inputs."""


@dataclass
class Candidates:
    """The positions that can be deleveraged, one entry each (see the module docstring for levels)."""

    account: np.ndarray
    size: np.ndarray
    entry_notional: np.ndarray
    mark_notional: np.ndarray
    pos_maint: np.ndarray
    wallet: np.ndarray
    acct_maint: np.ndarray
    acct_upnl: np.ndarray

    @property
    def upnl(self) -> np.ndarray:
        """Unrealized PnL of each position."""
        return self.mark_notional - self.entry_notional

    @property
    def equity(self) -> np.ndarray:
        """Margin balance backing each position (account level, or the isolated position's own)."""
        return self.wallet + self.acct_upnl

    def __len__(self) -> int:
        return len(self.account)


def scores(ranking: str, c: Candidates, quote_unit: int = MONEY_SCALE) -> np.ndarray:
    """Score of every candidate under ``ranking`` (float, only used to order); ``-inf`` where equity <= 0."""
    if ranking not in RANKINGS:
        raise AdlError(f"unknown ADL ranking {ranking!r}; choose one of {RANKINGS}")
    entry = np.abs(c.entry_notional.astype(np.float64))
    mark = np.abs(c.mark_notional.astype(np.float64))
    upnl = c.upnl.astype(np.float64)
    equity = c.equity.astype(np.float64)
    ok = equity > 0
    safe_eq = np.where(ok, equity, 1.0)
    safe_entry = np.where(entry > 0, entry, 1.0)
    if ranking == "binance":
        pnl_pct = np.maximum(0.0, upnl) / np.maximum(float(quote_unit), c.wallet.astype(np.float64))
        s = pnl_pct * (c.acct_maint.astype(np.float64) / safe_eq)
    elif ranking == "bitmex":
        pnl_pct = upnl / safe_entry
        lev = np.where(mark > 0, mark / safe_eq, 1.0)
        s = np.where(pnl_pct > 0, pnl_pct * lev, pnl_pct / np.where(lev > 0, lev, 1.0))
    elif ranking == "hyperliquid":
        s = (mark / safe_entry) * (mark / safe_eq)
    elif ranking == "pnl_pct":
        s = upnl / safe_entry
    elif ranking == "pro_rata":
        s = np.zeros(len(c))
    else:  # water_filling
        s = mark / safe_eq
    return np.where(ok, s, -np.inf)


def order(score: np.ndarray, account: np.ndarray, upnl: np.ndarray) -> np.ndarray:
    """Indices from first to last deleveraged: profitable first, then score descending, then account id.

    Positions whose equity is not positive (score ``-inf``: their account is being liquidated)
    come last, whatever their profit.
    """
    return np.lexsort((account, -score, upnl <= 0, ~np.isfinite(score)))


RULE_RANKED, RULE_PRO_RATA, RULE_WATER_FILLING = 0, 1, 2


def rule_code(ranking: str) -> int:
    """How a ranking allocates: in rank order, pro rata, or by water-filling."""
    return {"pro_rata": RULE_PRO_RATA, "water_filling": RULE_WATER_FILLING}.get(ranking, RULE_RANKED)


def allocate(ranking: str, c: Candidates, quantity: int, remaining: np.ndarray, lot_value: float) -> np.ndarray:
    """Lots to take from each candidate to absorb ``quantity`` lots, given their ``remaining`` sizes.

    Profitable candidates are used first; losing ones only for what they cannot absorb.
    Ranked rules take whole remaining positions in :func:`order`; ``pro_rata`` takes the same
    fraction from every candidate of a group (largest remainder, ties to the lower id);
    ``water_filling`` lowers the most levered to a common leverage (lots rounded down, the
    few left over taken in leverage order). ``lot_value`` is the money value of one lot at
    the mark (water-filling needs it). The cuts never exceed ``remaining``. The risk
    engines call the same compiled :func:`allocate_kernel`.
    """
    n = len(c)
    s = scores(ranking, c)
    idx = np.ascontiguousarray(order(s, c.account, c.upnl), np.int64)
    cuts = np.zeros(n, np.int64)
    allocate_kernel(
        rule_code(ranking), idx, np.ascontiguousarray(c.upnl > 0), np.ascontiguousarray(remaining, np.int64),
        np.ascontiguousarray(c.equity, np.int64), np.ascontiguousarray(c.account, np.int64), int(quantity), float(lot_value),
        cuts, *scratch(n),
    )  # fmt: skip
    return cuts


def scratch(n: int) -> tuple[np.ndarray, ...]:
    """Scratch arrays :func:`allocate_kernel` needs for ``n`` candidates."""
    return (*(np.zeros(n, np.int64) for _ in range(6)), np.zeros(n, np.float64))


@kernel
def allocate_kernel(
    rule, order_idx, profitable, remaining, equity, account, quantity, lot_value, cuts, members, w, tb, out, rem, idx, lev
):
    """Compiled allocation of ``quantity`` lots over candidates (see :func:`allocate`); scratch from :func:`scratch`."""
    n = order_idx.shape[0]
    for j in range(n):
        cuts[j] = 0
    left = quantity
    for grp in range(2):
        want_profit = grp == 0
        if left <= 0:
            break
        m = 0
        total = 0
        for t in range(n):
            j = order_idx[t]
            if profitable[j] == want_profit and remaining[j] > 0:
                members[m] = j
                w[m] = remaining[j]
                tb[m] = account[j]
                total += remaining[j]
                m += 1
        if m == 0:
            continue
        take = min(left, total)
        if rule == RULE_PRO_RATA:
            apportion(take, w[:m], tb[:m], out[:m], rem[:m], idx[:m])
        elif rule == RULE_WATER_FILLING:
            _water_fill(take, w[:m], equity, members[:m], lot_value, out[:m], lev[:m])
        else:
            acc = 0
            for x in range(m):
                out[x] = min(w[x], max(0, take - acc))
                acc += w[x]
        for x in range(m):
            cuts[members[x]] = out[x]
            left -= out[x]


@kernel
def _water_fill(take, size, equity, members, lot_value, out, lev):
    """Cut ``take`` lots so that the most levered positions come down to a common leverage."""
    m = size.shape[0]
    hi = 0.0
    for x in range(m):
        lev[x] = size[x] * lot_value / max(float(equity[members[x]]), 1.0)
        hi = max(hi, lev[x])
    lo = 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        s = 0.0
        for x in range(m):
            s += max(0.0, size[x] - mid * max(float(equity[members[x]]), 1.0) / lot_value)
        if s > take:
            lo = mid
        else:
            hi = mid
    rest = take
    for x in range(m):
        out[x] = min(size[x], np.int64(np.floor(max(0.0, size[x] - hi * max(float(equity[members[x]]), 1.0) / lot_value))))
        rest -= out[x]
    while rest > 0:  # top up, most levered first (ties: earlier in rank order)
        best = -1
        for x in range(m):
            if out[x] < size[x] and (best < 0 or lev[x] > lev[best]):
                best = x
        extra = min(rest, size[best] - out[best])
        out[best] += extra
        rest -= extra


def quantiles(score: np.ndarray, account: np.ndarray, upnl: np.ndarray) -> np.ndarray:
    """ADL quantile 0-4 of each position among its peers: 4 = the top 20% (first in line)."""
    n = len(score)
    if n == 0:
        return np.zeros(0, np.int64)
    rank = np.empty(n, np.int64)
    rank[order(score, account, upnl)] = np.arange(n)  # 0 = first in line
    return ((5 * (n - rank) + n - 1) // n - 1).astype(np.int64)


def lights(q: np.ndarray) -> np.ndarray:
    """Indicator lights 1-5 shown to traders (quantile + 1)."""
    return q + 1
