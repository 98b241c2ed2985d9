"""Compiled passes of the batched liquidation engine (see :mod:`cascadelab.liquidation.engine`).

Each pass walks its accounts in ascending id and does exactly what
:class:`~cascadelab.liquidation.reference.ReferenceEngine` does for one account, writing
ledger transfers through the same :func:`~cascadelab.clearing.ledger.journal_transfer`,
fills through the same :func:`~cascadelab.clearing.settlement.settle_perp_fill`, and events
as LIQ_EVENT records in the same order. Passes that may write more than a buffer holds stop
before an account and return its index; the caller grows the buffers and calls again.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from cascadelab.arith import apportion, ceil_div, muldiv_ceil, muldiv_floor
from cascadelab.clearing.ledger import SOCIALIZED_LOSS, journal_room, journal_transfer, note_touched
from cascadelab.clearing.margin import account_figures, collateral_value, loan_to_value, position_maintenance, tier_of
from cascadelab.clearing.settlement import settle_perp_fill
from cascadelab.compiled import kernel
from cascadelab.liquidation.adl import RULE_RANKED, allocate_kernel

# event kinds, reasons, journal kinds, fill kinds and states as plain ints (records.Ev / Why / Kind / FillKind)
EV_TAKEOVER, EV_COLLATERAL, EV_DEBT, EV_FUND_IN, EV_FUND_OUT = 7, 8, 9, 10, 11
EV_ADL_TRIGGER, EV_ADL_CLOSE, EV_BAD_DEBT, EV_CLEARANCE_FEE = 12, 13, 14, 5
WHY_NONE, WHY_REMAINING, WHY_DEFICIT = 0, 7, 8
K_LIQ_FEE, K_INSURANCE, K_BAD_DEBT, K_REPAY, K_TAKEOVER = 7, 8, 9, 12, 15
FK_TAKEOVER, FK_ADL = 3, 4
ST_NORMAL, ST_LIQUIDATING, ST_TAKEN_OVER, ST_BANKRUPT = 0, 1, 2, 3
TRIG_INSUFFICIENT, TRIG_DRAWDOWN, TRIG_NEGATIVE = 0, 1, 2
PRICE_BANKRUPTCY, PRICE_MARK, PRICE_PREVIOUS = 0, 1, 2
MODE_NONE, MODE_ALL, MODE_CROSS = 0, 1, 2
FLAG_LIQUIDATION = 2
_TWO32 = 1 << 32


class EngineParams(NamedTuple):
    """The profile's choices and the funds, as arrays and ints for the takeover pass."""

    liq: int  # the liquidator account
    trigger: int  # TRIG_*
    threshold: int  # drawdown threshold, millionths
    trigger_reason: int  # Why of the trigger
    price_rule: int  # PRICE_*
    rule: int  # ADL allocation rule (adl.RULE_*)
    fund_acct: np.ndarray  # ledger account of each fund
    fund_of_k: np.ndarray  # fund backing each perpetual
    hist_peak: np.ndarray  # each fund's highest recorded balance in the drawdown window
    prev_marks: np.ndarray  # marks of the previous step
    lend_pool: np.ndarray  # ledger account of each asset's lending pool


class Ranks(NamedTuple):
    """ADL candidates scored once this step, per (perpetual, side) slot ``2k + (0 long | 1 short)``."""

    off: np.ndarray  # slot s holds entries off[s]:off[s+1]
    account: np.ndarray
    order: np.ndarray  # slot-local indices in ADL order
    rank: np.ndarray  # 1-based rank of each entry
    profitable: np.ndarray
    equity: np.ndarray
    score: np.ndarray


class Plan(NamedTuple):
    """Accounts to take over this step (ascending), with their cross mode and isolated takeovers."""

    acct: np.ndarray
    mode: np.ndarray  # MODE_*
    why: np.ndarray  # reason of the cross takeover
    iso_off: np.ndarray  # account j's isolated takeovers are iso_k[iso_off[j]:iso_off[j+1]]
    iso_k: np.ndarray
    iso_why: np.ndarray


class Out(NamedTuple):
    """Output buffers and counters of the takeover pass."""

    events: np.ndarray  # LIQ_EVENT
    fills: np.ndarray  # FILL
    closed: np.ndarray  # (n, 2): (perpetual, account) of every ADL close
    repaid: np.ndarray  # per asset: principal repaid out of taken-over accounts
    meta: np.ndarray  # [events, fills, closed]


class Scratch(NamedTuple):
    """Work arrays (no allocation in compiled passes)."""

    ks: np.ndarray  # perpetuals in scope, weights, shares, allowed (per perpetual)
    weights: np.ndarray
    shares: np.ndarray
    rem: np.ndarray
    idx: np.ndarray
    allowed: np.ndarray
    committed: np.ndarray  # per fund
    alloc: tuple  # allocate_kernel scratch: cuts, members, w, tb, out, rem, idx, lev (as long as the largest slot)
    remaining: np.ndarray
    cursor: np.ndarray  # per ADL slot and group (profitable, losing): first entry not known to be exhausted
    used: np.ndarray  # per account: equity given up to ADL closes this step (never more than its equity)


# --- vectorized figures ----------------------------------------------------------------------------
@kernel
def position_figures(P, A, ids, upnl, maint, notional, mmr):
    """Per perpetual ``k`` and account ``ids[j]``: unrealized PnL, maintenance, notional and the tier's MMR at the mark."""
    for k in range(A.size.shape[0]):
        for j in range(ids.shape[0]):
            i = ids[j]
            q = A.size[k, i]
            val = q * P.marks[k] * P.unit[k]
            n = val if val >= 0 else -val
            upnl[k, j] = val - A.cost[k, i]
            notional[k, j] = n
            maint[k, j] = position_maintenance(P, k, n)
            mmr[k, j] = P.mmr[k, tier_of(P, k, n)]


@kernel
def ltv_many(P, A, bal, ids, out):
    """Loan-to-value (millionths) of the accounts ``ids``."""
    for j in range(ids.shape[0]):
        out[j] = loan_to_value(P, A, bal, ids[j])


@kernel
def in_state(state, n, code, out):
    """Accounts below ``n`` whose state is ``code``, ascending in ``out``; returns their count."""
    m = 0
    for i in range(n):
        if state[i] == code:
            out[m] = i
            m += 1
    return m


@kernel
def adl_holders(A, k, side, n, liq, out):
    """NORMAL accounts below ``n`` (not the liquidator ``liq``) holding ``side`` of perpetual ``k``, ascending in ``out``.

    Returns their count.
    """
    m = 0
    for i in range(n):
        q = A.size[k, i]
        if (q > 0 if side > 0 else q < 0) and A.state[i] == ST_NORMAL and i != liq:
            out[m] = i
            m += 1
    return m


@kernel
def _adl_figures_one(P, A, bal, k, ids, j, size, cost, mark_notional, pos_maint, wallet, acct_maint, acct_upnl):
    """One ADL candidate's figures (see :func:`adl_figures`)."""
    i = ids[j]
    eq, mm, _im, _b = account_figures(P, A, bal, i)
    cross_upnl = 0
    for k2 in range(A.size.shape[0]):
        q2 = A.size[k2, i]
        if q2 != 0 and not A.isolated[k2, i]:
            cross_upnl += q2 * P.marks[k2] * P.unit[k2] - A.cost[k2, i]
    q = A.size[k, i]
    val = q * P.marks[k] * P.unit[k]
    pmm = position_maintenance(P, k, val if val >= 0 else -val)
    size[j] = q
    cost[j] = A.cost[k, i]
    mark_notional[j] = val
    pos_maint[j] = pmm
    if A.isolated[k, i]:
        wallet[j] = A.iso_margin[k, i]
        acct_maint[j] = pmm
        acct_upnl[j] = val - A.cost[k, i]
    else:
        wallet[j] = eq - cross_upnl
        acct_maint[j] = mm
        acct_upnl[j] = cross_upnl


@njit(cache=True, parallel=True)
def adl_figures(P, A, bal, k, ids, size, cost, mark_notional, pos_maint, wallet, acct_maint, acct_upnl):
    """The :class:`~cascadelab.liquidation.adl.Candidates` fields of the positions in ``k`` of accounts ``ids`` (in parallel).

    Position level: size, cost, size x mark value, maintenance. Account level: cross
    (collateral without unrealized PnL, cross maintenance, cross unrealized PnL), or the
    isolated position's own (its margin, its maintenance, its unrealized PnL).
    """
    for j in prange(ids.shape[0]):
        _adl_figures_one(P, A, bal, k, ids, j, size, cost, mark_notional, pos_maint, wallet, acct_maint, acct_upnl)


@kernel
def adl_figures_serial(P, A, bal, k, ids, size, cost, mark_notional, pos_maint, wallet, acct_maint, acct_upnl):
    """:func:`adl_figures` on one thread (for a few candidates)."""
    for j in range(ids.shape[0]):
        _adl_figures_one(P, A, bal, k, ids, j, size, cost, mark_notional, pos_maint, wallet, acct_maint, acct_upnl)


# --- helpers ------------------------------------------------------------------------------------------
@kernel
def _balance(L, q, acct):
    if acct >= 0:
        return L.bal[q, acct]
    r = -acct - 1
    return L.sys_hi[r, q] * _TWO32 + L.sys_lo[r, q]


@kernel
def _event(out, ts, kind, account, instrument, side, qty, price, amount, pnl, fund_balance, score, rank, reason, fund, asset):
    e = out.events[out.meta[0]]
    e.ts = ts
    e.kind = kind
    e.account = account
    e.instrument = instrument
    e.side = side
    e.qty = qty
    e.price = price
    e.amount = amount
    e.pnl = pnl
    e.fund_balance = fund_balance
    e.score = score
    e.rank = rank
    e.reason = reason
    e.fund = fund
    e.asset = asset
    out.meta[0] += 1


@kernel
def _synthetic(L, A, P, out, ts, k, maker, taker, taker_side, price, qty, kind, pool):
    """A position transfer without the book or fees; returns the maker's realized PnL."""
    pm, pt = settle_perp_fill(L, A, P.unit[k], k, pool, P.quote, ts, maker, taker, taker_side, price, qty, 0, 0)
    f = out.fills[out.meta[1]]
    f.ts = ts
    f.maker_order = 0
    f.taker_order = 0
    f.maker_account = maker
    f.taker_account = taker
    f.price = price
    f.qty = qty
    f.maker_fee = 0
    f.taker_fee = 0
    f.maker_pnl = pm
    f.taker_pnl = pt
    f.instrument = k
    f.aggressor = taker_side
    f.kind = kind
    out.meta[1] += 1
    return pm


@kernel
def _move(L, E, quote, out, ts, f, account, amount, why, instrument):
    """``amount`` > 0: fund ``f`` pays ``account``; < 0: the account pays the fund (with a FUND_OUT / FUND_IN event)."""
    fa = E.fund_acct[f]
    if amount == 0 or fa == account:
        return
    if amount > 0:
        journal_transfer(L, ts, quote, fa, account, amount, K_INSURANCE)
        _event(out, ts, EV_FUND_OUT, account, instrument, 0, 0, 0, amount, 0, _balance(L, quote, fa), 0.0, 0, why, f, -1)
    else:
        journal_transfer(L, ts, quote, account, fa, -amount, K_INSURANCE)
        _event(out, ts, EV_FUND_IN, account, instrument, 0, 0, 0, -amount, 0, _balance(L, quote, fa), 0.0, 0, why, f, -1)


@kernel
def _socialize(L, quote, out, ts, account, amount, why, instrument):
    if amount > 0:
        journal_transfer(L, ts, quote, SOCIALIZED_LOSS, account, amount, K_BAD_DEBT)
        _event(out, ts, EV_BAD_DEBT, account, instrument, 0, 0, 0, amount, 0, 0, 0.0, 0, why, -1, -1)


# --- clearance fees ---------------------------------------------------------------------------------------
@kernel
def clearance_fees(L, A, P, E, out, ts, accts, ks, notional, rate):
    """Phase E: a fee on each (account, perpetual) liquidated notional, to that perpetual's fund, capped at the equity."""
    quote = P.quote
    for j in range(accts.shape[0]):
        i = accts[j]
        k = ks[j]
        eq, _mm, _im, _b = account_figures(P, A, L.bal, i)
        amount = min(muldiv_ceil(notional[j], rate, 1_000_000), max(0, eq))
        if amount > 0:
            f = E.fund_of_k[k]
            journal_transfer(L, ts, quote, i, E.fund_acct[f], amount, K_LIQ_FEE)
            _event(
                out, ts, EV_CLEARANCE_FEE, i, k, 0, 0, 0, amount, 0, _balance(L, quote, E.fund_acct[f]), 0.0, 0, WHY_NONE, f, -1
            )


# --- takeovers ---------------------------------------------------------------------------------------------
@kernel
def _fund_pays(E, trig, share, bal, peak):
    if trig == TRIG_INSUFFICIENT:
        return min(share, max(0, bal))
    if trig == TRIG_DRAWDOWN:
        floor = peak - muldiv_floor(peak, E.threshold, 1_000_000)
        return min(share, max(0, min(bal, bal - floor)))
    return 0


@kernel
def _adl_price(E, k, side, lots, unit, share, mark):
    if E.price_rule == PRICE_BANKRUPTCY:
        shift = ceil_div(share, max(1, lots * unit))
        return mark + shift if side > 0 else max(1, mark - shift)
    if E.price_rule == PRICE_MARK:
        return mark
    p = E.prev_marks[k] if E.prev_marks[k] != 0 else mark
    shift = ceil_div(share, max(1, lots * unit))
    if side > 0:
        return min(max(p, mark), mark + shift)
    return max(min(p, mark), max(1, mark - shift))


@kernel
def _ranked_cuts(A, R, S, k, side, o0, m, slot, lots, ell):
    """Cuts of the ranked rule, walked from each group's cursor; returns how many (t, cut) pairs, in ADL order.

    The same greedy allocation as :func:`~cascadelab.liquidation.adl.allocate_kernel` for
    ranked rules (profitable candidates first, each group in ADL order), but amortised over
    the step: a candidate stays exhausted once skipped (ADL only shrinks positions, the
    equity a candidate may still give up only shrinks, and candidates are not liquidated in
    the step that scored them), so each group keeps a cursor past its exhausted and
    non-member entries and a deficit costs only what it takes. ``ell`` is what one lot
    closed at the ADL price costs a candidate against the mark: a candidate absorbs at most
    what its equity covers.
    Pairs go to ``S.alloc[1:3]`` (group 0) and ``S.alloc[3:5]`` (group 1), then merge by ADL position.
    """
    _cuts, t0s, c0s, t1s, c1s, _rem, _idx, _lev = S.alloc
    left = lots
    n0 = 0
    n1 = 0
    for g in range(2):
        want = g == 0
        t = S.cursor[2 * slot + g]
        while t < m and left > 0:
            x = R.order[o0 + t]
            if R.profitable[o0 + x] == want:
                c = R.account[o0 + x]
                q = A.size[k, c]
                ok = A.state[c] == ST_NORMAL and ((q > 0) if -side > 0 else (q < 0))
                r = abs(q) if ok else 0
                if r > 0 and ell > 0:
                    r = min(r, max(0, R.equity[o0 + x] - S.used[c]) // ell)
                if r > 0:
                    cut = min(r, left)
                    left -= cut
                    if g == 0:
                        t0s[n0] = t
                        c0s[n0] = cut
                        n0 += 1
                    else:
                        t1s[n1] = t
                        c1s[n1] = cut
                        n1 += 1
                    if cut < r:
                        break
            t += 1
        S.cursor[2 * slot + g] = t
    return n0, n1


@kernel
def _close_one(L, A, P, E, R, S, out, ts, i, k, side, price, pool, o0, t, cut, ell):
    x = R.order[o0 + t]
    c = R.account[o0 + x]
    S.used[c] += cut * ell
    n = out.meta[2]
    out.closed[n, 0] = k
    out.closed[n, 1] = c
    out.meta[2] = n + 1
    before = A.size[k, c] * P.marks[k] * P.unit[k] - A.cost[k, c]
    pm = _synthetic(L, A, P, out, ts, k, c, i, -side, price, cut, FK_ADL, pool)
    _event(
        out, ts, EV_ADL_CLOSE, c, k, side, cut, price, before, pm, 0, R.score[o0 + x], R.rank[o0 + x], E.trigger_reason, -1, -1
    )


@kernel
def _adl(L, A, P, E, R, S, out, ts, i, k, side, lots, price, pool):
    """Close ``lots`` of account ``i``'s position in ``k`` against the ranked opposite positions at ``price``.

    Closes are written in ADL order (the order of the step's ranking).
    """
    slot = 2 * k + (0 if -side > 0 else 1)
    o0 = R.off[slot]
    m = R.off[slot + 1] - o0
    if m == 0:
        return
    ell = max(0, side * (price - P.marks[k])) * P.unit[k]  # what one lot costs a counterparty against the mark
    if E.rule == RULE_RANKED:
        n0, n1 = _ranked_cuts(A, R, S, k, side, o0, m, slot, lots, ell)
        _cuts, t0s, c0s, t1s, c1s, _rem, _idx, _lev = S.alloc
        a = 0
        b = 0
        while a < n0 or b < n1:
            if b >= n1 or (a < n0 and t0s[a] < t1s[b]):
                _close_one(L, A, P, E, R, S, out, ts, i, k, side, price, pool, o0, t0s[a], c0s[a], ell)
                a += 1
            else:
                _close_one(L, A, P, E, R, S, out, ts, i, k, side, price, pool, o0, t1s[b], c1s[b], ell)
                b += 1
        return
    for x in range(m):
        c = R.account[o0 + x]
        q = A.size[k, c]
        ok = A.state[c] == ST_NORMAL and ((q > 0) if -side > 0 else (q < 0))
        r = abs(q) if ok else 0
        if r > 0 and ell > 0:
            r = min(r, max(0, R.equity[o0 + x] - S.used[c]) // ell)
        S.remaining[x] = r
    cuts, members, w, tb, o, rem, idx, lev = S.alloc
    allocate_kernel(
        E.rule, R.order[o0 : o0 + m], R.profitable[o0 : o0 + m], S.remaining[:m], R.equity[o0 : o0 + m], R.account[o0 : o0 + m],
        lots, float(P.marks[k] * P.unit[k]), cuts[:m], members[:m], w[:m], tb[:m], o[:m], rem[:m], idx[:m], lev[:m],
    )  # fmt: skip
    for t in range(m):
        x = R.order[o0 + t]
        if cuts[x] > 0:
            _close_one(L, A, P, E, R, S, out, ts, i, k, side, price, pool, o0, t, cuts[x], ell)


@kernel
def _deficit_and_adl(L, A, P, E, R, S, out, ts, i, nk, deficit, pools, n_funds):
    """Split ``deficit`` over the ``nk`` positions in ``S.ks`` by notional; ADL what each fund may not pay (sets S.allowed)."""
    for j in range(A.size.shape[0]):
        S.allowed[j] = -1
    if deficit <= 0:
        return
    apportion(deficit, S.weights[:nk], S.ks[:nk], S.shares[:nk], S.rem[:nk], S.idx[:nk])
    for f in range(n_funds):
        S.committed[f] = 0
    quote = P.quote
    for t in range(nk):
        share = S.shares[t]
        if share <= 0:
            continue
        k = S.ks[t]
        f = E.fund_of_k[k]
        actual = _balance(L, quote, E.fund_acct[f])
        bal = actual - S.committed[f]
        peak = max(E.hist_peak[f], actual)
        pays = _fund_pays(E, E.trigger, share, bal, peak)
        S.allowed[k] = pays if E.trigger != TRIG_NEGATIVE else max(0, bal)
        S.committed[f] += S.allowed[k]
        rest = share - pays
        if rest <= 0:
            continue
        q = A.size[k, i]
        lots = min(abs(q), muldiv_ceil(abs(q), rest, share))
        side = 1 if q > 0 else -1
        price = _adl_price(E, k, side, abs(q), P.unit[k], share, P.marks[k])
        _event(out, ts, EV_ADL_TRIGGER, i, k, side, lots, price, share, pays, bal, 0.0, 0, E.trigger_reason, f, -1)
        _adl(L, A, P, E, R, S, out, ts, i, k, side, lots, price, pools[k])


@kernel
def _settle_rest(L, P, E, S, out, ts, i, nk, rest):
    """A positive remainder goes to the funds; a deficit is paid by the funds within their limits, then socialized."""
    if rest == 0:
        return
    quote = P.quote
    amount = abs(rest)
    if nk > 0:
        apportion(amount, S.weights[:nk], S.ks[:nk], S.shares[:nk], S.rem[:nk], S.idx[:nk])
    else:
        S.shares[0] = amount
    for t in range(max(nk, 1)):
        part = S.shares[t]
        k = S.ks[t] if nk > 0 else -1
        if part == 0:
            continue
        f = E.fund_of_k[max(k, 0)]
        if rest > 0:
            _move(L, E, quote, out, ts, f, i, -part, WHY_REMAINING, k)
            continue
        bal = _balance(L, quote, E.fund_acct[f])
        pay = 0
        if E.fund_acct[f] != i:
            limit = S.allowed[k] if k >= 0 and S.allowed[k] >= 0 else bal
            pay = min(part, max(0, limit), max(0, bal))
        _move(L, E, quote, out, ts, f, i, pay, WHY_DEFICIT, k)
        _socialize(L, quote, out, ts, i, part - pay, WHY_DEFICIT, k)


@kernel
def _take_collateral_and_debts(L, A, P, E, out, ts, i):
    quote = P.quote
    liq = E.liq
    for a in range(L.bal.shape[0]):
        b = L.bal[a, i]
        if a != quote and b > 0:
            value = collateral_value(P, a, b)
            journal_transfer(L, ts, a, i, liq, b, K_TAKEOVER)
            if value:
                journal_transfer(L, ts, quote, liq, i, value, K_TAKEOVER)
            _event(out, ts, EV_COLLATERAL, i, -1, 0, b, 0, value, 0, 0, 0.0, 0, WHY_NONE, -1, a)
    for a in range(L.bal.shape[0]):
        d = A.debt[a, i]
        if d <= 0:
            continue
        A.debt[a, i] = 0
        if a == quote:
            journal_transfer(L, ts, quote, i, E.lend_pool[a], d, K_REPAY)
            out.repaid[a] += d
            _event(out, ts, EV_DEBT, i, -1, 0, d, 0, d, 0, 0, 0.0, 0, WHY_NONE, -1, a)
        else:
            A.debt[a, liq] += d
            note_touched(L, liq)
            value = muldiv_ceil(d, P.price[a], 100_000_000)
            if value:
                journal_transfer(L, ts, quote, i, liq, value, K_TAKEOVER)
            _event(out, ts, EV_DEBT, i, -1, 0, d, 0, value, 0, 0, 0.0, 0, WHY_NONE, -1, a)


@kernel
def _value_after_close(L, A, P, i, nk, ks, keep_isolated):
    quote = P.quote
    value = L.bal[quote, i]
    n_inst = A.size.shape[0]
    if keep_isolated:
        for k in range(n_inst):
            if A.isolated[k, i]:
                inside = False
                for t in range(nk):
                    if ks[t] == k:
                        inside = True
                if not inside:
                    value -= A.iso_margin[k, i]
    for t in range(nk):
        k = ks[t]
        value += A.size[k, i] * P.marks[k] * P.unit[k] - A.cost[k, i]
    for a in range(L.bal.shape[0]):
        if a != quote and L.bal[a, i] > 0:
            value += collateral_value(P, a, L.bal[a, i])
        if A.debt[a, i]:
            value -= muldiv_ceil(A.debt[a, i], P.price[a], 100_000_000)
    return value


@kernel
def _split_weights(A, P, S, i, nk, deficit):
    """How a takeover's result is split over its positions ``S.ks``: a deficit by each position's loss at the
    mark (ADL is per coin: a loss is never carried to another coin's counterparties), else by notional."""
    total = 0
    for t in range(nk):
        k = S.ks[t]
        loss = A.cost[k, i] - A.size[k, i] * P.marks[k] * P.unit[k]
        S.weights[t] = max(0, loss) if deficit else abs(A.size[k, i]) * P.marks[k] * P.unit[k]
        total += S.weights[t]
    if deficit and total == 0:
        for t in range(nk):
            k = S.ks[t]
            S.weights[t] = abs(A.size[k, i]) * P.marks[k] * P.unit[k]


@kernel
def _takeover(L, A, P, E, R, S, out, ts, i, all_positions, why, pools, n_funds, cooldown):
    n_inst = A.size.shape[0]
    nk = 0
    for k in range(n_inst):
        if A.size[k, i] != 0 and (all_positions or not A.isolated[k, i]):
            S.ks[nk] = k
            nk += 1
    value = _value_after_close(L, A, P, i, nk, S.ks, not all_positions)
    _split_weights(A, P, S, i, nk, value < 0)
    _deficit_and_adl(L, A, P, E, R, S, out, ts, i, nk, max(0, -value), pools, n_funds)
    for t in range(nk):
        k = S.ks[t]
        q = A.size[k, i]
        if q != 0:
            side = 1 if q > 0 else -1
            _synthetic(L, A, P, out, ts, k, E.liq, i, -side, P.marks[k], abs(q), FK_TAKEOVER, pools[k])
            _event(out, ts, EV_TAKEOVER, i, k, side, abs(q), P.marks[k], 0, 0, 0, 0.0, 0, why, -1, -1)
    _take_collateral_and_debts(L, A, P, E, out, ts, i)
    kept = 0
    holds = False
    for k in range(n_inst):
        if A.isolated[k, i] and A.size[k, i] != 0:
            kept += A.iso_margin[k, i]
        if A.size[k, i] != 0:
            holds = True
    _settle_rest(L, P, E, S, out, ts, i, nk, L.bal[P.quote, i] - kept)
    cooldown[i] = -1
    if kept != 0 or holds:
        A.state[i] = ST_LIQUIDATING
    else:
        A.state[i] = ST_BANKRUPT if value < 0 else ST_TAKEN_OVER


@kernel
def _takeover_isolated(L, A, P, E, R, S, out, ts, i, k, why, pools, n_funds):
    q = A.size[k, i]
    if q == 0:
        return
    margin = A.iso_margin[k, i]
    value = margin + q * P.marks[k] * P.unit[k] - A.cost[k, i]
    S.ks[0] = k
    S.weights[0] = abs(q) * P.marks[k] * P.unit[k]
    before = L.bal[P.quote, i]
    _deficit_and_adl(L, A, P, E, R, S, out, ts, i, 1, max(0, -value), pools, n_funds)
    q = A.size[k, i]
    if q != 0:
        side = 1 if q > 0 else -1
        _synthetic(L, A, P, out, ts, k, E.liq, i, -side, P.marks[k], abs(q), FK_TAKEOVER, pools[k])
        _event(out, ts, EV_TAKEOVER, i, k, side, abs(q), P.marks[k], 0, 0, 0, 0.0, 0, why, -1, -1)
    rest = margin + L.bal[P.quote, i] - before
    A.iso_margin[k, i] = 0
    note_touched(L, i)
    S.ks[0] = k
    _settle_rest(L, P, E, S, out, ts, i, 1, rest)


@kernel
def takeovers(L, A, P, E, R, S, plan, out, ts, start, pools, n_funds, cooldown, room_events, room_fills, room_journal):
    """Phase F over ``plan.acct[start:]``; returns the index of the first account not done (len when all are).

    It stops before an account when the event, fill or journal buffers might not hold what
    one account can write (``room_*``: the worst case of one account).
    """
    for j in range(start, plan.acct.shape[0]):
        if (
            out.events.shape[0] - out.meta[0] < room_events
            or out.fills.shape[0] - out.meta[1] < room_fills
            or out.closed.shape[0] - out.meta[2] < room_fills
            or journal_room(L) < room_journal
        ):
            return j
        i = plan.acct[j]
        mode = plan.mode[j]
        if mode == MODE_ALL:
            _takeover(L, A, P, E, R, S, out, ts, i, True, plan.why[j], pools, n_funds, cooldown)
            continue
        for t in range(plan.iso_off[j], plan.iso_off[j + 1]):
            _takeover_isolated(L, A, P, E, R, S, out, ts, i, plan.iso_k[t], plan.iso_why[t], pools, n_funds)
        if mode == MODE_CROSS:
            _takeover(L, A, P, E, R, S, out, ts, i, False, plan.why[j], pools, n_funds, cooldown)
    return plan.acct.shape[0]
