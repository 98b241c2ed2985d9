"""The venue: books, clearing, prices and the risk engine behind one public API.

Clients (agents, tests, notebooks) talk only to :class:`Venue`. Orders go in as a batch of
:data:`cascadelab.records.ORDER_REQUEST` records (:meth:`Venue.submit_batch`), processed in
time order exactly as if each were submitted alone, by compiled code
(:mod:`cascadelab.venue.entry`): validation with a :class:`~cascadelab.records.Reject`
code, the book, settlement, journal. Single-order methods (:meth:`Venue.submit`, ...) are
one-row wrappers. :class:`~cascadelab.venue.reference.ReferenceVenue` does the same one
order at a time in Python and is what the batch path is tested against.

The venue owns the step: :meth:`Venue.step` updates prices and funding, runs order entry,
then risk and liquidation, so no caller can forget the liquidation pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

import numpy as np

from cascadelab.book import BookSet, OrderBook
from cascadelab.book import kernels as BK
from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.collateral import price_units
from cascadelab.clearing.core import ClearingError
from cascadelab.clearing.house import ClearingHouse
from cascadelab.instruments import Instrument, InstrumentKind
from cascadelab.prices.funding import FundingClock, FundingRule, impact_price, premium_index, rate_units
from cascadelab.prices.index import IndexPrice
from cascadelab.prices.mark import MarkRule, mark_rule
from cascadelab.records import (
    ACCOUNT_ACK,
    ACCOUNT_REQUEST,
    ACK,
    BOOK_RESULT,
    CANCEL,
    FILL,
    FLAG_LIQUIDATION,
    FLAG_REDUCE_ONLY,
    FLAG_UNWIND,
    LIQ_EVENT,
    ORDER_REQUEST,
    STP,
    TIF,
    AccountOp,
    CancelReason,
    Op,
    Reject,
    sorted_member,
    stack,
)
from cascadelab.timing import PhaseClock
from cascadelab.units import MONEY_SCALE, UnitError
from cascadelab.venue import entry as E
from cascadelab.venue.feed import MarketData, MarketFeed


class VenueError(ValueError):
    """A request the venue cannot even read (unknown symbol in a wrapper, bad configuration)."""


@dataclass
class OrderAck:
    """The venue's answer to one order (one-row wrappers)."""

    order_id: int
    reason: Reject
    filled: int = 0
    resting: int = 0
    cancelled: int = 0
    fills: np.ndarray = field(default_factory=lambda: np.zeros(0, FILL), repr=False)

    @property
    def accepted(self) -> bool:
        """True unless the order was rejected."""
        return self.reason == Reject.OK


@dataclass
class BatchOutcome:
    """What a batch did: one ACK per request (in request order), and the FILL and CANCEL records it produced."""

    acks: np.ndarray
    fills: np.ndarray
    cancels: np.ndarray


@dataclass
class StepReport:
    """What one venue step did: order entry, then liquidation (its fills, cancels and events)."""

    now_ns: int
    acks: np.ndarray
    fills: np.ndarray
    cancels: np.ndarray
    events: np.ndarray
    account_acks: np.ndarray = field(default_factory=lambda: np.zeros(0, ACCOUNT_ACK))
    prices_updated: bool = True


@dataclass
class PerpMarket:
    """Price machinery of one perpetual: index, mark rule, funding clock."""

    index: IndexPrice
    mark_rule: MarkRule
    funding: FundingClock
    impact_notional: int


class RiskEngine(Protocol):
    """What the venue needs from its risk engine (the liquidation package implements it)."""

    def step(self, now_ns: int) -> np.ndarray: ...


def requests(n: int) -> np.ndarray:
    """A zeroed batch of ``n`` ORDER_REQUEST records to fill in by field."""
    return np.zeros(n, ORDER_REQUEST)


class Venue:
    """An exchange: books for every instrument, one clearing house, prices, funding and risk."""

    def __init__(self, clearing: ClearingHouse, market_protection_bps: int = 500, debug: bool = False) -> None:
        self.clearing = clearing
        core = clearing.core
        self.instruments: list[Instrument] = [p.instrument for p in core.perps] + list(core.spots)
        self.index: dict[str, int] = {inst.symbol: b for b, inst in enumerate(self.instruments)}
        self._tick = [Fraction(inst.tick_size) for inst in self.instruments]  # exact tick sizes (instruments are frozen)
        self.n_perps = len(core.perps)
        self.book_set = BookSet(max(1, len(self.instruments)))
        self.books = [self.book_set.book(b) for b in range(len(self.instruments))]
        self.debug = debug
        self.market_protection_bps = int(market_protection_bps)
        if not 0 <= self.market_protection_bps < 10_000:
            raise VenueError(f"market_protection_bps must be within 0..9999, got {market_protection_bps}")
        self.spec = self._instrument_arrays()
        cap = core.accounts.arrays.state.shape[0]
        k, a = self.n_perps, len(core.assets)
        self.orders = E.OrderArrays(
            np.zeros((k, cap), np.int64),
            np.zeros((k, cap), np.int64),
            np.zeros((k, cap), np.int64),
            np.zeros((k, cap), np.int64),
            np.zeros((a, cap), np.int64),
            np.zeros(cap, np.bool_),
            np.array([1, core.accounts.n, self.market_protection_bps], np.int64),
        )
        self.markets: dict[str, PerpMarket] = {}
        self.asset_indices: dict[str, IndexPrice] = {}
        self.now_ns = 0
        self.price_interval_ns = 0  # 0: prices every step; else on the grid of this interval (profiles set it)
        self._next_prices_ns = 0
        self.risk: RiskEngine | None = None
        self._priced = False  # whether a step has found every perpetual priced
        self.system_accounts = np.zeros(0, np.int64)  # the venue's own accounts, sorted (the liquidator): no client requests
        self._fills = np.zeros(1 << 12, FILL)
        self._cancels = np.zeros(1 << 12, CANCEL)
        self._outm = np.zeros(2, np.int64)
        self._touched = np.zeros(1 << 10, np.int64)
        self._res = np.zeros(1, BOOK_RESULT)
        self.fill_log: list[np.ndarray] = []
        self.cancel_log: list[np.ndarray] = []
        self.clock = PhaseClock()  # wall time per phase of step(), summed over steps
        self.feed = MarketFeed(self)

    def _instrument_arrays(self) -> E.InstrumentArrays:
        core = self.clearing.core
        pools = self.clearing.settlement.pools
        rows = []
        for b, inst in enumerate(self.instruments):
            perp = inst.kind == InstrumentKind.PERPETUAL
            limit = core.perps[b].position_limit if perp else None
            rows.append(
                (
                    E.KIND_PERP if perp else E.KIND_SPOT,
                    b if perp else -1,
                    inst.unit_notional,
                    inst.maker_rate,
                    inst.taker_rate,
                    inst.min_notional_units,
                    0 if perp else int(inst.lot_units or 0),
                    -1 if perp else core.ledger.asset(inst.base),
                    core.ledger.asset(inst.quote),
                    -1 if limit is None else int(limit),
                    int(pools[b]) if perp else 0,
                    0,  # protection reference: set by update_prices
                )
            )
        cols = list(zip(*rows, strict=True)) if rows else [()] * 12
        return E.InstrumentArrays(*(np.array(c, np.int64) for c in cols))

    # --- accounts ---------------------------------------------------------------------------
    def open_accounts(self, n: int) -> np.ndarray:
        """Open ``n`` accounts at the clearing house and size the venue's own tables."""
        ids = self.clearing.open_accounts(n)
        cap = self.clearing.accounts.arrays.state.shape[0]
        o = self.orders
        if o.blocked.shape[0] < cap:
            grown = {}
            for name, arr in o._asdict().items():
                if name == "meta":
                    grown[name] = arr
                    continue
                new = np.zeros((*arr.shape[:-1], cap), arr.dtype)
                new[..., : arr.shape[-1]] = arr
                grown[name] = new
            self.orders = E.OrderArrays(**grown)
        self.orders.meta[E.M_ACCOUNTS] = self.clearing.accounts.n
        return ids

    def block_order_entry(self, accounts: np.ndarray, blocked: bool = True) -> None:
        """Refuse (or again accept) client orders of ``accounts`` with VENUE_UNAVAILABLE (an outage)."""
        self.orders.blocked[np.asarray(accounts, np.int64)] = blocked

    def instrument(self, symbol: str) -> int:
        """Venue index of an instrument (perpetuals first, then spot pairs)."""
        try:
            return self.index[symbol]
        except KeyError:
            raise VenueError(f"unknown instrument {symbol!r}; known: {list(self.index)}") from None

    # --- the batch path ------------------------------------------------------------------------
    def submit_batch(self, reqs: np.ndarray) -> BatchOutcome:
        """Process clients' ORDER_REQUEST records in time order (stable for equal times), each as if alone.

        Acks come back in request order (``ack.request`` is the index in ``reqs``). Client
        requests may not carry the risk engine's flags (refused INVALID_REQUEST) nor act for
        the venue's own accounts, such as the liquidator (refused UNKNOWN_ACCOUNT).
        """
        if reqs.dtype != ORDER_REQUEST:
            raise VenueError(f"requests must be ORDER_REQUEST records, got dtype {reqs.dtype}")
        return self._client_batch(reqs, True)

    def _client_batch(self, reqs: np.ndarray, records: bool) -> BatchOutcome:
        """:meth:`submit_batch` after the dtype check; ``records=False`` leaves the outcome's fills and cancels empty."""
        engine_only = (reqs["flags"] & (FLAG_LIQUIDATION | FLAG_UNWIND)) != 0
        system = sorted_member(reqs["account"], self.system_accounts)
        if not (engine_only.any() or system.any()):
            return self._submit(reqs, records)
        screened = reqs.copy()
        screened["kind"][engine_only] = -1  # an unknown request type: refused INVALID_REQUEST, nothing changes
        screened["account"][system] = -1  # refused UNKNOWN_ACCOUNT
        out = self._submit(screened, records)
        out.acks["account"][system] = reqs["account"][system]
        out.acks["reason"][system & ~engine_only] = Reject.UNKNOWN_ACCOUNT
        return out

    def submit_risk_batch(self, reqs: np.ndarray) -> BatchOutcome:
        """The risk engine's own orders (liquidation and unwinding flags, the liquidator's account): no client screening."""
        if reqs.dtype != ORDER_REQUEST:
            raise VenueError(f"requests must be ORDER_REQUEST records, got dtype {reqs.dtype}")
        return self._submit(reqs)

    def _submit(self, reqs: np.ndarray, records: bool = True) -> BatchOutcome:
        order = np.argsort(reqs["ts"], kind="stable")
        sorted_reqs = np.ascontiguousarray(reqs[order])
        acks = np.zeros(len(reqs), ACK)
        f0, c0 = len(self.fill_log), len(self.cancel_log)
        self._process(sorted_reqs, acks)
        acks["request"] = order
        out = np.zeros(len(reqs), ACK)
        out[order] = acks
        if not records:  # the step reads the acks only (its fills and cancels come from the logs once, at its end)
            return BatchOutcome(out, _NO_FILLS, _NO_CANCELS)
        fills = _cat(self.fill_log[f0:], FILL)
        cancels = _cat(self.cancel_log[c0:], CANCEL)
        return BatchOutcome(out, fills, cancels)

    def _process(self, reqs: np.ndarray, acks: np.ndarray) -> None:
        """Run the compiled order entry over ``reqs`` (sorted), making room whenever it asks."""
        start = 0
        core = self.clearing.core
        while True:
            self._outm[:] = 0
            start = E.process_requests(
                self.book_set.st, core.ledger.arrays, core.accounts.arrays, core.params, self.spec, self.orders,
                reqs, start, acks, self._fills, self._cancels, self._outm, self._touched, self._res, BK.NO_POSITIONS,
            )  # fmt: skip
            self._collect()
            if start >= len(reqs):
                return
            owner = int(reqs[start]["account"])
            self._make_room(int(reqs[start]["instrument"]), owner if 0 <= owner < self.clearing.accounts.n else 0)

    def _collect(self) -> None:
        nf, nc = int(self._outm[E.O_NFILLS]), int(self._outm[E.O_NCANCELS])
        if nf:
            self.fill_log.append(self._fills[:nf].copy())
        if nc:
            self.cancel_log.append(self._cancels[:nc].copy())
        self._outm[:] = 0

    def _make_room(self, b: int, owner: int) -> None:
        """Grow the book ``b``, the journal buffer, the output buffers and the scratch for one more request."""
        book = self.books[b]
        nro = int(book.st.bmeta[b, BK.B_NRO])
        book.grow_for(orders=1, levels=1, outputs=nro, owner=owner)
        n = book.order_count + nro
        self.clearing.ledger.ensure_journal_room(4 * (n + 2) + 8)
        if self._fills.shape[0] < n + 2:
            self._fills = np.zeros(2 * (n + 2), FILL)
        if self._cancels.shape[0] < 2 * n + 3:
            self._cancels = np.zeros(2 * (2 * n + 3), CANCEL)
        if self._touched.shape[0] < 4 * n + 16:
            self._touched = np.zeros(2 * (4 * n + 16), np.int64)

    def cancel_accounts(self, mask: np.ndarray, reason: CancelReason, ts: int | None = None, instrument: int = -1) -> np.ndarray:
        """Cancel every resting order of the accounts set in ``mask`` (bool per account), on every book (or one).

        Book by book, owner by owner, each owner's orders in ascending order id; only the
        owners' own order lists are walked. Returns the CANCEL records.
        """
        ts = self.now_ns if ts is None else ts
        core = self.clearing.core
        owners = np.flatnonzero(np.asarray(mask, np.bool_)).astype(np.int64)
        c0 = len(self.cancel_log)
        while True:
            self._outm[:] = 0
            ok = E.cancel_accounts(
                self.book_set.st, core.ledger.arrays, core.accounts.arrays, core.params, self.spec, self.orders,
                owners, int(instrument), int(reason), ts, self._fills, self._cancels, self._outm, self._touched, self._res,
            )  # fmt: skip
            self._collect()
            if ok:
                return _cat(self.cancel_log[c0:], CANCEL)
            total = int(self.book_set.st.meta[BK.M_NORDERS]) + 1
            self.book_set.grow_for(orders=0, levels=0, outputs=total)
            self._cancels = np.zeros(2 * total, CANCEL)
            self._touched = np.zeros(2 * total, np.int64)

    def drain(self) -> tuple[np.ndarray, np.ndarray]:
        """FILL and CANCEL records produced since the last drain (then forgotten)."""
        fills, cancels = _cat(self.fill_log, FILL), _cat(self.cancel_log, CANCEL)
        self.fill_log, self.cancel_log = [], []
        return fills, cancels

    # --- one-row wrappers ----------------------------------------------------------------------
    def _one(
        self,
        account: int,
        b: int,
        kind: Op,
        side: int,
        price: int,
        qty: int,
        tif: int,
        stp: int,
        flags: int,
        order_id: int,
        ts: int | None,
    ) -> OrderAck:
        for _name, value, lo, hi, why in (
            ("side", side, -128, 127, Reject.INVALID_SIDE),
            ("tif", tif, -128, 127, Reject.INVALID_REQUEST),
            ("stp", stp, -128, 127, Reject.INVALID_REQUEST),
            ("price", price, -(2**63), 2**63 - 1, Reject.INVALID_PRICE),
            ("qty", qty, -(2**63), 2**63 - 1, Reject.INVALID_QUANTITY),
            ("order_id", order_id, -(2**63), 2**63 - 1, Reject.UNKNOWN_ORDER),
            ("account", account, -(2**63), 2**63 - 1, Reject.UNKNOWN_ACCOUNT),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= int(value) <= hi:
                return OrderAck(
                    int(order_id) if isinstance(order_id, (int, np.integer)) and -(2**63) <= order_id < 2**63 else 0, why
                )
        r = requests(1)
        r[0] = (self.now_ns if ts is None else ts, account, order_id, price, qty, b, flags, kind, side, tif, stp)
        f0 = len(self.fill_log)
        out = self.submit_batch(r)
        a = out.acks[0]
        fills = _cat(self.fill_log[f0:], FILL)
        return OrderAck(
            int(a["order_id"]), Reject(int(a["reason"])), int(a["filled"]), int(a["resting"]), int(a["cancelled"]), fills
        )

    def submit(
        self,
        account: int,
        symbol: str,
        side: int,
        qty: int,
        price: int | None = None,
        tif: TIF = TIF.GTC,
        reduce_only: bool = False,
        stp: STP = STP.CANCEL_RESTING,
        ts: int | None = None,
    ) -> OrderAck:
        """Validate and place one order (``price=None``: market with price protection)."""
        b = self.index.get(symbol)
        if b is None:
            return OrderAck(0, Reject.UNKNOWN_INSTRUMENT)
        if not isinstance(qty, (int, np.integer)) or isinstance(qty, bool) or not -(2**63) <= int(qty) < 2**63:
            return OrderAck(0, Reject.INVALID_QUANTITY)
        if price is not None and (
            not isinstance(price, (int, np.integer)) or isinstance(price, bool) or not -(2**63) <= int(price) < 2**63
        ):
            return OrderAck(0, Reject.INVALID_PRICE)
        kind = Op.MARKET if price is None else Op.LIMIT
        flags = FLAG_REDUCE_ONLY if reduce_only else 0
        return self._one(int(account), b, kind, int(side), int(price or 0), int(qty), int(tif), int(stp), flags, 0, ts)

    def submit_decimal(
        self,
        account: int,
        symbol: str,
        side: int,
        qty: str | Decimal,
        price: str | Decimal | None = None,
        tif: TIF = TIF.GTC,
        reduce_only: bool = False,
        stp: STP = STP.CANCEL_RESTING,
    ) -> OrderAck:
        """Like :meth:`submit` with human prices and sizes; off-grid values are rejected, never rounded."""
        b = self.index.get(symbol)
        if b is None:
            return OrderAck(0, Reject.UNKNOWN_INSTRUMENT)
        inst = self.instruments[b]
        ticks = None
        if price is not None:
            try:
                ticks = inst.price_to_ticks(price)
            except UnitError:
                return OrderAck(0, Reject.OFF_TICK)
            if not 0 < ticks < 2**63:
                return OrderAck(0, Reject.INVALID_PRICE)
        try:
            lots = inst.qty_to_lots(qty)
        except UnitError:
            return OrderAck(0, Reject.OFF_LOT)
        return self.submit(account, symbol, side, lots, ticks, tif, reduce_only, stp)

    def force_order(
        self,
        account: int,
        symbol: str,
        side: int,
        qty: int,
        price: int | None = None,
        ts: int | None = None,
        unwind: bool = False,
    ) -> OrderAck:
        """The risk engine's reduce-only IOC at ``price`` (or a market order within the protection band), no client checks."""
        b = self.instrument(symbol)
        flags = FLAG_LIQUIDATION | FLAG_REDUCE_ONLY | (FLAG_UNWIND if unwind else 0)
        kind = Op.MARKET if price is None else Op.LIMIT
        r = requests(1)
        r[0] = (self.now_ns if ts is None else ts, int(account), 0, int(price or 0), int(qty), b, flags, kind, int(side), TIF.IOC,
                STP.NONE)  # fmt: skip
        out = self.submit_risk_batch(r)
        a = out.acks[0]
        return OrderAck(int(a["order_id"]), Reject(int(a["reason"])), int(a["filled"]), int(a["resting"]), int(a["cancelled"]),
                        out.fills)  # fmt: skip

    def cancel(self, account: int, order_id: int, symbol: str | None = None) -> OrderAck:
        """Cancel one of the account's resting orders (on ``symbol``, or wherever it rests)."""
        if symbol is None:
            found = [b for b, book in enumerate(self.books) if book.order(order_id) is not None]
            if not found:
                return OrderAck(order_id, Reject.UNKNOWN_ORDER)
            b = found[0]
        else:
            b = self.instrument(symbol)
        return self._one(int(account), b, Op.CANCEL, 0, 0, 0, 0, 0, 0, int(order_id), None)

    def cancel_all(self, account: int, symbol: str | None = None) -> int:
        """Cancel every resting order of ``account`` (on one instrument or all); returns how many.

        Raises :class:`VenueError` for an account that does not exist (as :meth:`cancel` refuses it).
        """
        if not isinstance(account, (int, np.integer)) or not 0 <= int(account) < self.clearing.accounts.n:
            raise VenueError(f"unknown account {account!r}: accounts are 0..{self.clearing.accounts.n - 1}")
        bs = [self.instrument(symbol)] if symbol else range(len(self.books))
        r = requests(len(bs))
        for j, b in enumerate(bs):
            r[j] = (self.now_ns, account, 0, 0, 0, b, 0, Op.CANCEL_ALL, 0, 0, 0)
        return len(self.submit_batch(r).cancels)

    # --- prices, funding, time -----------------------------------------------------------------
    def add_perp_market(
        self,
        symbol: str,
        index_weights: dict[str, Fraction],
        rule: str = "binance",
        funding: FundingRule | None = None,
        impact_margin: int = 200 * MONEY_SCALE,
    ) -> PerpMarket:
        """Attach index, mark rule and funding clock to a perpetual."""
        k = self.clearing.core.perp(symbol)
        max_lev = self.clearing.perps[k].tiers.max_leverage[0]
        fr = funding or (FundingRule.hyperliquid() if rule == "hyperliquid" else FundingRule())
        m = PerpMarket(IndexPrice(index_weights), mark_rule(rule), FundingClock(fr, self.now_ns), impact_margin * max_lev)
        self.markets[symbol] = m
        return m

    def add_asset_index(self, asset: str, weights: dict[str, Fraction]) -> IndexPrice:
        """An external index for a collateral asset (used by ("index", asset) valuation terms)."""
        self.asset_indices[asset] = IndexPrice(weights)
        return self.asset_indices[asset]

    def feed_index(self, name: str, price: Fraction | int | str, ts: int | None = None, source: str = "external") -> None:
        """Quote an external price: for perpetual ``name`` its index source, else the index of asset ``name``."""
        ts = self.now_ns if ts is None else ts
        if name in self.markets:
            self.markets[name].index.update(source, Fraction(price), ts)
        elif name in self.asset_indices:
            self.asset_indices[name].update(source, Fraction(price), ts)
        else:
            raise VenueError(
                f"no index named {name!r}; perpetual markets: {list(self.markets)}, asset indices: {list(self.asset_indices)}"
            )

    def book_price(self, symbol: str) -> Fraction | None:
        """A book's price as a Fraction of quote: mid, else last trade, else None."""
        b = self.instrument(symbol)
        book = self.books[b]
        bb, ba = book.best_bid(), book.best_ask()
        t = self._tick[b]  # (ticks x tick) as one Fraction: the same exact value, reduced once
        if bb is not None and ba is not None:
            return Fraction((bb + ba) * t.numerator, 2 * t.denominator)
        last = book.last_price
        return None if last is None else Fraction(last * t.numerator, t.denominator)

    def _resolve(self, kind: str, name: str) -> Fraction | None:
        if kind == "book":
            return self.book_price(name) if name in self.index else None
        idx = self.asset_indices.get(name)
        return idx.value(self.now_ns) if idx else None

    def update_prices(self, now_ns: int) -> None:
        """Recompute collateral prices and marks; sample premiums; pay funding that is due."""
        self.now_ns = now_ns
        ch = self.clearing
        for b in range(self.n_perps, len(self.books)):  # spot market orders: around the book's price at this update
            book = self.books[b]
            bb, ba, last = book.best_bid(), book.best_ask(), book.last_price
            ref = (bb + ba) // 2 if bb is not None and ba is not None else last
            if ref:
                self.spec.ref[b] = ref
        for code, asset in ch.collateral.items():
            p = asset.valuation.price(self._resolve)
            if p is not None:
                ch.asset_price[ch.ledger.asset(code)] = price_units(p)
        for symbol, m in self.markets.items():
            b = self.index[symbol]
            inst = self.instruments[b]
            tick = self._tick[b]
            index = m.index.value(now_ns)
            if index is None:
                continue
            book = self.books[b]
            bb, ba, last = book.best_bid(), book.best_ask(), book.last_price
            mark = m.mark_rule.update(
                now_ns,
                index,
                None if bb is None else bb * tick,
                None if ba is None else ba * tick,
                None if last is None else last * tick,
                m.funding,
            )
            ch.set_mark(symbol, max(1, round(mark / tick)))
            self.spec.ref[b] = ch.marks[b]  # market orders are protected around the mark
            if m.funding.sample_due(now_ns):  # the premium is sampled on its own grid (5 s), not at every update
                ib = _impact(book, 1, inst.unit_notional, tick, m.impact_notional)
                ia = _impact(book, -1, inst.unit_notional, tick, m.impact_notional)
                m.funding.sample(now_ns, premium_index(ib, ia, index))
            if m.funding.due(now_ns):
                rate = m.funding.settle()
                ch.pay_funding(symbol, rate_units(rate), int(ch.marks[b]), now_ns)
        if self.debug:
            ch.check()

    def attach_risk(self, engine: RiskEngine) -> None:
        """The risk engine that :meth:`step` runs after order entry (its liquidator becomes a venue account)."""
        self.risk = engine
        liq = getattr(engine, "liquidator", None)
        if liq is not None:
            self.system_accounts = np.union1d(self.system_accounts, [int(liq)]).astype(np.int64)

    def step(self, now_ns: int, reqs: np.ndarray | None = None, account_reqs: np.ndarray | None = None) -> StepReport:
        """One venue step: prices and funding (when due), then requests in time order, then risk and liquidation.

        ``reqs`` (ORDER_REQUEST) and ``account_reqs`` (ACCOUNT_REQUEST) are merged by time
        stamp, an account request first on a tie. Prices are recomputed when the price grid
        (``price_interval_ns``) reached a new point since the last step, else kept.
        """
        if now_ns < self.now_ns:
            raise VenueError(f"time runs forward: step at {now_ns} ns after {self.now_ns} ns")
        clock = self.clock
        clock.start()
        due = now_ns >= self._next_prices_ns
        if due:
            self.update_prices(now_ns)
            iv = self.price_interval_ns
            self._next_prices_ns = (now_ns // iv + 1) * iv if iv > 0 else now_ns
        else:
            self.now_ns = now_ns
        # marks change only when prices update: a step between updates has the marks the last check passed
        unpriced = [s for s in self.markets if self.clearing.marks[self.index[s]] <= 0] if due or not self._priced else []
        self._priced = True
        if unpriced:
            raise VenueError(
                f"perpetual(s) {unpriced} have no mark price at {now_ns} ns: their index has no live source "
                f"(feed_index within the index's staleness limit, 10 s by default, before stepping)"
            )
        clock.lap("prices+funding")
        f0, c0 = len(self.fill_log), len(self.cancel_log)
        acks, account_acks = self._entry(reqs, account_reqs)
        clock.lap("order entry")
        events = self.risk.step(now_ns) if self.risk is not None else np.zeros(0, LIQ_EVENT)
        clock.lap("risk+liquidation")
        if self.debug:
            self.clearing.check()
            clock.lap("conservation check")
        fills, cancels = _cat(self.fill_log[f0:], FILL), _cat(self.cancel_log[c0:], CANCEL)
        self.feed.refresh(now_ns, fills)
        clock.lap("market data")
        return StepReport(now_ns, acks, fills, cancels, events, account_acks, due)

    @property
    def market_data(self) -> MarketData:
        """The public market data as of the last step (refreshed by :meth:`step`)."""
        return self.feed.data

    def _entry(self, reqs: np.ndarray | None, account_reqs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Order and account requests merged by time stamp; returns (ACK, ACCOUNT_ACK) in request order."""
        has_o = reqs is not None and len(reqs) > 0
        has_a = account_reqs is not None and len(account_reqs) > 0
        if not has_a:
            if not has_o:
                return np.zeros(0, ACK), np.zeros(0, ACCOUNT_ACK)
            assert reqs is not None
            if reqs.dtype != ORDER_REQUEST:
                raise VenueError(f"requests must be ORDER_REQUEST records, got dtype {reqs.dtype}")
            return self._client_batch(reqs, False).acks, np.zeros(0, ACCOUNT_ACK)
        assert account_reqs is not None
        if not has_o:
            return np.zeros(0, ACK), self.submit_account_requests(account_reqs)
        assert reqs is not None
        if reqs.dtype != ORDER_REQUEST:
            raise VenueError(f"requests must be ORDER_REQUEST records, got dtype {reqs.dtype}")
        if account_reqs.dtype != ACCOUNT_REQUEST:
            raise VenueError(f"account requests must be ACCOUNT_REQUEST records, got dtype {account_reqs.dtype}")
        oo = np.argsort(reqs["ts"], kind="stable")
        ao = np.argsort(account_reqs["ts"], kind="stable")
        ots, ats = reqs["ts"][oo], account_reqs["ts"][ao]
        acks, aacks = np.zeros(len(reqs), ACK), np.zeros(len(account_reqs), ACCOUNT_ACK)
        i = j = 0
        while i < len(ao) or j < len(oo):
            if j >= len(oo) or (i < len(ao) and ats[i] <= ots[j]):
                k = int(np.searchsorted(ats, ots[j], side="right")) if j < len(oo) else len(ao)
                part = self.submit_account_requests(account_reqs[ao[i:k]])
                part["request"] = ao[i:k]
                aacks[ao[i:k]] = part
                i = k
            else:
                k = int(np.searchsorted(ots, ats[i], side="left")) if i < len(ao) else len(oo)
                part = self._client_batch(reqs[oo[j:k]], False).acks
                part["request"] = oo[j:k]
                acks[oo[j:k]] = part
                j = k
        return acks, aacks

    # --- account requests ------------------------------------------------------------------------
    def submit_account_requests(self, reqs: np.ndarray) -> np.ndarray:
        """Process ACCOUNT_REQUEST records in time order; returns ACCOUNT_ACK records in request order.

        Deposits are the client's top-ups from outside; withdrawals, loans and repayments go
        through the clearing house's checks. A request is refused (never raised) with a
        Reject code: unknown account or asset, amount <= 0, the account's access is down
        (VENUE_UNAVAILABLE, an outage), the account is not NORMAL (deposits are also accepted
        while it is LIQUIDATING: a client may add margin to save it), balance, margin or LTV.
        """
        if reqs.dtype != ACCOUNT_REQUEST:
            raise VenueError(f"account requests must be ACCOUNT_REQUEST records, got dtype {reqs.dtype}")
        ch = self.clearing
        order = np.argsort(reqs["ts"], kind="stable")
        out = np.zeros(len(reqs), ACCOUNT_ACK)
        out["request"] = np.arange(len(reqs))
        out["ts"] = reqs["ts"]
        out["account"] = reqs["account"]
        n, na = ch.accounts.n, len(ch.assets)
        acct, asset, amount, kind = reqs["account"], reqs["asset"].astype(np.int64), reqs["amount"], reqs["kind"]
        known = (acct >= 0) & (acct < n) & ~sorted_member(acct, self.system_accounts)
        safe = np.where(known, acct, 0)
        state = ch.accounts.state[safe]
        reason = np.select(
            [
                ~known,
                (asset < 0) | (asset >= na),
                (kind < 0) | (kind > AccountOp.REPAY),
                amount <= 0,
                self.orders.blocked[safe],
                ~((state == AccountState.NORMAL) | ((state == AccountState.LIQUIDATING) & (kind == AccountOp.DEPOSIT))),
            ],
            [Reject.UNKNOWN_ACCOUNT, Reject.UNKNOWN_ASSET, Reject.INVALID_REQUEST, Reject.INVALID_QUANTITY,
             Reject.VENUE_UNAVAILABLE, Reject.ACCOUNT_NOT_NORMAL],
            Reject.OK,
        )  # fmt: skip
        out["reason"] = reason
        ok = reason == Reject.OK
        dep = ok & (kind == AccountOp.DEPOSIT)
        room = np.iinfo(np.int64).max - ch.ledger.balances[np.where(dep, asset, 0), safe]
        too_big = dep & (amount > room)
        out["reason"][too_big] = Reject.INVALID_QUANTITY
        dep &= ~too_big
        ok &= ~too_big
        ts0 = int(reqs["ts"][order[0]]) if len(reqs) else self.now_ns
        for a in np.unique(asset[dep]).tolist():  # deposits first: none of them depends on the others
            sel = np.flatnonzero(dep & (asset == a))
            ids, sums = np.unique(acct[sel], return_inverse=True)
            total = np.zeros(len(ids), np.int64)
            np.add.at(total, sums, amount[sel])
            ch.deposit_many(ids, ch.assets[a], total, ts0)
            out["amount"][sel] = amount[sel]
        for r in order[ok[order] & ~dep[order]].tolist():  # the rest, one by one in time order
            out["amount"][r], out["reason"][r] = self._account_op(int(kind[r]), int(acct[r]), ch.assets[int(asset[r])],
                                                                  int(amount[r]), int(reqs["ts"][r]))  # fmt: skip
        return out

    def _account_op(self, kind: int, i: int, asset: str, amount: int, ts: int) -> tuple[int, int]:
        """(amount done, Reject) of one withdrawal, loan or repayment."""
        ch = self.clearing
        a = ch.ledger.asset(asset)
        if kind == AccountOp.REPAY:
            amount = min(amount, int(ch.accounts.debt[a, i]))
            if amount <= 0:
                return 0, Reject.INVALID_QUANTITY
            if int(ch.ledger.balances[a, i]) < amount:
                return 0, Reject.INSUFFICIENT_BALANCE
            ch.repay(i, asset, amount, ts)
            return amount, Reject.OK
        if kind == AccountOp.BORROW:
            if ch.ledger.balance(ch.lending.pools[asset], a) < amount:
                return 0, Reject.INSUFFICIENT_BALANCE
            if ch.ltv(i, balance_delta=(a, amount), debt_delta=(a, amount)) > ch.loan_terms.initial_ltv:
                return 0, Reject.LTV_LIMIT
            try:
                ch.borrow(i, asset, amount, ts)
            except ClearingError:
                return 0, Reject.INVALID_QUANTITY
            return amount, Reject.OK
        why = ch.withdrawal_refusal(i, asset, amount)
        if why != Reject.OK:
            return 0, why
        ch.withdraw(i, asset, amount, ts)
        return amount, Reject.OK

    def account_state(self, i: int) -> AccountState:
        """Lifecycle state of account ``i``."""
        return AccountState(int(self.clearing.accounts.state[self.clearing.core.acct(i)]))

    def close(self) -> None:
        """End of a run: prove conservation exactly (raises if the books do not balance)."""
        self.clearing.check()


_IMPACT_LEVELS = 32


def _impact(book: OrderBook, side: int, unit_notional: int, tick: Fraction, notional: int) -> Fraction | None:
    """``impact_price`` of one side, read from its best levels first (the whole side only when they are not enough).

    The walk stops at the level that completes the notional, so a result from the best levels
    is the result from the whole side.
    """
    px, qty = book.levels(side, _IMPACT_LEVELS)
    p = impact_price(px, qty, unit_notional, tick, notional)
    if p is None and len(px) == _IMPACT_LEVELS:
        px, qty = book.levels(side)
        p = impact_price(px, qty, unit_notional, tick, notional)
    return p


_NO_FILLS = np.zeros(0, FILL)
_NO_FILLS.flags.writeable = False
_NO_CANCELS = np.zeros(0, CANCEL)
_NO_CANCELS.flags.writeable = False


def _cat(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype)
    return parts[0].copy() if len(parts) == 1 else stack(parts, dtype)  # (np.concatenate re-derives the record dtype per part)
