"""What both liquidation engines share: funds and their history, events, the liquidator's unwinding and sweep.

The per-account phases (evaluate, cancel, plan tier 1, send, after the book, take over,
compliant again) differ: the reference engine runs them one account at a time in Python,
the batched engine on arrays. Unwinding and sweeping act per instrument (a handful), so
they are written once, here.
"""

from __future__ import annotations

import numpy as np

from cascadelab.arith import muldiv_ceil
from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.ledger import OUTSIDE, SOCIALIZED_LOSS
from cascadelab.liquidation import adl
from cascadelab.liquidation.config import LiquidationConfig
from cascadelab.liquidation.gateway import Gateway
from cascadelab.records import (
    BOOK_FILL,
    FLAG_LIQUIDATION,
    FLAG_REDUCE_ONLY,
    FLAG_UNWIND,
    FUND_NONE,
    LIQ_EVENT,
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
from cascadelab.timing import PhaseClock
from cascadelab.units import MONEY_SCALE, SECOND_NS

CREDIT_SCALE = SECOND_NS
"""The liquidator's order budget is counted in billionths of an order (exact integers)."""


class Events:
    """Events of one step, appended as LIQ_EVENT rows."""

    def __init__(self, ts: int) -> None:
        self.ts = ts
        self.rows: list[tuple] = []
        self.arrays: list[np.ndarray] = []

    def add(self, kind: Ev, account: int = -1, *, instrument: int = -1, side: int = 0, qty: int = 0, price: int = 0,
            amount: int = 0, pnl: int = 0, fund_balance: int = 0, score: float = 0.0, rank: int = 0,
            reason: Why = Why.NONE, fund: int = FUND_NONE, asset: int = -1) -> None:  # fmt: skip
        """Append one event (fields that do not apply keep their defaults)."""
        self.rows.append(
            (
                self.ts,
                account,
                qty,
                price,
                amount,
                pnl,
                fund_balance,
                score,
                rank,
                instrument,
                int(kind),
                int(reason),
                fund,
                asset,
                side,
            )
        )

    def extend(self, records: np.ndarray) -> None:
        """Append LIQ_EVENT records produced by compiled code (keeps the order)."""
        self._flush()
        if len(records):
            self.arrays.append(records)

    def _flush(self) -> None:
        if self.rows:
            self.arrays.append(np.array(self.rows, LIQ_EVENT))
            self.rows = []

    def array(self) -> np.ndarray:
        """The events as LIQ_EVENT records, in order."""
        self._flush()
        if not self.arrays:
            return np.zeros(0, LIQ_EVENT)
        return self.arrays[0] if len(self.arrays) == 1 else np.concatenate(self.arrays)


class EngineBase:
    """Funds, the liquidator account, unwinding and sweeping; subclasses run the per-account phases."""

    def __init__(self, venue: Gateway, config: LiquidationConfig) -> None:
        self.venue = venue
        self.ch = venue.clearing
        self.cfg = config
        self.liquidator = int(venue.open_accounts(1)[0])
        ch = self.ch
        symbols = [p.instrument.symbol for p in ch.perps]
        self.fund_names = config.funds.names(symbols)
        self.fund_accounts = [ch.ledger.system_account(name) for name in self.fund_names]
        if config.vault:
            self.fund_accounts = [self.liquidator]
        if config.fund_seed:
            for acct in self.fund_accounts:
                ch.ledger.transfer(ch.q, OUTSIDE, acct, config.fund_seed, Kind.FUND_SEED)
        self.history: list[list[tuple[int, int]]] = [[(0, self.fund_balance(f))] for f in range(len(self.fund_accounts))]
        self.credit = CREDIT_SCALE * config.liquidator_orders_per_s
        self.last_ns: int | None = None
        self.prev_marks = ch.marks.copy()
        self.swept = np.zeros(len(ch.perps), np.int64)
        self.unwind_fees = np.zeros(len(ch.perps), np.int64)
        self.event_log: list[np.ndarray] = []
        self.clock = PhaseClock()  # wall time per phase of step(), summed over steps
        self.adl_queues: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        """ADL queues scored in the last step: (perpetual, side) -> (accounts, |sizes|, profitable, equity), in snapshot order."""

    # --- funds ---------------------------------------------------------------------------------
    def fund_of(self, k: int) -> int:
        """Index of the fund backing perpetual ``k``."""
        return self.cfg.funds.index(k)

    def fund_balance(self, f: int) -> int:
        """Balance (quote asset) of fund ``f`` (the vault's capital for a vault profile)."""
        return self.ch.ledger.balance(self.fund_accounts[f], self.ch.q)

    def history_peak(self, f: int, now: int) -> int:
        """Highest balance fund ``f`` held at a step end within the drawdown window.

        The history keeps only changes (time, new balance), so the entry in force at the
        window's start counts too.
        """
        del now  # the history is pruned to the window at every step end
        return max(b for _, b in self.history[f])

    def fund_peak(self, f: int, now: int) -> int:
        """Highest balance of fund ``f`` within the drawdown window, now included."""
        return max(self.history_peak(f, now), self.fund_balance(f))

    def _record_funds(self, now: int) -> None:
        """Record each fund's balance if it changed; drop what the window no longer needs."""
        window = getattr(self.cfg.trigger, "window_ns", 0)
        for f, hist in enumerate(self.history):
            bal = self.fund_balance(f)
            if hist[-1][1] != bal:
                hist.append((now, bal))
            while len(hist) > 1 and hist[1][0] <= now - window:
                hist.pop(0)

    def _fund_move(self, ev: Events, f: int, account: int, amount: int, kind: Kind, why: Why, instrument: int = -1) -> None:
        """``amount`` > 0: fund ``f`` pays ``account``; < 0: ``account`` pays the fund."""
        if amount == 0:
            return
        fa = self.fund_accounts[f]
        if fa == account:
            return
        q = self.ch.q
        if amount > 0:
            self.ch.ledger.transfer(q, fa, account, amount, kind, ev.ts)
            ev.add(
                Ev.FUND_OUT, account, instrument=instrument, amount=amount, fund=f, fund_balance=self.fund_balance(f), reason=why
            )
        else:
            self.ch.ledger.transfer(q, account, fa, -amount, kind, ev.ts)
            ev.add(
                Ev.FUND_IN, account, instrument=instrument, amount=-amount, fund=f, fund_balance=self.fund_balance(f), reason=why
            )

    def _socialize(self, ev: Events, account: int, amount: int, why: Why, instrument: int = -1) -> None:
        """Explicit bad debt: the socialized-loss account pays ``amount`` to ``account``."""
        if amount > 0:
            self.ch.ledger.transfer(self.ch.q, SOCIALIZED_LOSS, account, amount, Kind.BAD_DEBT, ev.ts)
            ev.add(Ev.BAD_DEBT, account, instrument=instrument, amount=amount, reason=why)

    def _cancel_adl(self, closed: list[tuple[int, int]], now: int) -> None:
        """Cancel the open orders of accounts deleveraged this step, on the instrument they were closed in."""
        n = self.ch.accounts.n
        for k in sorted({k for k, _ in closed}):
            mask = np.zeros(n, np.bool_)
            mask[[c for kk, c in closed if kk == k]] = True
            self.venue.cancel_accounts(mask, CancelReason.ADL, now, instrument=k)

    def _liquidator_idle(self) -> bool:
        """The liquidator holds nothing and has no result left to sweep."""
        ch, liq = self.ch, self.liquidator
        acc = ch.accounts.arrays
        if acc.size[:, liq].any() or acc.debt[:, liq].any() or ch.ledger.balances[:, liq].any():
            return False
        return not (acc.realized[:, liq] - self.swept - self.unwind_fees).any()

    def _finish(self, ev: Events, now: int) -> np.ndarray:
        """Deleverage what the funds cannot carry, unwind, sweep, remember the marks and funds; returns the events."""
        if self._liquidator_idle():
            self._refill(now)  # nothing to unwind or sweep: both would only refill the order budget
        else:
            self._backlog_adl(ev, now)
            self._unwind(ev, now)
            self._sweep(ev)
        self.prev_marks = self.ch.marks.copy()
        self._record_funds(now)
        out = ev.array()
        self.clock.lap("unwind")
        if len(out):
            self.event_log.append(out)
        return out

    # --- the liquidator's backlog ---------------------------------------------------------------------
    def adl_candidates(self, k: int, side: int) -> adl.Candidates:
        """NORMAL accounts (not the liquidator) holding ``side`` of perpetual ``k``, with their figures."""
        raise NotImplementedError

    def _backlog_adl(self, ev: Events, now: int) -> None:
        """What the liquidator took over and still holds, losing more than its fund may pay, is deleveraged.

        The takeover put each position on the fund at the bankrupt account's value (DOMAIN.md:
        "the insurance fund takes the position over"); while the liquidator works through its
        backlog the price can keep moving. Per perpetual, the loss the liquidator carries (at
        the mark, plus results not yet swept) is what its fund must cover; the part the fund's
        trigger rule will not pay is closed by ADL against the ranked opposite positions at the
        profile's ADL price (with a vault, as for Hyperliquid: once the vault's own value
        cannot cover it). A queue scored by this step's takeovers is left to the next step, so
        each queue is scored once per step.
        """
        ch, cfg, liq = self.ch, self.cfg, self.liquidator
        if not cfg.backlog_adl:
            return
        acc = ch.accounts.arrays
        trig = cfg.trigger
        committed: dict[int, int] = {}
        closed: list[tuple[int, int]] = []
        sizes = acc.size[:, liq].tolist()
        held = [k for k, q in enumerate(sizes) if q != 0]
        if not held:
            return
        # the liquidator's row of perpetual k changes only when k's own queue deleverages, after k is read
        realized, cost = acc.realized[:, liq].tolist(), acc.cost[:, liq].tolist()
        marks, units, swept, fees = ch.marks.tolist(), ch.units.tolist(), self.swept.tolist(), self.unwind_fees.tolist()
        for k in held:
            q = sizes[k]
            side = 1 if q > 0 else -1
            if (k, -side) in self.adl_queues:
                continue
            mark, unit = marks[k], units[k]
            pending = realized[k] - swept[k] - fees[k]
            loss = max(0, -(q * mark * unit - cost[k] + pending))
            if loss == 0:
                continue
            f = self.fund_of(k)
            actual = self.fund_balance(f)
            bal = actual - committed.get(f, 0)
            # with the vault (trigger code 2), deleveraging starts when its own value no longer covers the loss
            pays = min(loss, max(0, bal)) if trig.code == 2 else trig.fund_pays(loss, bal, max(self.history_peak(f, now), actual))
            committed[f] = committed.get(f, 0) + pays
            rest = loss - pays
            if rest <= 0:
                continue
            price = cfg.adl_price.price(side, abs(q), unit, loss, mark, int(self.prev_marks[k]))
            per_lot = max(0, side * (price - mark)) * unit  # what closing one lot there recovers
            # close just enough to recover what the fund will not pay (at the mark nothing is recovered: the
            # uncovered share of the position is closed and the loss stays to be socialized)
            lots = min(abs(q), -(-rest // per_lot)) if per_lot > 0 else min(abs(q), int(muldiv_ceil(abs(q), rest, loss)))
            ev.add(Ev.ADL_TRIGGER, liq, instrument=k, side=side, qty=lots, price=price, amount=loss, pnl=pays, fund=f,
                   fund_balance=bal, reason=trig.reason)  # fmt: skip
            c = self.adl_candidates(k, -side)
            self.adl_queues[(k, -side)] = (c.account, np.abs(c.size), c.upnl > 0, c.equity)
            if not len(c):
                continue
            score = adl.scores(cfg.ranking, c)
            order = adl.order(score, c.account, c.upnl)
            rank = np.empty(len(c), np.int64)
            rank[order] = np.arange(1, len(c) + 1)
            live = acc.state[c.account] == AccountState.NORMAL
            remaining = np.where(live & (np.sign(acc.size[k, c.account]) == -side), np.abs(acc.size[k, c.account]), 0)
            ell = max(0, side * (price - mark)) * unit  # a lot's cost to a counterparty vs the mark
            if ell > 0:
                remaining = np.minimum(remaining, np.maximum(0, c.equity) // ell)
            cuts = adl.allocate(cfg.ranking, c, lots, remaining, float(mark * unit))
            for j in order[cuts[order] > 0].tolist():  # in rank order, only the positions it cuts
                cid = int(c.account[j])
                closed.append((k, cid))
                upnl_before = int(acc.size[k, cid]) * mark * unit - int(acc.cost[k, cid])
                rows = np.zeros(1, BOOK_FILL)
                rows[0] = (self.venue.now_ns, 0, 0, cid, liq, price, int(cuts[j]), -side, 0, FLAG_LIQUIDATION)
                fill = ch.settlement.perp_fills(k, rows, FillKind.ADL, maker_rate=0, taker_rate=0)
                self.venue.fill_log.append(fill)
                ev.add(Ev.ADL_CLOSE, cid, instrument=k, side=side, qty=int(cuts[j]), price=price, amount=upnl_before,
                       pnl=int(fill[0]["maker_pnl"]), score=float(score[j]), rank=int(rank[j]), reason=trig.reason)  # fmt: skip
        if closed:
            self._cancel_adl(closed, now)

    # --- unwinding and sweeping ----------------------------------------------------------------------
    def _refill(self, now: int) -> int:
        """Refill the liquidator's order budget for the time since the last step; returns that time (ns)."""
        cfg = self.cfg
        dt = 0 if self.last_ns is None else now - self.last_ns
        self.last_ns = now
        self.credit = min(self.credit + cfg.liquidator_orders_per_s * dt, CREDIT_SCALE * max(1, cfg.liquidator_orders_per_s))
        return dt

    def _unwind(self, ev: Events, now: int) -> None:
        """The liquidator sells what it holds, within its order and notional budgets (one batch).

        Perpetual positions and spot collateral share the budgets; the instrument served
        first rotates step by step, so no backlog starves another.
        """
        ch, cfg, liq = self.ch, self.cfg, self.liquidator
        dt = self._refill(now)
        budget = cfg.liquidator_notional_per_s * dt // SECOND_NS if cfg.liquidator_notional_per_s else None
        acc = ch.accounts.arrays
        n_perps, n_inst = len(ch.perps), len(ch.perps) + len(ch.spots)
        reqs = []
        self._rotation = (getattr(self, "_rotation", -1) + 1) % max(n_inst, 1)
        for step in range(n_inst):
            b = (self._rotation + step) % n_inst
            if self.credit < CREDIT_SCALE:
                break
            if b < n_perps:
                q = int(acc.size[b, liq])
                if q == 0:
                    continue
                lot_value = int(ch.marks[b]) * int(ch.units[b])
                qty = abs(q) if budget is None else min(abs(q), budget // max(1, lot_value))
                if qty <= 0:
                    continue
                side = -1 if q > 0 else 1
                reqs.append(
                    (
                        now,
                        liq,
                        0,
                        0,
                        qty,
                        b,
                        FLAG_LIQUIDATION | FLAG_REDUCE_ONLY | FLAG_UNWIND,
                        Op.MARKET,
                        side,
                        TIF.IOC,
                        STP.NONE,
                    )
                )
                ev.add(Ev.UNWIND_ORDER, liq, instrument=b, side=side, qty=qty)
            else:
                s = ch.spots[b - n_perps]
                a = ch.ledger.asset(s.base)
                lots = int(ch.ledger.balances[a, liq]) // int(s.lot_units or 1)
                if s.quote != ch.settle_asset or lots <= 0:
                    continue
                lot_value = max(1, int(ch.asset_price[a]) * int(s.lot_units or 1) // MONEY_SCALE)
                qty = lots if budget is None else min(lots, budget // lot_value)
                if qty <= 0:
                    continue
                reqs.append((now, liq, 0, 0, qty, b, FLAG_LIQUIDATION | FLAG_UNWIND, Op.MARKET, -1, TIF.IOC, STP.NONE))
                ev.add(Ev.UNWIND_ORDER, liq, instrument=b, side=-1, qty=qty, reason=Why.COLLATERAL)
            self.credit -= CREDIT_SCALE
            if budget is not None:
                budget -= reqs[-1][4] * lot_value
        if not reqs:
            return
        out = self.venue.submit_risk_batch(np.array(reqs, ORDER_REQUEST))
        for f in out.fills:
            b = int(f["instrument"])
            ev.add(Ev.UNWIND_FILL, liq, instrument=b, side=int(f["aggressor"]), qty=int(f["qty"]), price=int(f["price"]),
                   pnl=int(f["taker_pnl"]))  # fmt: skip
            if b < len(ch.perps):
                self.unwind_fees[b] += int(f["taker_fee"])

    def _sweep(self, ev: Events) -> None:
        """Move the liquidator's settled results to the funds; a loss a fund cannot pay is socialized."""
        ch, liq = self.ch, self.liquidator
        acc = ch.accounts.arrays
        q = ch.q
        if self.cfg.vault:
            self._socialize(ev, liq, -int(ch.ledger.balances[q, liq]), Why.VAULT_SHORTFALL)
            return
        for k in range(len(ch.perps)):
            if acc.size[k, liq] != 0:
                continue  # settle a perpetual's result once its position is fully unwound
            delta = int(acc.realized[k, liq]) - int(self.swept[k]) - int(self.unwind_fees[k])
            self.swept[k] += delta + int(self.unwind_fees[k])
            self.unwind_fees[k] = 0
            self._pay_result(ev, self.fund_of(k), delta, k)
        flat = not acc.size[:, liq].any() and not acc.debt[:, liq].any()
        flat = flat and all(int(ch.ledger.balances[a, liq]) == 0 for a in range(len(ch.assets)) if a != q)
        if flat:
            self._pay_result(ev, 0, int(ch.ledger.balances[q, liq]), -1)

    def _pay_result(self, ev: Events, f: int, delta: int, k: int) -> None:
        """The liquidator hands a gain to fund ``f``, or the fund covers a loss as far as it can."""
        if delta > 0:
            self._fund_move(ev, f, self.liquidator, -delta, Kind.INSURANCE, Why.LIQUIDATOR_RESULT, instrument=k)
        elif delta < 0:
            pay = min(-delta, max(0, self.fund_balance(f)))
            self._fund_move(ev, f, self.liquidator, pay, Kind.INSURANCE, Why.LIQUIDATOR_RESULT, instrument=k)
            self._socialize(ev, self.liquidator, -delta - pay, Why.LIQUIDATOR_RESULT, instrument=k)

    def events(self) -> np.ndarray:
        """Every event this engine recorded, as one LIQ_EVENT array."""
        return np.concatenate(self.event_log) if self.event_log else np.zeros(0, LIQ_EVENT)
