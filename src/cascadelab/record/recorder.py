"""The recorder: what a run leaves behind, read from the state after every step.

Per step (arrays preallocated for the whole run): for every instrument the mid, last,
mark, external reference, best bid and ask, spread, notional depth within ±0.2%, ±1%,
±2% and ±5% of the mid on each side, and the notional removed within ±1% of the previous mid by
cancels and by trades; liquidations by tier (book fills, takeovers, ADL closes: count and
notional, long and short); each insurance fund; the liquidator's backlog (notional it
still holds); accounts liquidated, bankrupt and bad debt so far.

Per second of market time (read at the first step ending at or after each whole second, whatever
the step length: ``second`` is that second, ``t_s`` the step's end; the costs that grow with the number
of accounts or participants): open interest per perpetual, each market maker's inventory, PnL and
state, each collateral asset's price by every source (venue valuation, internal book,
external), and the loopers' loan-to-value distribution.

Events (fills, cancels, liquidation and ADL events) are kept with the account type of
every account involved. :meth:`Recorder.frames` returns everything as Polars frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from cascadelab.clearing.accounts import AccountState
from cascadelab.compiled import kernel
from cascadelab.records import CANCEL, FILL, LIQ_EVENT, Ev, stack
from cascadelab.units import MONEY_SCALE, SECOND_NS
from cascadelab.venue.venue import StepReport

BAND_NAMES = ("0.2pct", "1pct", "2pct", "5pct")

_TIER = np.full(max(int(k) for k in Ev) + 1, -1, np.int64)
_TIER[[Ev.LIQUIDATION_FILL, Ev.TAKEOVER, Ev.ADL_CLOSE]] = [0, 1, 2]
"""The liquidation tier of each event kind (book fill, takeover, ADL close), -1 for the rest."""


@kernel
def _removed_near(inst: np.ndarray, price: np.ndarray, qty: np.ndarray, pb: np.ndarray, pa: np.ndarray,
                  out: np.ndarray) -> None:  # fmt: skip
    """``out[b]`` = the sum of price x qty (as floats, in row order) of the rows of instrument ``b`` priced within
    ±1% of its previous mid (both sides quoted): the np.bincount of :meth:`Recorder._removed`, fused."""
    out[:] = 0.0
    for i in range(inst.shape[0]):
        b = inst[i]
        bb = pb[b]
        aa = pa[b]
        if bb > 0 and aa > 0:
            mid2 = bb + aa  # twice the previous mid, in ticks
            if abs(200 * price[i] - mid2 * 100) <= mid2:
                out[b] += float(price[i] * qty[i])


@kernel
def _oi_change(inst: np.ndarray, maker: np.ndarray, taker: np.ndarray, aggressor: np.ndarray, qty: np.ndarray,
               size: np.ndarray, n: int, stamp: int, seen: np.ndarray, delta: np.ndarray, keys: np.ndarray,
               oi: np.ndarray) -> bool:  # fmt: skip
    """Add to ``oi[k]`` the change of long open interest the fills made (perpetuals ``k < oi.shape[0]``).

    Each (perpetual, account) the fills touch counts once, with its net size change: its
    long size after (``size``) less its long size before. ``seen``/``delta`` are scratch per
    (perpetual, account), ``seen`` marked with ``stamp`` (a value not used before); ``keys``
    has room for two rows per fill. False, with nothing changed, when a fill names an
    instrument below 0 or an account outside ``0..n-1`` (the venue never books such a fill).
    """
    k_n = oi.shape[0]
    for i in range(inst.shape[0]):
        if inst[i] < 0 or (inst[i] < k_n and not (0 <= maker[i] < n and 0 <= taker[i] < n)):
            return False
    m = 0
    for i in range(inst.shape[0]):
        k = inst[i]
        if k >= k_n:
            continue
        d = aggressor[i] * qty[i]
        for side in range(2):
            a = maker[i] if side == 0 else taker[i]
            if seen[k, a] != stamp:
                seen[k, a] = stamp
                delta[k, a] = 0
                keys[2 * m] = k
                keys[2 * m + 1] = a
                m += 1
            delta[k, a] += -d if side == 0 else d
    for j in range(m):
        k = keys[2 * j]
        a = keys[2 * j + 1]
        after = size[k, a]
        before = after - delta[k, a]
        oi[k] += max(after, 0) - max(before, 0)
    return True


@kernel
def _heat_add(px: np.ndarray, qty: np.ndarray, tick: float, lo: float, width: float, unit: float,
              out: np.ndarray) -> None:  # fmt: skip
    """``out[floor((px x tick - lo) / width)] += float32(px x qty x unit)`` level by level, buckets outside ``out`` skipped.

    The np.add.at of :meth:`Recorder._heat` in one pass: the same float64 bucket and value, the same float32
    sums in the same order.
    """
    nb = out.shape[0]
    for j in range(px.shape[0]):
        k = np.int64(np.floor((px[j] * tick - lo) / width))
        if 0 <= k < nb:
            out[k] += np.float32(float(px[j] * qty[j]) * unit)


@dataclass
class Recorder:
    """Collects a run's metrics and events (see the module docstring)."""

    n_steps: int
    symbols: tuple[str, ...]
    n_perps: int
    assets: tuple[str, ...]
    makers: list[object]
    loopers: list[object]
    account_type: np.ndarray
    n_funds: int
    step_ns: int  # the loop's step: sizes the per-second tables
    external_assets: dict[str, float] = field(default_factory=dict)  # the world's live external asset prices
    tracked: int = 0  # venue instrument of the order-book heatmap
    news_ns: int = -1  # when to take the leverage snapshot (effective leverage of every account)
    heat_range: float = 0.2  # heatmap: ±20% of the pre-news price...
    heat_buckets: int = 200  # ...in this many price buckets
    step: int = 0
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    slow: dict[str, np.ndarray] = field(default_factory=dict)
    fills: list[np.ndarray] = field(default_factory=list)
    cancels: list[np.ndarray] = field(default_factory=list)
    events: list[np.ndarray] = field(default_factory=list)
    _liquidated: set[int] = field(default_factory=set)
    _prev_mid: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, nb, k = self.n_steps, len(self.symbols), self.n_perps
        f8 = np.float64
        self.cols = {
            "t_ns": np.zeros(n, np.int64),
            "bid_t": np.zeros((n, nb), np.int64),  # ticks, 0 for none
            "ask_t": np.zeros((n, nb), np.int64),
            "last_t": np.zeros((n, nb), np.int64),
            "mark_t": np.zeros((n, nb), np.int64),
            "external": np.full((n, nb), np.nan),
            "depth": np.zeros((n, nb, len(BAND_NAMES), 2), np.int64),  # money units
            "removed_cancel": np.zeros((n, nb), f8),  # tick-lots
            "removed_trade": np.zeros((n, nb), f8),
            "liq_count": np.zeros((n, 3, 2), np.int64),  # tier (book, takeover, adl) x side (long, short)
            "liq_notional": np.zeros((n, 3, 2), f8),
            "funds": np.zeros((n, max(self.n_funds, 1)), f8),
            "backlog": np.zeros(n, f8),
            "liquidated": np.zeros(n, np.int64),
            "open_interest": np.zeros((n, k), np.int64),  # lots held long (= held short), per perpetual
            "bankrupt": np.zeros(n, np.int64),
            "bad_debt": np.zeros(n, f8),
        }
        if self.step_ns <= 0:
            raise ValueError(f"step_ns must be > 0, got {self.step_ns}")
        ns = min(n, n * self.step_ns // SECOND_NS + 2) + 1  # seconds a run of n steps can enter (at most one per step)
        self._next_slow_ns = -1  # the per-second tables read the state at the first step at or after this time
        nm = max(len(self.makers), 1)
        na = len(self.assets)
        self.slow = {
            "t_ns": np.zeros(ns, np.int64),
            "open_interest": np.zeros((ns, k), f8),
            "mm_inventory": np.zeros((ns, nm), f8),
            "mm_pnl": np.zeros((ns, nm), f8),
            "mm_state": np.zeros((ns, nm), np.int8),
            "mm_reason": np.zeros((ns, nm), np.int8),
            "collateral_venue": np.full((ns, na), np.nan),
            "collateral_book": np.full((ns, na), np.nan),
            "collateral_external": np.full((ns, na), np.nan),
            "looper_ltv": np.full((ns, 5), np.nan),  # p10, p50, p90, max, share above the liquidation LTV
            "heat_bid": np.zeros((ns, self.heat_buckets), np.float32),  # resting notional per price bucket
            "heat_ask": np.zeros((ns, self.heat_buckets), np.float32),
        }
        self.heat_center = math.nan
        self.leverage_at_news: np.ndarray | None = None
        self._slow_n = 0
        self._bad_debt = 0.0
        self._bankrupt = 0
        self._fund_now = np.zeros(max(self.n_funds, 1))
        self._backlog_now = 0.0
        self._prev_bid: np.ndarray | None = None
        self._oi: np.ndarray | None = None
        self._bankrupt_set: set[int] = set()  # long open interest in lots per perpetual, kept from the fills
        self._prev_ask: np.ndarray | None = None
        self._oi_seen: np.ndarray | None = None  # scratch of the compiled open-interest update, (perpetuals, accounts)
        self._oi_delta: np.ndarray | None = None
        self.tick = np.ones(len(self.symbols))
        self.unit = np.ones(len(self.symbols))

    # --- per step -------------------------------------------------------------------------------
    def record(self, sim: object, report: StepReport) -> None:
        """Read the state after one step (raw copies; prices in quote units are derived once, in :meth:`frames`)."""
        j = self.step
        if j >= self.n_steps:
            return
        venue = sim.venue  # type: ignore[attr-defined]
        m = venue.market_data
        c = self.cols
        c["t_ns"][j] = report.now_ns
        c["bid_t"][j] = m.best_bid
        c["ask_t"][j] = m.best_ask
        c["last_t"][j] = m.last
        c["mark_t"][j] = m.mark
        c["external"][j] = sim.world.external.reference  # type: ignore[attr-defined]
        c["depth"][j] = m.depth
        if len(report.cancels) or len(report.fills):
            self._removed(j, report, m)
        if self._next_slow_ns < 0:  # the first whole second at or after the first recorded step
            self._next_slow_ns = -(-report.now_ns // SECOND_NS) * SECOND_NS
        slow = report.now_ns >= self._next_slow_ns
        if slow:
            self._next_slow_ns = (report.now_ns // SECOND_NS + 1) * SECOND_NS
        self._open_interest(j, report, venue)
        self._liquidations(j, report, venue, slow)
        if len(report.fills):
            self.fills.append(report.fills)
        if len(report.cancels):
            self.cancels.append(report.cancels)
        if len(report.events):
            self.events.append(report.events)
        if self.leverage_at_news is None and 0 <= self.news_ns <= report.now_ns:
            self.leverage_at_news = effective_leverage(venue)
        if slow:
            self._record_slow(report.now_ns, venue, sim.world.external.reference)  # type: ignore[attr-defined]
        c["bankrupt"][j] = self._bankrupt
        self._prev_bid, self._prev_ask = m.best_bid, m.best_ask
        self.step += 1

    def _open_interest(self, j: int, r: StepReport, venue: object) -> None:
        """Long open interest per perpetual (lots), updated from the step's fills: only accounts that traded change it."""
        ch = venue.clearing  # type: ignore[attr-defined]
        k_n = self.n_perps
        if self._oi is None:  # the first step: count it once (the positions booked before the run)
            size = ch.accounts.size[:, : ch.accounts.n]
            self._oi = np.where(size > 0, size, 0).sum(axis=1).astype(np.int64)
        elif len(r.fills):
            f = r.fills
            size = ch.accounts.size
            if self._oi_seen is None or self._oi_seen.shape != (k_n, size.shape[1]):
                self._oi_seen = np.full((k_n, size.shape[1]), -1, np.int64)
                self._oi_delta = np.zeros((k_n, size.shape[1]), np.int64)
            assert self._oi_delta is not None
            keys = np.empty(4 * len(f), np.int64)
            if not _oi_change(f["instrument"], f["maker_account"], f["taker_account"], f["aggressor"], f["qty"], size,
                              int(ch.accounts.n), j, self._oi_seen, self._oi_delta, keys, self._oi):  # fmt: skip
                raise ValueError(f"step {j}: a fill names an instrument below 0 or an account outside 0..{ch.accounts.n - 1}")
        self.cols["open_interest"][j] = self._oi

    def _removed(self, j: int, r: StepReport, m: object) -> None:
        """Notional removed within ±1% of the previous mid by cancels and by trades (tick-lots x unit, exact ints)."""
        if self._prev_bid is None:
            return
        pb, pa = self._prev_bid, self._prev_ask
        assert pa is not None  # set together with _prev_bid
        for name, arr in (("removed_cancel", r.cancels), ("removed_trade", r.fills)):
            if not len(arr):
                continue
            _removed_near(arr["instrument"], arr["price"], arr["qty"], pb, pa, self.cols[name][j])

    def _liquidations(self, j: int, r: StepReport, venue: object, slow: bool) -> None:
        c = self.cols
        ev = r.events
        eng = venue.risk  # type: ignore[attr-defined]
        ch = venue.clearing  # type: ignore[attr-defined]
        if len(ev) or slow or j == 0:  # funds and backlog move only with events and unwinding (read from the first step)
            for f in range(self.n_funds):
                self._fund_now[f] = eng.fund_balance(f) / MONEY_SCALE
            liq = eng.liquidator
            bal = np.maximum(ch.ledger.balances[:, liq], 0).astype(np.float64)
            bal[ch.q] = 0.0
            self._backlog_now = (float(np.abs(ch.accounts.size[:, liq] * ch.marks * ch.units).sum())
                                 + float((bal * ch.asset_price).sum()) / MONEY_SCALE) / MONEY_SCALE  # fmt: skip
        c["funds"][j, : self.n_funds] = self._fund_now[: self.n_funds]
        c["backlog"][j] = self._backlog_now
        if len(ev):
            kind = ev["kind"]
            inst = ev["instrument"].astype(np.int64)
            tier = _TIER[kind]  # book fill, takeover, ADL close; -1 for other events
            sel = (tier >= 0) & (inst >= 0) & (inst < self.n_perps)
            if sel.any():
                e, t = ev[sel], tier[sel]
                notional = e["qty"] * e["price"] * ch.units.astype(np.float64)[inst[sel]] / MONEY_SCALE
                # the liquidated position's side: a liquidation fill sells a long (aggressor -1); takeover and ADL
                # events carry the side of the bankrupt position
                long = np.where(t == 0, e["side"] < 0, e["side"] > 0)
                slot = 2 * t + ~long  # (tier, side) flattened: side 0 long, 1 short
                c["liq_count"][j] += np.bincount(slot, minlength=6).reshape(3, 2)
                c["liq_notional"][j] += np.bincount(slot, notional, minlength=6).reshape(3, 2)
            starts = ev["account"][kind == Ev.LIQUIDATION_START]
            self._liquidated.update(starts.tolist())
            bad = kind == Ev.BAD_DEBT
            took = (kind == Ev.TAKEOVER) | bad | (kind == Ev.FUND_OUT)
            if took.any():  # most steps with events have none of these
                taken = np.unique(ev["account"][took])
                taken = taken[(taken >= 0) & (taken < ch.accounts.n)]
                self._bankrupt_set.update(taken[ch.accounts.state[taken] == AccountState.BANKRUPT].tolist())
                self._bankrupt = len(self._bankrupt_set)
            if bad.any():
                self._bad_debt += float(ev["amount"][bad].sum()) / MONEY_SCALE
        c["liquidated"][j] = len(self._liquidated)
        c["bad_debt"][j] = self._bad_debt

    def _record_slow(self, now: int, venue: object, ext_ref: np.ndarray) -> None:
        i = self._slow_n
        if i >= len(self.slow["t_ns"]):
            return
        s = self.slow
        ch = venue.clearing  # type: ignore[attr-defined]
        s["t_ns"][i] = now
        s["open_interest"][i] = self._oi * ch.marks * ch.units.astype(np.float64) / MONEY_SCALE if self._oi is not None else 0
        for k, mm in enumerate(self.makers):
            state, reason, inv, pnl = mm.status()  # type: ignore[attr-defined]
            s["mm_state"][i, k], s["mm_reason"][i, k], s["mm_inventory"][i, k], s["mm_pnl"][i, k] = state, reason, inv, pnl
        m = venue.market_data  # type: ignore[attr-defined]
        ref = m.reference()
        ext_assets = self.external_assets
        for a, code in enumerate(self.assets):
            s["collateral_venue"][i, a] = float(ch.asset_price[a]) / MONEY_SCALE
            b = next((bb for bb in range(self.n_perps, len(self.symbols)) if m.base[bb] == code), None)
            x = ext_assets.get(code, np.nan)
            if b is not None:
                # what a book valuation reads (Venue.book_price): the mid, else the last trade (a side can be empty)
                s["collateral_book"][i, a] = float(ref[b])
                if not math.isfinite(x):  # its outside value is its spot pair's external reference
                    x = float(ext_ref[b])
            s["collateral_external"][i, a] = x
        self._heat(i, venue, m)
        if self.loopers:
            ltv = np.concatenate([lp.last_ltv for lp in self.loopers])  # type: ignore[attr-defined]
            ltv = ltv[np.isfinite(ltv)]
            if len(ltv):
                limit = ch.loan_terms.liquidation_ltv / 1e6
                s["looper_ltv"][i] = [*np.quantile(ltv, [0.1, 0.5, 0.9]), ltv.max(), float((ltv > limit).mean())]
        self._slow_n += 1

    def _heat(self, i: int, venue: object, m: object) -> None:
        """Resting notional of the tracked book per price bucket (around the first price seen)."""
        b = self.tracked
        if not math.isfinite(self.heat_center):
            ref = m.reference()[b]  # type: ignore[attr-defined]
            if not math.isfinite(ref):
                return
            self.heat_center = float(ref)
        book = venue.books[b]  # type: ignore[attr-defined]
        tick = float(m.tick[b])  # type: ignore[attr-defined]
        unit = float(m.unit_notional[b]) / MONEY_SCALE  # type: ignore[attr-defined]
        lo = self.heat_center * (1 - self.heat_range)
        width = 2 * self.heat_range * self.heat_center / self.heat_buckets
        for side, name in ((1, "heat_bid"), (-1, "heat_ask")):
            px, qty = book.levels(side)
            if not len(px):
                continue
            _heat_add(px, qty, tick, lo, width, unit, self.slow[name][i])

    def liquidated_below(self, leverage: float) -> int:
        """How many liquidated accounts had an effective leverage below ``leverage`` when the news came."""
        if self.leverage_at_news is None or not self._liquidated:
            return 0
        ids = np.fromiter(self._liquidated, np.int64)
        ids = ids[ids < len(self.leverage_at_news)]
        return int((self.leverage_at_news[ids] < leverage).sum())

    # --- results ---------------------------------------------------------------------------------------
    def frames(self) -> dict[str, pl.DataFrame]:
        """``steps`` (per step), ``seconds`` (per second), ``fills``, ``cancels``, ``events`` as Polars frames."""
        n = self.step
        c = self.cols
        tick, unit = self.tick, self.unit
        bid_t, ask_t = c["bid_t"][:n], c["ask_t"][:n]
        both = (bid_t > 0) & (ask_t > 0)
        derived = {
            "mid": np.where(both, (bid_t + ask_t) * 0.5 * tick, np.nan),
            "last": np.where(c["last_t"][:n] > 0, c["last_t"][:n] * tick, np.nan),
            "mark": np.where(c["mark_t"][:n] > 0, c["mark_t"][:n] * tick, np.nan),
            "external": c["external"][:n],
            "bid": np.where(bid_t > 0, bid_t * tick, np.nan),
            "ask": np.where(ask_t > 0, ask_t * tick, np.nan),
            "spread_bps": np.where(both, 20_000.0 * (ask_t - bid_t) / np.maximum(bid_t + ask_t, 1), np.nan),
            "removed_cancel": c["removed_cancel"][:n] * unit,
            "removed_trade": c["removed_trade"][:n] * unit,
        }
        depth = c["depth"][:n] / MONEY_SCALE
        data: dict[str, np.ndarray] = {"t_s": c["t_ns"][:n] / 1e9}
        for b, sym in enumerate(self.symbols):
            for name, arr in derived.items():
                data[f"{sym}.{name}"] = arr[:, b]
            for bi, band in enumerate(BAND_NAMES):
                data[f"{sym}.depth_bid_{band}"] = depth[:, b, bi, 0]
                data[f"{sym}.depth_ask_{band}"] = depth[:, b, bi, 1]
        for k in range(self.n_perps):  # open interest at the mark, per step
            data[f"{self.symbols[k]}.open_interest"] = c["open_interest"][:n, k] * c["mark_t"][:n, k] * unit[k]
        for t, tier in enumerate(("book", "takeover", "adl")):
            for si, side in enumerate(("long", "short")):
                data[f"liq.{tier}.{side}.count"] = c["liq_count"][:n, t, si]
                data[f"liq.{tier}.{side}.notional"] = c["liq_notional"][:n, t, si]
        for f in range(self.n_funds):
            data[f"fund.{f}"] = c["funds"][:n, f]
        for name in ("backlog", "liquidated", "bankrupt", "bad_debt"):
            data[name] = c[name][:n]
        steps = pl.DataFrame(data)
        ns = self._slow_n
        s = self.slow
        sd: dict[str, np.ndarray] = {"t_s": s["t_ns"][:ns] / 1e9, "second": s["t_ns"][:ns] // SECOND_NS}
        for k in range(self.n_perps):
            sd[f"{self.symbols[k]}.open_interest"] = s["open_interest"][:ns, k]
        for k, mm in enumerate(self.makers):
            name = mm.name  # type: ignore[attr-defined]
            for col in ("mm_inventory", "mm_pnl", "mm_state", "mm_reason"):
                sd[f"{name}.{col.removeprefix('mm_')}"] = s[col][:ns, k]
        for a, code in enumerate(self.assets):
            for src in ("venue", "book", "external"):
                sd[f"{code}.price_{src}"] = s[f"collateral_{src}"][:ns, a]
        for q, name in enumerate(("p10", "p50", "p90", "max", "share_above_liquidation")):
            sd[f"loopers.ltv_{name}"] = s["looper_ltv"][:ns, q]
        for name in ("heat_bid", "heat_ask"):
            for q in range(self.heat_buckets):
                sd[f"{name}.{q}"] = s[name][:ns, q]
        seconds = pl.DataFrame(sd)
        return {"steps": steps, "seconds": seconds, **self.event_frames()}

    def event_frames(self) -> dict[str, pl.DataFrame]:
        """Fills, cancels and liquidation events with the account type of each account involved."""
        at = self.account_type

        def typed(arr: np.ndarray, cols: tuple[str, ...]) -> pl.DataFrame:
            df = pl.from_numpy(np.ascontiguousarray(arr))
            for col in cols:
                acct = arr[col].astype(np.int64)
                ok = (acct >= 0) & (acct < len(at))
                df = df.with_columns(
                    pl.Series(f"{col}_type", np.where(ok, at[np.clip(acct, 0, len(at) - 1)], -1).astype(np.int8))
                )
            return df

        return {
            "fills": typed(_all(self.fills, FILL), ("maker_account", "taker_account")),
            "cancels": typed(_all(self.cancels, CANCEL), ("account",)),
            "events": typed(_all(self.events, LIQ_EVENT), ("account",)),
        }


def _all(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """A run's per-step record batches as one array (an empty one without any)."""
    return stack(parts, dtype) if parts else np.zeros(0, dtype)


def effective_leverage(venue: object) -> np.ndarray:
    """Every account's exposure over its equity: (perpetual notional + borrowed value) / equity (inf at equity <= 0)."""
    ch = venue.clearing  # type: ignore[attr-defined]
    n = ch.accounts.n
    notional = (np.abs(ch.accounts.size[:, :n]) * (ch.marks * ch.units)[:, None]).sum(axis=0).astype(np.float64)
    borrowed = (ch.accounts.debt[:, :n] * ch.asset_price[:, None].astype(np.float64) / MONEY_SCALE).sum(axis=0)
    eq, _, _, _ = ch.exact_margins(np.arange(n, dtype=np.int64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(eq > 0, (notional + borrowed) / np.maximum(eq, 1), np.inf)


__all__ = ["BAND_NAMES", "Recorder", "effective_leverage"]
