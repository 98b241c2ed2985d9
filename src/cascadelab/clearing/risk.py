"""Incremental risk: find the accounts below maintenance without rescanning every account every step.

The full scan (:meth:`~cascadelab.clearing.scan.Margins.scan`) prices every account at every
step. Most steps are quiet: prices move a little and few accounts can have crossed. So each
exact check also gives the account a *safe box* of prices:

* every constraint the account can breach has a buffer: cross (equity - maintenance), each
  isolated position (its margin + uPnL - its maintenance), and the loan-to-value
  ((limit + 1 unit) x haircut collateral - debts);
* each buffer falls at most at a known rate per unit of each price: a long loses
  ``size x lot value`` per tick of its mark (its maintenance only falls with it); a short
  loses ``size x lot value x (1 + MMR)`` per tick (taking the MMR of the tier it would reach
  at twice the notional, and never letting the box reach twice the mark); a collateral
  balance loses ``balance x ratio`` per unit of its price; a debt gains ``debt`` per unit;
* the buffer (less a safety margin for rounding) is split evenly over the prices and
  directions it depends on, giving a lower and/or upper trigger price per dimension.

While every price stays strictly inside its triggers, the account cannot have crossed, so
it is not looked at. Per (dimension, direction) the accounts are kept sorted by trigger, so
a step only advances a pointer past the triggers the current price has crossed. Accounts
rechecked since the last rebuild keep their new triggers in a small dense table that is
checked each step; accounts with no safe box (breaching, or with a buffer too thin to
split) are checked every step; accounts whose balances or positions changed (the ledger's
touched list) are checked at once. :meth:`IncrementalRisk.detect` returns exactly the
accounts the full exact scan would name; a differential test checks it on random paths.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from cascadelab.clearing.core import ClearingCore
from cascadelab.clearing.margin import account_figures, loan_to_value, position_maintenance, tier_of
from cascadelab.compiled import kernel

I64_MIN = np.iinfo(np.int64).min
I64_MAX = np.iinfo(np.int64).max
SHRINK = 1.0 - 1e-9
"""Floats only estimate the box; every distance is shrunk by this and by one unit, so it stays conservative."""


@kernel
def _box(P, A, bal, i, liq_ltv, lo, hi):
    """Exact breach of account ``i`` and its safe box (``lo``/``hi`` rows); returns (breach, no_box)."""
    n_perps = A.size.shape[0]
    n_assets = bal.shape[0]
    quote = P.quote
    eq, mm, _im, iso_bad = account_figures(P, A, bal, i)
    has_debt = False
    for a in range(n_assets):
        if A.debt[a, i] > 0:
            has_debt = True
    ltv_bad = has_debt and loan_to_value(P, A, bal, i) > liq_ltv
    breach = (mm > 0 and eq < mm) or eq < 0 or iso_bad or ltv_bad  # margin.cross_breach
    for d in range(n_perps + n_assets):
        lo[d] = I64_MIN
        hi[d] = I64_MAX
    if breach:
        return True, True
    margin = 8.0 + 2.0 * (n_perps + n_assets)  # money units for every rounding in the exact figures
    # cross: equity - maintenance (>= 0 also when there is no maintenance: a negative equity breaches)
    m = 0
    risky = 0  # terms that can take the equity below zero as prices move
    for k in range(n_perps):
        if A.size[k, i] != 0 and not A.isolated[k, i]:
            m += 1
            risky += 1
    for a in range(n_assets):
        if a != quote:
            if bal[a, i] != 0:
                m += 1
                if bal[a, i] < 0:
                    risky += 1
            if A.debt[a, i] > 0:
                m += 1
                risky += 1
    iso_sum = 0
    for k in range(n_perps):
        if A.isolated[k, i]:
            iso_sum += A.iso_margin[k, i]
    if bal[quote, i] - iso_sum - A.debt[quote, i] < 0 and m > 0:
        risky += 1  # isolated margin or a quote debt beyond the quote balance is backed by other collateral, whose price can fall
    if mm > 0 or risky > 0:  # else the cross equity stays >= 0 and there is no maintenance to fall below
        share = (float(eq - mm) - margin) / m
        if share <= 0:
            return False, True
        for k in range(n_perps):
            q = A.size[k, i]
            if q != 0 and not A.isolated[k, i] and not _perp_side(P, k, q, share, lo, hi):
                return False, True
        for a in range(n_assets):
            if a == quote:
                continue
            b = bal[a, i]
            if b > 0 and not _bound(lo, hi, n_perps + a, P.price[a], b * (P.ratio[a] / 1e14), share, -1):
                return False, True
            if b < 0 and not _bound(lo, hi, n_perps + a, P.price[a], -b / 1e8, share, 1):
                return False, True
            d = A.debt[a, i]
            if d > 0 and not _bound(lo, hi, n_perps + a, P.price[a], d / 1e8, share, 1):
                return False, True
    # each isolated position: its margin + uPnL - its maintenance
    for k in range(n_perps):
        q = A.size[k, i]
        if q == 0 or not A.isolated[k, i]:
            continue
        val = q * P.marks[k] * P.unit[k]
        notional = val if val >= 0 else -val
        mk = position_maintenance(P, k, notional)
        share = float(A.iso_margin[k, i] + val - A.cost[k, i] - mk) - margin
        if share <= 0 or not _perp_side(P, k, q, share, lo, hi):
            return False, True
    # loan-to-value: (limit + 1) x collateral - debts x 1e6 (money x 1e6)
    if has_debt:
        coll = 0.0
        owed = 0.0
        m = 0
        for a in range(n_assets):
            if bal[a, i] > 0:
                coll += bal[a, i] * (P.price[a] / 1e8) * (P.ratio[a] / 1e6)
                if a != quote:
                    m += 1
            if A.debt[a, i] > 0:
                owed += A.debt[a, i] * (P.price[a] / 1e8)
                if a != quote:
                    m += 1
        room = (liq_ltv + 1) * coll - 1e6 * owed - 1e6 * margin - 1e-6 * (liq_ltv * coll + 1e6 * owed)
        if room <= 0:
            return False, True
        if m > 0:
            share = room / m
            for a in range(n_assets):
                if a == quote:
                    continue
                b = bal[a, i]
                if b > 0 and not _bound(lo, hi, n_perps + a, P.price[a], (liq_ltv + 1) * b * (P.ratio[a] / 1e14), share, -1):
                    return False, True
                d = A.debt[a, i]
                if d > 0 and not _bound(lo, hi, n_perps + a, P.price[a], 1e6 * d / 1e8, share, 1):
                    return False, True
    return False, False


@kernel
def _perp_side(P, k, q, share, lo, hi):
    """Bound mark ``k`` for a position of ``q`` lots given its share of a buffer; False if there is no room."""
    mark = P.marks[k]
    if q > 0:
        return _bound(lo, hi, k, mark, q * float(P.unit[k]), share, -1)
    notional2 = -2 * q * mark * P.unit[k]
    slope = -q * float(P.unit[k]) * (1.0 + P.mmr[k, tier_of(P, k, notional2)] / 1e6)
    ok = _bound(lo, hi, k, mark, slope, share, 1)
    if ok and hi[k] > 2 * mark:
        hi[k] = 2 * mark
    return ok


@kernel
def _bound(lo, hi, d, p0, slope, share, direction):
    """Tighten dimension ``d``'s trigger on ``direction`` (-1 down, +1 up); False when the room is under one unit."""
    if slope <= 0:
        return True
    dist = np.floor(share / slope * SHRINK) - 1.0
    if dist < 1.0:
        return False
    step = np.int64(min(dist, 4e18))
    if direction < 0:
        t = p0 - step
        if t > lo[d]:
            lo[d] = t
    else:
        t = p0 + step if p0 < I64_MAX - step else I64_MAX
        if t < hi[d]:
            hi[d] = t
    return True


@njit(cache=True, parallel=True)
def boxes(P, A, bal, ids, liq_ltv, lo, hi, breach, no_box):
    """:func:`_box` for every account in ``ids`` (in parallel): exact breach, no-box flag, trigger rows."""
    for j in prange(ids.shape[0]):
        b, nb = _box(P, A, bal, ids[j], liq_ltv, lo[j], hi[j])
        breach[j] = b
        no_box[j] = nb


@kernel
def boxes_serial(P, A, bal, ids, liq_ltv, lo, hi, breach, no_box):
    """:func:`boxes` on one thread: for the few accounts of a quiet step, waking threads costs more than the work."""
    for j in range(ids.shape[0]):
        b, nb = _box(P, A, bal, ids[j], liq_ltv, lo[j], hi[j])
        breach[j] = b
        no_box[j] = nb


@kernel
def _take(a, mark, out, m):
    """Append account ``a`` to ``out[:m]`` unless already there (``mark`` remembers); returns the new count."""
    if mark[a] == 0:
        mark[a] = 1
        out[m] = a
        m += 1
    return m


@kernel
def walk(cur, moved, lo_trig, lo_acct, lo_off, lo_ptr, hi_trig, hi_acct, hi_off, hi_ptr, rechecked, r_acct, r_lo, r_hi, n_r,
         touched, n, always, mark, out):  # fmt: skip
    """The accounts a step must recheck, each once, in ``out[:m]`` (unordered); returns ``m``.

    Those ``touched`` (ids below ``n``) and those with no box (``always``); when the prices
    ``moved``, also those whose sorted trigger the price has now crossed on some dimension
    (each dimension's pointer advances past them; accounts rechecked since the rebuild are
    skipped, their boxes being in the dense table) and the dense table's rows whose box the
    price has left. ``mark`` (zero on entry and on return) has one flag per account.
    """
    m = 0
    for j in range(touched.shape[0]):
        if touched[j] < n:
            m = _take(touched[j], mark, out, m)
    for j in range(always.shape[0]):
        m = _take(always[j], mark, out, m)
    if moved:
        for d in range(cur.shape[0]):
            neg = -cur[d]
            base, end = lo_off[d], lo_off[d + 1]
            p = base + lo_ptr[d]
            while p < end and lo_trig[p] <= neg:  # the lower trigger is >= the price
                if not rechecked[lo_acct[p]]:
                    m = _take(lo_acct[p], mark, out, m)
                p += 1
            lo_ptr[d] = p - base
            base, end = hi_off[d], hi_off[d + 1]
            p = base + hi_ptr[d]
            while p < end and hi_trig[p] <= cur[d]:  # the upper trigger is <= the price
                if not rechecked[hi_acct[p]]:
                    m = _take(hi_acct[p], mark, out, m)
                p += 1
            hi_ptr[d] = p - base
        for r in range(n_r):
            for d in range(cur.shape[0]):
                if r_lo[r, d] >= cur[d] or r_hi[r, d] <= cur[d]:
                    m = _take(r_acct[r], mark, out, m)
                    break
    for j in range(m):
        mark[out[j]] = 0
    return m


@kernel
def remember(ids, lo, hi, no_box, rechecked, row, r_acct, r_lo, r_hi, n_r, always, new_always):
    """Rechecked accounts ``ids`` (ascending) keep their new boxes in the dense table (rows added as needed).

    Those without a box get no triggers there and join the accounts checked every step:
    ``new_always`` receives ``always`` (ascending) less ``ids``, merged with ``ids[no_box]``.
    The table must have room for ``n_r + len(ids)`` rows. Returns (rows used, accounts in
    ``new_always``).
    """
    dims = r_lo.shape[1]
    for j in range(ids.shape[0]):
        i = ids[j]
        rechecked[i] = True
        if row[i] < 0:
            row[i] = n_r
            r_acct[n_r] = i
            n_r += 1
        r = row[i]
        for d in range(dims):
            r_lo[r, d] = I64_MIN if no_box[j] else lo[j, d]
            r_hi[r, d] = I64_MAX if no_box[j] else hi[j, d]
    a = 0
    b = 0
    m = 0
    while a < always.shape[0] or b < ids.shape[0]:
        if b == ids.shape[0] or (a < always.shape[0] and always[a] < ids[b]):
            new_always[m] = always[a]
            m += 1
            a += 1
        elif a < always.shape[0] and always[a] == ids[b]:
            a += 1  # rechecked: stays only if it still has no box
        else:
            if no_box[b]:
                new_always[m] = ids[b]
                m += 1
            b += 1
    return n_r, m


PARALLEL_FROM = 4096
"""Batches of at least this many accounts are boxed on every thread."""


class IncrementalRisk:
    """Names the accounts below maintenance (or above the liquidation LTV) each step, looking only where needed."""

    def __init__(self, core: ClearingCore, rebuild_share: float = 0.05) -> None:
        self.core = core
        self.rebuild_share = rebuild_share
        self.stale = True
        self._last_prices: np.ndarray | None = None
        self.stats = {"rebuilds": 0, "checked": 0, "steps": 0}

    @property
    def dims(self) -> int:
        """Price dimensions: every perpetual's mark, then every asset's price."""
        return len(self.core.perps) + len(self.core.assets)

    def prices(self) -> np.ndarray:
        """The current value of every dimension."""
        return np.concatenate([self.core.marks, self.core.asset_price]).astype(np.int64)

    def _boxes(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        c = self.core
        n, d = len(ids), self.dims
        lo, hi = np.empty((n, d), np.int64), np.empty((n, d), np.int64)
        breach, no_box = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
        if n:
            f = boxes if n >= PARALLEL_FROM else boxes_serial
            f(c.params, c.accounts.arrays, c.ledger.balances, ids, int(c.loan_terms.liquidation_ltv), lo, hi, breach, no_box)
        return lo, hi, breach, no_box

    def rebuild(self) -> np.ndarray:
        """Check every account with a position, a debt or a negative balance exactly and sort their triggers.

        Returns those breaching.
        """
        c = self.core
        n = c.accounts.n
        acc = c.accounts.arrays
        c.ledger.take_touched()
        exposed = acc.size[:, :n].any(axis=0) | acc.debt[:, :n].any(axis=0) | (c.ledger.balances[:, :n] < 0).any(axis=0)
        ids = np.flatnonzero(exposed).astype(np.int64)
        lo, hi, breach, no_box = self._boxes(ids)
        self.lo_trig, self.lo_acct, self.lo_off = self._sorted(-lo, lo > I64_MIN, ids)  # kept negated: ascending
        self.hi_trig, self.hi_acct, self.hi_off = self._sorted(hi, hi < I64_MAX, ids)
        self.lo_ptr = np.zeros(self.dims, np.int64)
        self.hi_ptr = np.zeros(self.dims, np.int64)
        self.rechecked = np.zeros(n, np.bool_)
        self.row = np.full(n, -1, np.int64)
        self.n_r = 0
        self._r_acct = np.zeros(256, np.int64)
        self._r_lo = np.zeros((256, self.dims), np.int64)
        self._r_hi = np.zeros((256, self.dims), np.int64)
        self.always = ids[no_box]
        self._mark = np.zeros(n, np.uint8)
        self._out = np.empty(n, np.int64)
        self.n_built = n
        self.stale = False
        self._last_prices = self.prices()
        self.stats["rebuilds"] += 1
        self.stats["checked"] += len(ids)
        return ids[breach]

    def detect(self) -> np.ndarray:
        """Accounts breaching now (ascending), found exactly while checking only those that may have crossed."""
        c = self.core
        n = c.accounts.n
        self.stats["steps"] += 1
        touched = c.ledger.take_touched() if not self.stale else None
        if self.stale or touched is None or n != self.n_built or self.n_r > max(1024, self.rebuild_share * n):
            return self.rebuild()
        cur = self.prices()
        moved = self._last_prices is None or not np.array_equal(cur, self._last_prices)
        self._last_prices = cur
        m = walk(cur, moved, self.lo_trig, self.lo_acct, self.lo_off, self.lo_ptr, self.hi_trig, self.hi_acct, self.hi_off,
                 self.hi_ptr, self.rechecked, self._r_acct, self._r_lo, self._r_hi, self.n_r, touched, n, self.always,
                 self._mark, self._out)  # fmt: skip
        return self._check(np.sort(self._out[:m]))

    @staticmethod
    def _sorted(trig: np.ndarray, has: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per dimension, the accounts with a trigger there, ascending by trigger: (triggers, accounts, offsets), concatenated.

        Dimension ``d`` holds entries ``off[d]:off[d+1]``; a price crosses them from the first.
        """
        trigs, accts = [], []
        for d in range(trig.shape[1]):
            t = trig[has[:, d], d]
            order = np.argsort(t, kind="stable")  # highest lower (lowest upper) trigger first: first to be crossed
            trigs.append(t[order])
            accts.append(ids[has[:, d]][order])
        off = np.zeros(trig.shape[1] + 1, np.int64)
        off[1:] = np.cumsum([len(t) for t in trigs])
        cat = (np.concatenate(trigs) if trigs else np.zeros(0, np.int64)).astype(np.int64)
        return cat, (np.concatenate(accts) if accts else np.zeros(0, np.int64)).astype(np.int64), off

    def _check(self, ids: np.ndarray) -> np.ndarray:
        """Recheck ``ids`` exactly, remember their new boxes; returns those breaching."""
        if len(ids) == 0:
            return ids
        lo, hi, breach, no_box = self._boxes(ids)
        self.stats["checked"] += len(ids)
        self._remember(ids, lo, hi, no_box)
        return ids[breach]

    @property
    def r_acct(self) -> np.ndarray:
        """Accounts rechecked since the last rebuild (their boxes live in the dense table)."""
        return self._r_acct[: self.n_r]

    def _remember(self, ids: np.ndarray, lo: np.ndarray, hi: np.ndarray, no_box: np.ndarray) -> None:
        """Rechecked accounts keep their new boxes in the dense table; those without a box are checked every step."""
        need = self.n_r + int((self.row[ids] < 0).sum())  # accounts without a row yet get one
        if need > self._r_acct.shape[0]:
            cap = max(need, 2 * self._r_acct.shape[0])
            for name in ("_r_acct", "_r_lo", "_r_hi"):
                old = getattr(self, name)
                grown = np.zeros((cap, *old.shape[1:]), np.int64)
                grown[: self.n_r] = old[: self.n_r]
                setattr(self, name, grown)
        new_always = np.empty(len(self.always) + len(ids), np.int64)
        self.n_r, m = remember(ids, lo, hi, no_box, self.rechecked, self.row, self._r_acct, self._r_lo, self._r_hi, self.n_r,
                               self.always, new_always)  # fmt: skip
        self.always = new_always[:m]
