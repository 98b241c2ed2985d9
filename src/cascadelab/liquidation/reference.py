"""The reference liquidation engine: the three tiers, one account at a time in plain Python.

One step at ``now`` runs these phases, each over accounts in ascending id (the batched
engine, :mod:`cascadelab.liquidation.engine`, runs the same phases on arrays and must give
identical events, balances and positions):

A. **Evaluate.** Accounts below maintenance (cross, an isolated position, or the loan-to-
   value) and every account already LIQUIDATING are evaluated exactly. A LIQUIDATING account
   that is compliant again goes back to NORMAL (``COMPLIANT``); a NORMAL one that breaches
   becomes LIQUIDATING (``LIQUIDATION_START``).
B. **Cancel** the open orders of the accounts that just started (one batch).
C. **Plan** tier 1 with the profile's style: take over at once, or liquidation orders.
D. **Send** every liquidation order of the step as one batch, ordered by instrument then
   account, through the venue's order entry (reduce-only IOC or market, no client checks).
E. **After the book**: clearance fees (never more than the remaining equity); the style
   decides which accounts that still breach are taken over now.
F. **Take over** (tier 2 and 3), account by account. The deficit is measured on the whole
   account: positions in scope closed at the mark, every collateral asset at its margin
   value, every debt at full value. A positive remainder goes to the fund. A deficit is
   split over the positions by notional; for each share the profile's ADL trigger says how
   much the fund pays; ADL closes exactly the fraction of that position the fund does not
   cover, at the profile's ADL price, against opposite positions ranked once per step per
   instrument and side (profitable first), and the rest of the position goes to the
   liquidator at the mark. What neither covers is explicit bad debt (socialized loss).
G. Accounts still LIQUIDATING that are now compliant go back to NORMAL.
H. **Unwind**: the liquidator sells what it holds within its order and notional budgets.
I. **Sweep**: the liquidator's results go to the funds; a loss a fund cannot pay is
   socialized explicitly. No fund ever goes below zero.
"""

from __future__ import annotations

import numpy as np

from cascadelab.arith import largest_remainder, muldiv_ceil
from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.margin import collateral_value, cross_breach
from cascadelab.fees import fee
from cascadelab.liquidation import adl
from cascadelab.liquidation.base import EngineBase, Events
from cascadelab.liquidation.policy import SCOPE_ALL, BookThenTakeover, MarketChunks, OnNegativeEquity
from cascadelab.records import (
    BOOK_FILL,
    FILL,
    FLAG_LIQUIDATION,
    FLAG_REDUCE_ONLY,
    ORDER_REQUEST,
    STP,
    TIF,
    CancelReason,
    Ev,
    FillKind,
    Kind,
    Op,
    Why,
)
from cascadelab.units import MONEY_SCALE


class ReferenceEngine(EngineBase):
    """Runs detection, the three tiers and the liquidator's unwinding for one venue, account by account."""

    def __init__(self, venue, config) -> None:
        super().__init__(venue, config)
        self.cooldown_until: dict[int, int] = {}
        self._ranks: dict[tuple[int, int], tuple[adl.Candidates, np.ndarray]] = {}
        self._adl_closed: list[tuple[int, int]] = []

    # --- figures -------------------------------------------------------------------------------------
    def figures(self, i: int) -> tuple[int, int, list[int], bool]:
        """(cross equity, cross maintenance, isolated positions in breach, loan-to-value breach) of account ``i``."""
        ch = self.ch
        am = ch.account_margin(i)
        iso_bad = [ch.perp_index[p.instrument] for p in am.positions if p.isolated and p.isolated_margin + p.upnl < p.maintenance]
        ltv_bad = bool(ch.accounts.debt[:, i].any()) and ch.ltv(i) > ch.loan_terms.liquidation_ltv
        return am.equity, am.maintenance, iso_bad, ltv_bad

    def breaching(self, i: int) -> bool:
        """Below cross maintenance, an isolated position below its own, or loan-to-value above the limit."""
        eq, mm, iso_bad, ltv_bad = self.figures(i)
        return bool(cross_breach(eq, mm)) or bool(iso_bad) or ltv_bad

    def _iso(self, i: int, k: int) -> tuple[int, int, int]:
        """(isolated equity, maintenance, notional) of account ``i``'s isolated position ``k``."""
        pm = next(p for p in self.ch.account_margin(i).positions if p.instrument == self.ch.perps[k].instrument.symbol)
        return pm.isolated_margin + pm.upnl, pm.maintenance, pm.notional

    # --- the step --------------------------------------------------------------------------------------
    def step(self, now: int) -> np.ndarray:
        """Run one risk cycle at ``now`` (after prices and order entry); returns the step's LIQ_EVENT records."""
        self.clock.start()
        ch = self.ch
        ev = Events(now)
        state = ch.accounts.state
        n = ch.accounts.n
        below = set(np.flatnonzero(ch.scan().below_maintenance).tolist()) | set(ch.ltv_breaches().tolist())
        below |= set(np.flatnonzero(state[:n] == AccountState.LIQUIDATING).tolist())
        below.discard(self.liquidator)
        # A. evaluate
        self.adl_queues = {}
        work, started = [], []
        for i in sorted(below):
            if state[i] not in (AccountState.NORMAL, AccountState.LIQUIDATING):
                continue
            eq, mm, iso_bad, ltv_bad = self.figures(i)
            cross = bool(cross_breach(eq, mm))
            if not (cross or iso_bad or ltv_bad):
                if state[i] == AccountState.LIQUIDATING:
                    state[i] = AccountState.NORMAL
                    ev.add(Ev.COMPLIANT, i, amount=eq, pnl=mm)
                continue
            if state[i] == AccountState.NORMAL:
                state[i] = AccountState.LIQUIDATING
                why = (
                    Why.BELOW_MAINTENANCE if cross else (Why.ISOLATED_BELOW_MAINTENANCE if iso_bad else Why.LTV_ABOVE_LIQUIDATION)
                )
                ev.add(Ev.LIQUIDATION_START, i, amount=eq, pnl=mm, reason=why)
                started.append(i)
            work.append(i)
        # B. cancel the open orders of accounts that just started
        if started:
            mask = np.zeros(n, np.bool_)
            mask[started] = True
            cancels = self.venue.cancel_accounts(mask, CancelReason.LIQUIDATION, now)
            counts = np.bincount(cancels["account"], minlength=n) if len(cancels) else np.zeros(n, np.int64)
            for i in started:
                if counts[i]:
                    ev.add(Ev.ORDERS_CANCELLED, i, qty=int(counts[i]))
        # C. plan tier 1
        style = self.cfg.style
        cross_takeover: dict[int, Why] = {}
        iso_takeover: dict[int, list[tuple[int, Why]]] = {}
        orders: list[tuple[int, int, int, int, int, bool]] = []  # (instrument, account, side, qty, price or 0, partial)
        for i in work:
            eq, mm, iso_bad, ltv_bad = self.figures(i)
            cooling = self.cooldown_until.get(i, -1) > now
            for k in iso_bad:
                ieq, imm, inotional = self._iso(i, k)
                verdict = style.immediate(ieq, imm)
                if verdict is not None:
                    iso_takeover.setdefault(i, []).append((k, verdict))
                else:
                    orders.append(self._order(i, k, ieq, imm, inotional, cooling))
            cross = bool(cross_breach(eq, mm))
            if ltv_bad and not cross:
                cross_takeover[i] = Why.LTV_ABOVE_LIQUIDATION
            elif cross:
                verdict = style.immediate(eq, mm)
                if verdict is not None:
                    cross_takeover[i] = verdict
                else:
                    for k in self._cross_targets(i):
                        acc = ch.accounts.arrays
                        notional = abs(int(acc.size[k, i])) * int(ch.marks[k]) * int(ch.units[k])
                        orders.append(self._order(i, k, eq, mm, notional, cooling))
        # D. send every liquidation order as one batch (by instrument, then account)
        orders.sort(key=lambda o: (o[0], o[1]))
        fills = self._send(ev, orders, now)
        if isinstance(style, MarketChunks):
            for _b, i, _s, _q, _p, partial in orders:
                if partial:
                    self.cooldown_until[i] = now + style.cooldown_ns
        # E. clearance fees, then the style decides who is taken over now
        self._clearance_fees(ev, fills, now)
        for i in work:
            if i in cross_takeover:
                continue
            eq, mm, iso_bad, ltv_bad = self.figures(i)
            for k in iso_bad:
                if any(kk == k for kk, _ in iso_takeover.get(i, [])):
                    continue
                ieq, imm, _ = self._iso(i, k)
                verdict = style.after_book(ieq, imm)
                if verdict is not None:
                    iso_takeover.setdefault(i, []).append((k, verdict))
            if ltv_bad and not cross_breach(eq, mm):
                cross_takeover[i] = Why.LTV_ABOVE_LIQUIDATION
            elif cross_breach(eq, mm):
                verdict = style.after_book(eq, mm)
                if verdict is not None:
                    cross_takeover[i] = verdict
        # F. takeovers, account by account; ADL rankings are scored once, before the first takeover
        acc = ch.accounts.arrays
        pairs = set()
        for i in work:
            every = style.scope == SCOPE_ALL and i in cross_takeover
            for k in range(len(ch.perps)):
                q = int(acc.size[k, i])
                taken = (
                    every or (i in cross_takeover and not acc.isolated[k, i]) or any(kk == k for kk, _ in iso_takeover.get(i, []))
                )
                if q and taken:
                    pairs.add((k, -1 if q > 0 else 1))
        self._ranks = {key: self._score(*key) for key in sorted(pairs)}
        self.adl_queues = {key: (c.account, np.abs(c.size), c.upnl > 0, c.equity) for key, (c, _) in self._ranks.items()}
        self._adl_closed = []
        self._adl_used: dict[int, int] = {}
        for i in work:
            if style.scope == SCOPE_ALL and i in cross_takeover:
                self._takeover(ev, i, all_positions=True, why=cross_takeover[i])
                continue
            for k, why in sorted(iso_takeover.get(i, [])):
                self._takeover_isolated(ev, i, k, why)
            if i in cross_takeover:
                self._takeover(ev, i, all_positions=False, why=cross_takeover[i])
        self._cancel_adl(sorted(set(self._adl_closed)), now)
        # G. compliant again
        for i in work:
            if state[i] == AccountState.LIQUIDATING and not self.breaching(i):
                state[i] = AccountState.NORMAL
                eq, mm, _, _ = self.figures(i)
                ev.add(Ev.COMPLIANT, i, amount=eq, pnl=mm)
        # H. unwind, I. sweep
        return self._finish(ev, now)

    # --- tier 1 ----------------------------------------------------------------------------------------
    def _cross_targets(self, i: int) -> list[int]:
        """Cross positions to liquidate: the largest (Binance style) or all of them (market style)."""
        ch = self.ch
        acc = ch.accounts.arrays
        ks = [k for k in range(len(ch.perps)) if acc.size[k, i] != 0 and not acc.isolated[k, i]]
        if isinstance(self.cfg.style, MarketChunks):
            return ks
        if not ks:
            return []
        return [max(ks, key=lambda k: (abs(int(acc.size[k, i])) * int(ch.marks[k]) * int(ch.units[k]), -k))]

    def _order(self, i: int, k: int, eq: int, mm: int, notional: int, cooling: bool) -> tuple[int, int, int, int, int, bool]:
        """One liquidation order (instrument, account, side, qty, price or 0 for market, partial chunk?)."""
        ch = self.ch
        style = self.cfg.style
        q = int(ch.accounts.size[k, i])
        side = -1 if q > 0 else 1
        mark, unit = int(ch.marks[k]), int(ch.units[k])
        if isinstance(style, MarketChunks):
            qty, partial = style.chunk(q, notional, cooling)
            return (k, i, side, qty, 0, partial)
        assert isinstance(style, BookThenTakeover)
        step = eq // (
            abs(q) * unit
        )  # ticks to the bankruptcy price with the rest of the account fixed (beyond the mark if eq < 0)
        price = max(1, mark - step if q > 0 else mark + step)
        tiers = ch.perps[k].tiers
        qty = style.partial.lots(q, mm - eq, mark * unit, tiers.mmr[tiers.tier(notional)])
        return (k, i, side, qty, price, False)

    def _send(self, ev: Events, orders: list, now: int) -> np.ndarray:
        """Send the liquidation orders as one batch; record orders and fills; returns the FILL records."""
        if not orders:
            return np.zeros(0, FILL)
        reqs = np.zeros(len(orders), ORDER_REQUEST)
        for j, (k, i, side, qty, price, partial) in enumerate(orders):
            kind = Op.LIMIT if price else Op.MARKET
            reqs[j] = (now, i, 0, price, qty, k, FLAG_LIQUIDATION | FLAG_REDUCE_ONLY, kind, side, TIF.IOC, STP.NONE)
            ev.add(
                Ev.LIQUIDATION_ORDER,
                i,
                instrument=k,
                side=side,
                qty=qty,
                price=price,
                reason=Why.PARTIAL_CHUNK if partial else Why.NONE,
            )
        out = self.venue.submit_risk_batch(reqs)
        for f in out.fills:
            ev.add(Ev.LIQUIDATION_FILL, int(f["taker_account"]), instrument=int(f["instrument"]), side=int(f["aggressor"]),
                   qty=int(f["qty"]), price=int(f["price"]), pnl=int(f["taker_pnl"]))  # fmt: skip
        return out.fills

    def _clearance_fees(self, ev: Events, fills: np.ndarray, now: int) -> None:
        """A fee on each account's liquidated notional per instrument, to that instrument's fund, capped at its equity."""
        rate = self.cfg.style.clearance_fee
        if rate == 0 or len(fills) == 0 or self.cfg.vault:
            return
        ch = self.ch
        notional: dict[tuple[int, int], int] = {}
        for f in fills:
            key = (int(f["taker_account"]), int(f["instrument"]))
            notional[key] = notional.get(key, 0) + int(f["price"]) * int(f["qty"]) * int(ch.units[key[1]])
        for i, k in sorted(notional):
            eq = self.figures(i)[0]
            amount = min(fee(notional[(i, k)], rate), max(0, eq))
            if amount > 0:
                f = self.fund_of(k)
                ch.ledger.transfer(ch.q, i, self.fund_accounts[f], amount, Kind.LIQUIDATION_FEE, now)
                ev.add(Ev.CLEARANCE_FEE, i, instrument=k, amount=amount, fund=f, fund_balance=self.fund_balance(f))

    # --- takeover, tier 2 and tier 3 ---------------------------------------------------------------------
    def _synthetic(
        self, k: int, makers: list[int], taker: int, taker_side: int, price: int, qtys: list[int], kind: FillKind
    ) -> np.ndarray:
        """Settle position transfers (no book, no fee): ``taker`` trades ``taker_side`` against each maker."""
        rows = np.zeros(len(makers), BOOK_FILL)
        ts = self.venue.now_ns
        for j, (m, q) in enumerate(zip(makers, qtys, strict=True)):
            rows[j] = (ts, 0, 0, m, taker, price, q, taker_side, 0, FLAG_LIQUIDATION)
        fills = self.ch.settlement.perp_fills(k, rows, kind, maker_rate=0, taker_rate=0)
        self.venue.fill_log.append(fills)
        return fills

    def _value_after_close(self, i: int, ks: list[int], keep_isolated: bool) -> int:
        """Account ``i``'s value with positions ``ks`` closed at the mark, collateral at margin value, debts at full value."""
        ch = self.ch
        acc = ch.accounts.arrays
        bal = ch.ledger.balances
        P = ch.core.params
        value = int(bal[ch.q, i])
        if keep_isolated:
            value -= sum(int(acc.iso_margin[k, i]) for k in range(len(ch.perps)) if acc.isolated[k, i] and k not in ks)
        for k in ks:
            value += int(acc.size[k, i]) * int(ch.marks[k]) * int(ch.units[k]) - int(acc.cost[k, i])
        for a in range(len(ch.assets)):
            if a != ch.q and bal[a, i] > 0:
                value += int(collateral_value(P, a, int(bal[a, i])))
            d = int(acc.debt[a, i])
            if d:
                value -= int(muldiv_ceil(d, int(ch.asset_price[a]), MONEY_SCALE))
        return value

    def _takeover(self, ev: Events, i: int, all_positions: bool, why: Why) -> None:
        """Cross (or whole-account) takeover: ADL where the fund cannot pay, the rest to the liquidator."""
        ch = self.ch
        acc = ch.accounts.arrays
        ks = [k for k in range(len(ch.perps)) if acc.size[k, i] != 0 and (all_positions or not acc.isolated[k, i])]
        value = self._value_after_close(i, ks, keep_isolated=not all_positions)
        weights = self._weights(i, ks, deficit=value < 0)
        allowed = self._deficit_and_adl(ev, i, ks, weights, max(0, -value))
        for k in ks:
            q = int(acc.size[k, i])
            if q:
                self._synthetic(k, [self.liquidator], i, -1 if q > 0 else 1, int(ch.marks[k]), [abs(q)], FillKind.TAKEOVER)
                ev.add(Ev.TAKEOVER, i, instrument=k, side=1 if q > 0 else -1, qty=abs(q), price=int(ch.marks[k]), reason=why)
        self._take_collateral_and_debts(ev, i)
        kept = sum(int(acc.iso_margin[k, i]) for k in range(len(ch.perps)) if acc.isolated[k, i] and acc.size[k, i] != 0)
        rest = int(ch.ledger.balances[ch.q, i]) - kept
        self._settle_rest(ev, i, ks, weights, rest, allowed)
        self.cooldown_until.pop(i, None)
        if kept or acc.size[:, i].any():
            ch.accounts.state[i] = AccountState.LIQUIDATING  # isolated positions live on; re-evaluated in phase G
        else:
            ch.accounts.state[i] = AccountState.BANKRUPT if value < 0 else AccountState.TAKEN_OVER

    def _takeover_isolated(self, ev: Events, i: int, k: int, why: Why) -> None:
        """Isolated takeover: that position and its margin only; the rest of the account is untouched."""
        ch = self.ch
        acc = ch.accounts.arrays
        q = int(acc.size[k, i])
        if q == 0:
            return
        margin = int(acc.iso_margin[k, i])
        value = margin + q * int(ch.marks[k]) * int(ch.units[k]) - int(acc.cost[k, i])
        weights = self._weights(i, [k])
        before = int(ch.ledger.balances[ch.q, i])
        allowed = self._deficit_and_adl(ev, i, [k], weights, max(0, -value))
        q = int(acc.size[k, i])
        if q:
            self._synthetic(k, [self.liquidator], i, -1 if q > 0 else 1, int(ch.marks[k]), [abs(q)], FillKind.TAKEOVER)
            ev.add(Ev.TAKEOVER, i, instrument=k, side=1 if q > 0 else -1, qty=abs(q), price=int(ch.marks[k]), reason=why)
        # the closes moved the isolated result into the wallet; what the margin is worth now is the remainder
        rest = margin + int(ch.ledger.balances[ch.q, i]) - before
        acc.iso_margin[k, i] = 0
        ch.ledger.note(np.array([i]))
        self._settle_rest(ev, i, [k], weights, rest, allowed)

    def _weights(self, i: int, ks: list[int], deficit: bool = False) -> np.ndarray:
        """How a takeover's result is split over positions ``ks``: a deficit by each position's loss at the mark
        (ADL is per coin, DOMAIN.md: a loss is never carried to another coin's counterparties), else by notional."""
        ch = self.ch
        acc = ch.accounts.arrays
        notional = np.array([abs(int(acc.size[k, i])) * int(ch.marks[k]) * int(ch.units[k]) for k in ks], np.int64)
        if not deficit:
            return notional
        loss = np.array([max(0, int(acc.cost[k, i]) - int(acc.size[k, i]) * int(ch.marks[k]) * int(ch.units[k])) for k in ks],
                        np.int64)  # fmt: skip
        return loss if loss.sum() > 0 else notional

    def _deficit_and_adl(self, ev: Events, i: int, ks: list[int], weights: np.ndarray, deficit: int) -> dict[int, int]:
        """Split ``deficit`` over positions ``ks`` by notional; ADL what each fund may not pay.

        Returns, per perpetual, how much its fund may pay toward what remains after ADL.
        """
        ch = self.ch
        acc = ch.accounts.arrays
        allowed: dict[int, int] = {}
        if deficit <= 0:
            return allowed
        shares = largest_remainder(deficit, weights, tiebreak=np.array(ks)) if ks else np.zeros(0, np.int64)
        trig = self.cfg.trigger
        committed: dict[int, int] = {}
        for k, share in zip(ks, shares.tolist(), strict=True):
            if share <= 0:
                continue
            f = self.fund_of(k)
            actual = self.fund_balance(f)
            bal = actual - committed.get(f, 0)
            pays = trig.fund_pays(share, bal, max(self.history_peak(f, ev.ts), actual))
            allowed[k] = pays if not isinstance(trig, OnNegativeEquity) else max(0, bal)
            committed[f] = committed.get(f, 0) + allowed[k]
            rest = share - pays
            if rest <= 0:
                continue
            q = int(acc.size[k, i])
            lots = min(abs(q), int(muldiv_ceil(abs(q), rest, share)))
            side = 1 if q > 0 else -1
            price = self.cfg.adl_price.price(side, abs(q), int(ch.units[k]), share, int(ch.marks[k]), int(self.prev_marks[k]))
            ev.add(Ev.ADL_TRIGGER, i, instrument=k, side=side, qty=lots, price=price, amount=share, pnl=pays, fund=f,
                   fund_balance=bal, reason=trig.reason)  # fmt: skip
            self._adl(ev, i, k, side, lots, price, trig.reason)
        return allowed

    def _score(self, k: int, side: int) -> tuple[adl.Candidates, np.ndarray]:
        """Candidates on ``side`` of perpetual ``k`` and their scores (once per step)."""
        c = self.candidates(k, side)
        return c, adl.scores(self.cfg.ranking, c)

    def adl_candidates(self, k: int, side: int) -> adl.Candidates:
        """See :meth:`candidates`."""
        return self.candidates(k, side)

    def candidates(self, k: int, side: int) -> adl.Candidates:
        """NORMAL accounts (not the liquidator) holding ``side`` (+1 long) of perpetual ``k``, with their figures."""
        ch = self.ch
        acc = ch.accounts.arrays
        n = ch.accounts.n
        size = acc.size[k, :n]
        mask = ((size > 0) if side > 0 else (size < 0)) & (acc.state[:n] == AccountState.NORMAL)
        mask[self.liquidator] = False
        ids = np.flatnonzero(mask)
        rows = []
        for c in ids.tolist():
            am = ch.account_margin(c)
            pos = next(p for p in am.positions if p.instrument == ch.perps[k].instrument.symbol)
            cross_upnl = sum(p.upnl for p in am.positions if not p.isolated)
            if pos.isolated:
                wallet, amm, aupnl = pos.isolated_margin, pos.maintenance, pos.upnl
            else:
                wallet, amm, aupnl = am.equity - cross_upnl, am.maintenance, cross_upnl
            rows.append(
                (
                    c,
                    pos.size,
                    int(acc.cost[k, c]),
                    pos.size * int(ch.marks[k]) * int(ch.units[k]),
                    pos.maintenance,
                    wallet,
                    amm,
                    aupnl,
                )
            )
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        return adl.Candidates(*(np.array(col, np.int64) for col in cols))

    def _adl(self, ev: Events, i: int, k: int, side: int, lots: int, price: int, why: Why) -> int:
        """Close ``lots`` of account ``i``'s position in ``k`` against ranked opposite positions at ``price``."""
        ch = self.ch
        acc = ch.accounts.arrays
        c, score = self._ranks[(k, -side)]
        if len(c) == 0:
            return 0
        live = acc.state[c.account] == AccountState.NORMAL
        remaining = np.where(live & (np.sign(acc.size[k, c.account]) == -side), np.abs(acc.size[k, c.account]), 0)
        ell = max(0, side * (price - int(ch.marks[k]))) * int(ch.units[k])  # a lot's cost to a counterparty vs the mark
        if ell > 0:  # nobody gives up more than its equity
            used = np.array([self._adl_used.get(int(a), 0) for a in c.account], np.int64)
            remaining = np.minimum(remaining, np.maximum(0, c.equity - used) // ell)
        cuts = adl.allocate(self.cfg.ranking, c, lots, remaining, float(int(ch.marks[k]) * int(ch.units[k])))
        order = adl.order(score, c.account, c.upnl)
        rank = np.empty(len(c), np.int64)
        rank[order] = np.arange(1, len(c) + 1)
        closed = 0
        for j in order.tolist():
            if cuts[j] <= 0:
                continue
            cid = int(c.account[j])
            self._adl_closed.append((k, cid))
            self._adl_used[cid] = self._adl_used.get(cid, 0) + int(cuts[j]) * ell
            upnl_before = int(acc.size[k, cid]) * int(ch.marks[k]) * int(ch.units[k]) - int(acc.cost[k, cid])
            fill = self._synthetic(k, [cid], i, -side, price, [int(cuts[j])], FillKind.ADL)
            ev.add(Ev.ADL_CLOSE, cid, instrument=k, side=side, qty=int(cuts[j]), price=price, amount=upnl_before,
                   pnl=int(fill[0]["maker_pnl"]), score=float(score[j]), rank=int(rank[j]), reason=why)  # fmt: skip
            closed += int(cuts[j])
        return closed

    def _take_collateral_and_debts(self, ev: Events, i: int) -> None:
        """Collateral to the liquidator at its margin value (paid in the quote asset); debts settled or taken over."""
        ch = self.ch
        acc = ch.accounts.arrays
        P = ch.core.params
        liq, q = self.liquidator, ch.q
        for a in range(len(ch.assets)):
            b = int(ch.ledger.balances[a, i])
            if a != q and b > 0:
                value = int(collateral_value(P, a, b))
                ch.ledger.transfer(a, i, liq, b, Kind.TAKEOVER, ev.ts)
                if value:
                    ch.ledger.transfer(q, liq, i, value, Kind.TAKEOVER, ev.ts)
                ev.add(Ev.COLLATERAL_TAKEN, i, asset=a, qty=b, amount=value)
        for a in range(len(ch.assets)):
            d = int(acc.debt[a, i])
            if d <= 0:
                continue
            acc.debt[a, i] = 0
            if a == q:  # a loan of the quote asset is repaid out of the account's balance
                ch.ledger.transfer(q, i, ch.lending.pools[ch.assets[a]], d, Kind.REPAY, ev.ts)
                ch.lending.principal[ch.assets[a]] -= d
                ev.add(Ev.DEBT_TAKEN, i, asset=a, qty=d, amount=d)
            else:  # the liquidator takes the loan over and is paid its value
                acc.debt[a, liq] += d
                ch.ledger.note(np.array([liq]))
                value = int(muldiv_ceil(d, int(ch.asset_price[a]), MONEY_SCALE))
                if value:
                    ch.ledger.transfer(q, i, liq, value, Kind.TAKEOVER, ev.ts)
                ev.add(Ev.DEBT_TAKEN, i, asset=a, qty=d, amount=value)

    def _settle_rest(self, ev: Events, i: int, ks: list[int], weights: np.ndarray, rest: int, allowed: dict[int, int]) -> None:
        """A positive remainder goes to the funds; a deficit is paid by the funds within their limits, then socialized.

        The remainder is split over the positions taken by their notional before the takeover
        (largest remainder); an account with no position uses the first fund.
        """
        if rest == 0:
            return
        if ks:
            parts = largest_remainder(abs(rest), weights, tiebreak=np.array(ks))
            targets = list(zip(ks, parts.tolist(), strict=True))
        else:
            targets = [(-1, abs(rest))]
        for k, part in targets:
            if part == 0:
                continue
            f = self.fund_of(max(k, 0))
            if rest > 0:
                self._fund_move(ev, f, i, -part, Kind.INSURANCE, Why.REMAINING_MARGIN, instrument=k)
                continue
            bal = self.fund_balance(f)
            pay = min(part, max(0, allowed.get(k, bal)), max(0, bal)) if self.fund_accounts[f] != i else 0
            self._fund_move(ev, f, i, pay, Kind.INSURANCE, Why.DEFICIT_COVERED, instrument=k)
            self._socialize(ev, i, part - pay, Why.DEFICIT_COVERED, instrument=k)
