"""The batched liquidation engine: the reference engine's phases on arrays.

Every phase of :mod:`cascadelab.liquidation.reference` runs here over all the accounts of
the step at once: exact figures come from the compiled margin kernels for the whole batch,
decisions are array expressions, every liquidation order of the step goes to the venue as
one batch (by instrument, then account), ADL candidates are scored once per step per
instrument and side with array code, and the sequential parts (clearance fees that cap at
an account's equity, takeovers that draw on the funds and consume the ADL queues in rank
order across all deficits) run in compiled passes (:mod:`cascadelab.liquidation.kernels`).
Python touches the batch, never one account. A differential test runs both engines on
random crashes under every profile and ranking and requires identical events, balances and
positions.
"""

from __future__ import annotations

import numpy as np

from cascadelab.arith import muldiv_each, muldiv_vec
from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.margin import EXACT_PARALLEL_FROM, cross_breach
from cascadelab.liquidation import adl
from cascadelab.liquidation import kernels as LK
from cascadelab.liquidation.base import EngineBase, Events
from cascadelab.liquidation.config import LiquidationConfig
from cascadelab.liquidation.gateway import Gateway
from cascadelab.liquidation.policy import SCOPE_ALL, BookThenTakeover, ImmediateTakeover, MarketChunks
from cascadelab.records import (
    FILL,
    FLAG_LIQUIDATION,
    FLAG_REDUCE_ONLY,
    FUND_NONE,
    LIQ_EVENT,
    ORDER_REQUEST,
    STP,
    TIF,
    CancelReason,
    Ev,
    Op,
    Why,
)
from cascadelab.units import RATE_SCALE

NORMAL, LIQUIDATING = int(AccountState.NORMAL), int(AccountState.LIQUIDATING)


def records(ts: int, kind: Ev | np.ndarray, account: np.ndarray, **fields: object) -> np.ndarray:
    """LIQ_EVENT records for many accounts at once (fields that do not apply keep their defaults)."""
    account = np.asarray(account, np.int64)
    out = np.zeros(len(account), LIQ_EVENT)
    out["ts"] = ts
    out["account"] = account
    out["kind"] = kind
    out["instrument"] = -1
    out["fund"] = FUND_NONE
    out["asset"] = -1
    for name, value in fields.items():
        out[name] = value
    return out


class LiquidationEngine(EngineBase):
    """Runs detection, the three tiers and the liquidator's unwinding for one venue, on arrays."""

    def __init__(self, venue: Gateway, config: LiquidationConfig) -> None:
        super().__init__(venue, config)
        self.cooldown = np.full(16, -1, np.int64)
        self._holders = np.empty(16, np.int64)  # scratch: the accounts of an ADL queue, those LIQUIDATING

    # --- detection ------------------------------------------------------------------------------
    def candidates(self) -> np.ndarray:
        """Accounts to evaluate exactly this step: below maintenance or the LTV limit, or already LIQUIDATING."""
        ch = self.ch
        n = ch.accounts.n
        state = ch.accounts.state[:n]
        found = ch.breaching()
        if self._holders.shape[0] < n:
            self._holders = np.empty(max(n, 2 * self._holders.shape[0]), np.int64)
        liquidating = self._holders[: LK.in_state(state, n, LIQUIDATING, self._holders)]
        if not len(found) and not len(liquidating):
            return found.astype(np.int64)
        ids = np.union1d(found, liquidating).astype(np.int64)
        ids = ids[(ids != self.liquidator) & ((state[ids] == NORMAL) | (state[ids] == LIQUIDATING))]
        return ids

    def _ltv_bad(self, ids: np.ndarray) -> np.ndarray:
        ch = self.ch
        acc = ch.accounts.arrays
        has_debt = acc.debt[:, ids].any(axis=0)
        out = np.zeros(len(ids), np.int64)
        sub = ids[has_debt]
        if len(sub):
            vals = np.zeros(len(sub), np.int64)
            LK.ltv_many(ch.core.params, acc, ch.ledger.balances, sub, vals)
            out[has_debt] = vals
        return has_debt & (out > ch.loan_terms.liquidation_ltv)

    def _figures(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """(equity, maintenance, cross breach, isolated breach, LTV breach) of ``ids``."""
        eq, mm, _im, isob = self.ch.exact_margins(ids)
        ltvb = self._ltv_bad(ids)
        return eq, mm, cross_breach(eq, mm), isob, ltvb

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per perpetual x account: (upnl, maintenance, notional, tier MMR)."""
        ch = self.ch
        shape = (len(ch.perps), len(ids))
        out = [np.zeros(shape, np.int64) for _ in range(4)]
        if len(ids):
            LK.position_figures(ch.core.params, ch.accounts.arrays, np.ascontiguousarray(ids, np.int64), *out)
        return tuple(out)

    # --- the step ------------------------------------------------------------------------------------
    def step(self, now: int) -> np.ndarray:
        """Run one risk cycle at ``now`` (after prices and order entry); returns the step's LIQ_EVENT records."""
        ch, cfg = self.ch, self.cfg
        ev = Events(now)
        acc = ch.accounts.arrays
        n = ch.accounts.n
        if self.cooldown.shape[0] < n:
            grown = np.full(max(n, 2 * self.cooldown.shape[0]), -1, np.int64)
            grown[: self.cooldown.shape[0]] = self.cooldown
            self.cooldown = grown
        self.clock.start()
        # A. evaluate
        self.adl_queues = {}
        ids = self.candidates()
        if len(ids) == 0:  # a quiet step: nobody to evaluate
            self.clock.lap("detect")
            return self._finish(ev, now)
        eq, mm, cross, isob, ltvb = self._figures(ids)
        breach = cross | isob | ltvb
        st = acc.state[ids].copy()
        back = (st == LIQUIDATING) & ~breach
        start = (st == NORMAL) & breach
        acc.state[ids[back]] = NORMAL
        acc.state[ids[start]] = LIQUIDATING
        sel = back | start
        why = np.where(cross, Why.BELOW_MAINTENANCE, np.where(isob, Why.ISOLATED_BELOW_MAINTENANCE, Why.LTV_ABOVE_LIQUIDATION))
        ev.extend(records(now, np.where(back, Ev.COMPLIANT, Ev.LIQUIDATION_START)[sel], ids[sel], amount=eq[sel], pnl=mm[sel],
                          reason=np.where(start, why, Why.NONE)[sel]))  # fmt: skip
        work, started = ids[breach], ids[start]
        w_eq, w_mm, w_cross, w_ltv = eq[breach], mm[breach], cross[breach], ltvb[breach]
        self.clock.lap("detect")
        # B. cancel the open orders of accounts that just started
        if len(started):
            mask = np.zeros(n, np.bool_)
            mask[started] = True
            cancels = self.venue.cancel_accounts(mask, CancelReason.LIQUIDATION, now)
            counts = np.bincount(cancels["account"], minlength=n)[started] if len(cancels) else np.zeros(len(started), np.int64)
            ev.extend(records(now, Ev.ORDERS_CANCELLED, started[counts > 0], qty=counts[counts > 0]))
        self.clock.lap("cancel orders")
        # C. plan tier 1
        style = cfg.style
        W = len(work)
        upnl, pmm, notional, mmr = self._positions(work)
        size = acc.size[:, work]
        iso = acc.isolated[:, work] & (size != 0)
        ieq = acc.iso_margin[:, work] + upnl
        iso_bad = iso & (ieq < pmm)
        cooling = self.cooldown[work] > now
        cross_take = np.zeros(W, np.int64)  # reason of a cross takeover, 0 for none
        iso_take = np.zeros(size.shape, np.int64)
        iso_order = np.zeros(size.shape, np.bool_)
        if isinstance(style, ImmediateTakeover):
            iso_take[iso_bad] = Why.STYLE_TAKES_OVER
        elif isinstance(style, MarketChunks):
            below = iso_bad & self._below_backstop(style, ieq, pmm)
            iso_take[below] = Why.BACKSTOP
            iso_order = iso_bad & ~below
        else:
            iso_order = iso_bad
        ltv_only = w_ltv & ~w_cross
        cross_take[ltv_only] = Why.LTV_ABOVE_LIQUIDATION
        cross_pos = (size != 0) & ~acc.isolated[:, work]
        cross_order = np.zeros(size.shape, np.bool_)
        if isinstance(style, ImmediateTakeover):
            cross_take[w_cross] = Why.STYLE_TAKES_OVER
        elif isinstance(style, MarketChunks):
            below = w_cross & self._below_backstop(style, w_eq, w_mm)
            cross_take[below] = Why.BACKSTOP
            cross_order = cross_pos & (w_cross & ~below)[None, :]
        else:
            chosen = np.argmax(np.where(cross_pos, notional, -1), axis=0)
            cross_order[chosen, np.arange(W)] = w_cross & cross_pos[chosen, np.arange(W)]
        orders = self._orders(style, work, size, iso_order, cross_order, ieq, pmm, w_eq, w_mm, notional, mmr, cooling)
        self.clock.lap("plan")
        # D. send every liquidation order as one batch
        fills = self._send(ev, orders, now)
        if isinstance(style, MarketChunks) and len(orders[0]):
            self.cooldown[orders[1][orders[5]]] = now + style.cooldown_ns
        self.clock.lap("book orders")
        # E. clearance fees, then the style decides who is taken over now
        self._clearance_fees(ev, fills, now)
        rest = cross_take == 0
        if rest.any():
            sub = work[rest]
            eq2, mm2, cross2, _isob2, ltv2 = self._figures(sub)
            upnl2, pmm2, _, _ = self._positions(sub)
            size2 = acc.size[:, sub]
            ieq2 = acc.iso_margin[:, sub] + upnl2
            iso_bad2 = acc.isolated[:, sub] & (size2 != 0) & (ieq2 < pmm2) & (iso_take[:, rest] == 0)
            t2 = self._after_book(style, ieq2, pmm2, iso_bad2)
            iso_take[:, rest] = np.where(iso_bad2 & (t2 != 0), t2, iso_take[:, rest])
            c2 = np.zeros(len(sub), np.int64)
            c2[ltv2 & ~cross2] = Why.LTV_ABOVE_LIQUIDATION
            after = self._after_book(style, eq2, mm2, cross2)
            c2 = np.where((c2 == 0) & cross2, after, c2)
            cross_take[rest] = c2
        self.clock.lap("assess")
        # F. takeovers
        self._takeovers(ev, work, cross_take, iso_take, now)
        self.clock.lap("takeovers+ADL")
        # G. compliant again
        still = work[acc.state[work] == LIQUIDATING]
        if len(still):
            eq3, mm3, cross3, isob3, ltv3 = self._figures(still)
            ok = ~(cross3 | isob3 | ltv3)
            acc.state[still[ok]] = NORMAL
            ev.extend(records(now, Ev.COMPLIANT, still[ok], amount=eq3[ok], pnl=mm3[ok]))
        self.clock.lap("compliant")
        return self._finish(ev, now)

    # --- tier 1 ------------------------------------------------------------------------------------------
    @staticmethod
    def _below_backstop(style: MarketChunks, equity: np.ndarray, maint: np.ndarray) -> np.ndarray:
        num, den = style.backstop
        return equity * den < maint * num

    def _after_book(self, style: object, equity: np.ndarray, maint: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """The style's verdict after the book, where ``bad``: a reason code, 0 to stay LIQUIDATING."""
        if isinstance(style, BookThenTakeover):
            return np.where(bad & (equity < maint), int(Why.BOOK_COULD_NOT_RESTORE), 0)
        if isinstance(style, MarketChunks):
            return np.where(bad & self._below_backstop(style, equity, maint), int(Why.BACKSTOP), 0)
        return np.where(bad, int(Why.STYLE_TAKES_OVER), 0)

    def _orders(self, style, work, size, iso_order, cross_order, ieq, pmm, w_eq, w_mm, notional, mmr, cooling) -> tuple:
        """(instrument, account, side, qty, price or 0, partial) of every order, sorted by instrument then account."""
        ch = self.ch
        k_i, j_i = np.nonzero(iso_order)
        k_c, j_c = np.nonzero(cross_order)
        k = np.concatenate([k_i, k_c]).astype(np.int64)
        j = np.concatenate([j_i, j_c]).astype(np.int64)
        if len(k) == 0:
            z = np.zeros(0, np.int64)
            return z, z, z, z, z, np.zeros(0, np.bool_)
        eq_x = np.concatenate([ieq[k_i, j_i], w_eq[j_c]])
        mm_x = np.concatenate([pmm[k_i, j_i], w_mm[j_c]])
        q = size[k, j]
        absq = np.abs(q)
        side = np.where(q > 0, -1, 1)
        mark = ch.marks[k]
        unit = ch.units[k]
        if isinstance(style, MarketChunks):
            partial = (notional[k, j] > style.threshold) & ~cooling[j]
            qty = np.where(partial, np.maximum(1, muldiv_vec(absq, style.fraction, RATE_SCALE)), absq)
            price = np.zeros(len(k), np.int64)
        else:
            assert isinstance(style, BookThenTakeover)
            partial = np.zeros(len(k), np.bool_)
            step = eq_x // np.maximum(1, absq * unit)  # to the bankruptcy price (beyond the mark when equity < 0)
            price = np.maximum(1, np.where(q > 0, mark - step, mark + step))
            rule = style.partial
            need = (
                muldiv_each(np.maximum(0, mm_x - eq_x), np.full(len(k), RATE_SCALE), np.maximum(1, mark * unit * mmr[k, j]), True)
                + 1
            )
            qty = np.minimum(absq, np.maximum(np.maximum(1, rule.factor * need), muldiv_vec(absq, rule.floor, RATE_SCALE)))
        acct = work[j]
        order = np.lexsort((acct, k))
        return k[order], acct[order], side[order], qty[order], price[order], partial[order]

    def _send(self, ev: Events, orders: tuple, now: int) -> np.ndarray:
        """Send the liquidation orders as one batch; record orders and fills; returns the FILL records."""
        k, acct, side, qty, price, partial = orders
        if len(k) == 0:
            return np.zeros(0, FILL)
        reqs = np.zeros(len(k), ORDER_REQUEST)
        reqs["ts"] = now
        reqs["account"] = acct
        reqs["price"] = price
        reqs["qty"] = qty
        reqs["instrument"] = k
        reqs["flags"] = FLAG_LIQUIDATION | FLAG_REDUCE_ONLY
        reqs["kind"] = np.where(price > 0, Op.LIMIT, Op.MARKET)
        reqs["side"] = side
        reqs["tif"] = TIF.IOC
        reqs["stp"] = STP.NONE
        ev.extend(records(now, Ev.LIQUIDATION_ORDER, acct, instrument=k, side=side, qty=qty, price=price,
                          reason=np.where(partial, Why.PARTIAL_CHUNK, Why.NONE)))  # fmt: skip
        fills = self.venue.submit_risk_batch(reqs).fills
        ev.extend(records(now, Ev.LIQUIDATION_FILL, fills["taker_account"], instrument=fills["instrument"],
                          side=fills["aggressor"],
                          qty=fills["qty"], price=fills["price"], pnl=fills["taker_pnl"]))  # fmt: skip
        return fills

    def _params(self, now: int) -> LK.EngineParams:
        ch, cfg = self.ch, self.cfg
        return LK.EngineParams(
            self.liquidator,
            int(cfg.trigger.code),
            int(getattr(cfg.trigger, "threshold", 0)),
            int(cfg.trigger.reason),
            int(cfg.adl_price.code),
            adl.rule_code(cfg.ranking),
            np.array(self.fund_accounts, np.int64),
            np.array([self.fund_of(k) for k in range(len(ch.perps))], np.int64),
            np.array([self.history_peak(f, now) for f in range(len(self.fund_accounts))], np.int64),
            self.prev_marks.astype(np.int64),
            np.array([ch.lending.pools[a] for a in ch.assets], np.int64),
        )

    def _clearance_fees(self, ev: Events, fills: np.ndarray, now: int) -> None:
        rate = self.cfg.style.clearance_fee
        if rate == 0 or len(fills) == 0 or self.cfg.vault:
            return
        ch = self.ch
        acct = fills["taker_account"].astype(np.int64)
        k = fills["instrument"].astype(np.int64)
        notional = fills["price"] * fills["qty"] * ch.units[k]
        order = np.lexsort((k, acct))
        acct, k, notional = acct[order], k[order], notional[order]
        first = np.r_[True, (acct[1:] != acct[:-1]) | (k[1:] != k[:-1])]
        starts = np.flatnonzero(first)
        sums = np.add.reduceat(notional, starts)
        out = self._out(len(starts), 0, 0)
        LK.clearance_fees(ch.ledger.arrays, ch.accounts.arrays, ch.core.params, self._params(now), out, now, acct[starts],
                          k[starts],
                          np.ascontiguousarray(sums, np.int64), int(rate))  # fmt: skip
        ev.extend(out.events[: out.meta[0]].copy())

    @staticmethod
    def _out(n_events: int, n_fills: int, n_assets: int) -> LK.Out:
        return LK.Out(
            np.zeros(max(1, n_events), LIQ_EVENT), np.zeros(max(1, n_fills), FILL), np.zeros((max(1, n_fills), 2), np.int64),
            np.zeros(max(1, n_assets), np.int64), np.zeros(3, np.int64),
        )  # fmt: skip

    # --- takeovers -------------------------------------------------------------------------------------------
    def _takeovers(self, ev: Events, work: np.ndarray, cross_take: np.ndarray, iso_take: np.ndarray, now: int) -> None:
        ch, cfg = self.ch, self.cfg
        acc = ch.accounts.arrays
        has = (cross_take != 0) | (iso_take != 0).any(axis=0)
        if not has.any():
            return
        idx = np.flatnonzero(has)
        accts = work[idx]
        scope_all = cfg.style.scope == SCOPE_ALL
        mode = np.where(cross_take[idx] != 0, LK.MODE_ALL if scope_all else LK.MODE_CROSS, LK.MODE_NONE).astype(np.int64)
        iso_sel = iso_take[:, idx] != 0
        iso_sel[:, mode == LK.MODE_ALL] = False
        counts = iso_sel.sum(axis=0)
        iso_off = np.r_[0, np.cumsum(counts)].astype(np.int64)
        jj, kk = np.nonzero(iso_sel.T)  # by account, then perpetual ascending
        plan = LK.Plan(accts.astype(np.int64), mode, cross_take[idx].astype(np.int64), iso_off, kk.astype(np.int64),
                       iso_take[:, idx].T[jj, kk].astype(np.int64))  # fmt: skip
        # which ADL queues a deficit could need: the opposite side of every position taken over
        size = acc.size[:, accts]
        taken = (size != 0) & (
            (mode == LK.MODE_ALL)[None, :]
            | ((mode == LK.MODE_CROSS)[None, :] & ~acc.isolated[:, accts])
            | (iso_take[:, idx] != 0)
        )
        slots = np.unique((2 * np.nonzero(taken)[0] + (size[taken] > 0)).astype(np.int64))  # slot of the opposite side
        ranks = self._ranks(slots, now)
        n_slot = int(np.diff(ranks.off).max()) if len(ranks.off) > 1 else 0
        P, A = len(ch.perps), len(ch.assets)
        per_perp = [np.zeros(max(P, 1), np.int64) for _ in range(6)]
        scratch = LK.Scratch(
            per_perp[0],
            per_perp[1],
            per_perp[2],
            per_perp[3],
            per_perp[4],
            per_perp[5],
            np.zeros(max(len(self.fund_accounts), 1), np.int64),
            (np.zeros(max(n_slot, 1), np.int64), *adl.scratch(max(n_slot, 1))),
            np.zeros(max(n_slot, 1), np.int64),
            np.zeros(4 * max(P, 1), np.int64),
            np.zeros(max(ch.accounts.n, 1), np.int64),
        )
        room_events = n_slot + 8 * P + 2 * A + 16
        room_fills = n_slot + P + 4
        room_journal = 4 * (n_slot + P + 4) + 4 * A + 4 * P + 16
        params = self._params(now)
        pools = ch.settlement.pools
        out = self._out(room_events * 4, room_fills * 4, A)
        j = 0
        fills, closed = [], []
        while True:
            j = LK.takeovers(ch.ledger.arrays, acc, ch.core.params, params, ranks, scratch, plan, out, now, j, pools,
                             len(self.fund_accounts), self.cooldown, room_events, room_fills, room_journal)  # fmt: skip
            ev.extend(out.events[: out.meta[0]].copy())
            fills.append(out.fills[: out.meta[1]].copy())
            closed.append(out.closed[: out.meta[2]].copy())
            out.meta[:] = 0
            if j >= len(plan.acct):
                break
            ch.ledger.ensure_journal_room(room_journal)
        for a, code in enumerate(ch.assets):
            ch.lending.principal[code] -= int(out.repaid[a])
        f = np.concatenate(fills)
        if len(f):
            self.venue.fill_log.append(f)
        c = np.concatenate(closed)
        self._cancel_adl(sorted({(int(k), int(i)) for k, i in c}), now)

    def _ranks(self, slots: np.ndarray, now: int) -> LK.Ranks:
        """Score the ADL candidates of each needed (perpetual, side) slot, with array code."""
        ch = self.ch
        acc = ch.accounts.arrays
        n = ch.accounts.n
        P = len(ch.perps)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in ("account", "order", "rank", "profitable", "equity", "score")}
        off = np.zeros(2 * P + 1, np.int64)
        wanted = set(slots.tolist())
        for s in range(2 * P):
            count = 0
            if s in wanted:
                k, side = s // 2, 1 if s % 2 == 0 else -1
                c = self.candidate_arrays(k, side)
                self.adl_queues[(k, side)] = (c.account, np.abs(c.size), c.upnl > 0, c.equity)
                score = adl.scores(self.cfg.ranking, c)
                order = adl.order(score, c.account, c.upnl).astype(np.int64)
                rank = np.empty(len(c), np.int64)
                rank[order] = np.arange(1, len(c) + 1)
                for name, arr in (("account", c.account), ("order", order), ("rank", rank), ("profitable", c.upnl > 0),
                                  ("equity", c.equity), ("score", score)):  # fmt: skip
                    parts[name].append(arr)
                count = len(c)
            off[s + 1] = off[s] + count
        del n, acc

        def cat(name: str, dtype: type) -> np.ndarray:
            return np.ascontiguousarray(np.concatenate(parts[name]), dtype) if parts[name] else np.zeros(0, dtype)

        return LK.Ranks(off, cat("account", np.int64), cat("order", np.int64), cat("rank", np.int64), cat("profitable", np.bool_),
                        cat("equity", np.int64), cat("score", np.float64))  # fmt: skip

    def adl_candidates(self, k: int, side: int) -> adl.Candidates:
        """See :meth:`candidate_arrays`."""
        return self.candidate_arrays(k, side)

    def candidate_arrays(self, k: int, side: int) -> adl.Candidates:
        """NORMAL accounts (not the liquidator) holding ``side`` of perpetual ``k``, with their figures (arrays)."""
        ch = self.ch
        acc = ch.accounts.arrays
        n = ch.accounts.n
        if self._holders.shape[0] < n:
            self._holders = np.empty(max(n, 2 * self._holders.shape[0]), np.int64)
        m = LK.adl_holders(acc, k, side, n, self.liquidator, self._holders)
        ids = self._holders[:m].copy()
        out = [np.empty(m, np.int64) for _ in range(7)]
        if m:
            kern = LK.adl_figures if m >= EXACT_PARALLEL_FROM else LK.adl_figures_serial
            kern(ch.core.params, acc, ch.ledger.balances, k, ids, *out)
        return adl.Candidates(ids, *out)
