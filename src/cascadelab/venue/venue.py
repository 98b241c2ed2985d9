"""The venue: books, clearing and prices behind one public order-entry API.

Agents and tests talk only to :class:`Venue`. Every order is validated before it touches a
book (instrument, tick/lot alignment, size, min notional, account state, reduce-only,
position limit, leverage tier, initial margin, spot balance) and a rejected order comes
back with a :class:`Reject` code and leaves no trace in any balance or book. Accepted
orders go to the instrument's book; the fills are settled by the clearing house at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction

import numpy as np

from cascadelab.book import STP, TIF, OrderBook, Status
from cascadelab.book.codes import F_MAKER_ID, F_QTY, X_ID, X_QTY
from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.collateral import price_units
from cascadelab.clearing.house import ClearingHouse
from cascadelab.fees import fee
from cascadelab.instruments import Instrument, InstrumentKind
from cascadelab.prices.funding import FundingClock, FundingRule, impact_price, premium_index, rate_units
from cascadelab.prices.index import IndexPrice
from cascadelab.prices.mark import BinanceMark, HyperliquidMark
from cascadelab.units import MONEY_SCALE, UnitError


class Reject(IntEnum):
    """Why the venue refused an order (OK: accepted)."""

    OK = 0
    UNKNOWN_INSTRUMENT = 1
    UNKNOWN_ACCOUNT = 2
    ACCOUNT_NOT_NORMAL = 3
    INVALID_SIDE = 4
    INVALID_QUANTITY = 5
    INVALID_PRICE = 6
    OFF_TICK = 7
    OFF_LOT = 8
    BELOW_MIN_NOTIONAL = 9
    REDUCE_ONLY_WOULD_INCREASE = 10
    POSITION_LIMIT = 11
    LEVERAGE_EXCEEDS_TIER = 12
    INSUFFICIENT_MARGIN = 13
    INSUFFICIENT_BALANCE = 14
    NO_LIQUIDITY = 15
    POST_ONLY_WOULD_TAKE = 16
    FOK_NOT_FILLABLE = 17
    UNKNOWN_ORDER = 18


_BOOK_REJECTS = {
    Status.REJECTED_POST_ONLY: Reject.POST_ONLY_WOULD_TAKE,
    Status.REJECTED_FOK: Reject.FOK_NOT_FILLABLE,
    Status.REJECTED_NO_LIQUIDITY: Reject.NO_LIQUIDITY,
}


@dataclass
class OrderAck:
    """The venue's answer to one request."""

    order_id: int
    reason: Reject
    filled: int = 0
    resting: int = 0
    cancelled: int = 0
    fills: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.int64))

    @property
    def accepted(self) -> bool:
        """True unless the order was rejected."""
        return self.reason == Reject.OK


@dataclass
class OpenOrder:
    """What the venue remembers of a resting order."""

    account: int
    symbol: str
    side: int
    price: int
    qty: int
    reduce_only: bool
    reserved: int = 0  # spot: balance set aside for the rest of the order


@dataclass
class PerpMarket:
    """Price machinery of one perpetual: index, mark rule, funding clock."""

    index: IndexPrice
    mark_rule: BinanceMark | HyperliquidMark
    funding: FundingClock
    impact_notional: int


class Venue:
    """An exchange: books for every instrument, one clearing house, prices and funding."""

    def __init__(self, clearing: ClearingHouse, market_protection_bps: int = 500, debug: bool = False) -> None:
        self.clearing = clearing
        self.instruments: dict[str, Instrument] = {p.instrument.symbol: p.instrument for p in clearing.perps}
        self.instruments.update({s.symbol: s for s in clearing.spots})
        self.books = {sym: OrderBook() for sym in self.instruments}
        self.orders: dict[int, OpenOrder] = {}
        self.next_order_id = 1
        self.market_protection_bps = market_protection_bps
        self.debug = debug
        k, n = len(clearing.perps), 0
        self._open = {
            name: np.zeros((k, max(n, 1)), np.int64) for name in ("buy_qty", "sell_qty", "buy_notional", "sell_notional")
        }
        self.spot_reserved = np.zeros((len(clearing.assets), 1), np.int64)
        self.markets: dict[str, PerpMarket] = {}
        self.asset_indices: dict[str, IndexPrice] = {}
        self.now_ns = 0

    # --- accounts ---------------------------------------------------------------------------
    def open_accounts(self, n: int) -> np.ndarray:
        """Open ``n`` accounts at the clearing house and size the venue's own tables."""
        ids = self.clearing.open_accounts(n)
        cap = self.clearing.accounts.state.shape[0]
        for name, arr in self._open.items():
            if arr.shape[1] < cap:
                grown = np.zeros((arr.shape[0], cap), np.int64)
                grown[:, : arr.shape[1]] = arr
                self._open[name] = grown
        if self.spot_reserved.shape[1] < cap:
            grown = np.zeros((self.spot_reserved.shape[0], cap), np.int64)
            grown[:, : self.spot_reserved.shape[1]] = self.spot_reserved
            self.spot_reserved = grown
        return ids

    # --- order entry --------------------------------------------------------------------------
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
        inst = self.instruments.get(symbol)
        if inst is None:
            return OrderAck(0, Reject.UNKNOWN_INSTRUMENT)
        try:
            lots = inst.qty_to_lots(qty)
        except UnitError:
            return OrderAck(0, Reject.OFF_LOT)
        ticks = None
        if price is not None:
            try:
                ticks = inst.price_to_ticks(price)
            except UnitError:
                return OrderAck(0, Reject.OFF_TICK)
        return self.submit(account, symbol, side, lots, ticks, tif, reduce_only, stp)

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
        """Validate and place an order (``price=None``: market with price protection)."""
        ts = self.now_ns if ts is None else ts
        inst = self.instruments.get(symbol)
        if inst is None:
            return OrderAck(0, Reject.UNKNOWN_INSTRUMENT)
        ch = self.clearing
        if not 0 <= int(account) < ch.accounts.n:
            return OrderAck(0, Reject.UNKNOWN_ACCOUNT)
        if ch.accounts.state[account] != AccountState.NORMAL:
            return OrderAck(0, Reject.ACCOUNT_NOT_NORMAL)
        if side not in (1, -1):
            return OrderAck(0, Reject.INVALID_SIDE)
        if not isinstance(qty, (int, np.integer)) or qty <= 0:
            return OrderAck(0, Reject.INVALID_QUANTITY)
        if price is not None and price <= 0:
            return OrderAck(0, Reject.INVALID_PRICE)
        book = self.books[symbol]
        if price is None:
            bound = self._market_bound(book, side, self.market_protection_bps)
            if bound is None:
                return OrderAck(0, Reject.NO_LIQUIDITY)
            worst = bound[1]
        else:
            worst = price
        notional = qty * worst * inst.unit_notional
        if inst.kind == InstrumentKind.PERPETUAL:
            reason = self._check_perp(account, symbol, side, qty, worst, notional, reduce_only)
        else:
            reason = self._check_spot(account, inst, side, qty, worst, notional)
        if reason != Reject.OK:
            return OrderAck(0, reason)
        oid = self.next_order_id
        self.next_order_id += 1
        if price is None:
            res = book.market(
                oid,
                account,
                side,
                qty,
                bound[0],
                stp=stp,
                reduce_only=reduce_only,
                ts=ts,
            )
        else:
            res = book.limit(oid, account, side, price, qty, tif=tif, stp=stp, reduce_only=reduce_only, ts=ts)
        if res.status in _BOOK_REJECTS:
            return OrderAck(oid, _BOOK_REJECTS[res.status], 0, 0, res.cancelled)
        if res.resting:
            order = OpenOrder(int(account), symbol, side, price, res.resting, reduce_only)
            self.orders[oid] = order
            self._tally(inst, order, res.resting)
        self._after_book(inst, res.fills, res.cancels, ts, int(account))
        return OrderAck(oid, Reject.OK, res.filled, res.resting, res.cancelled, res.fills)

    def force_order(
        self,
        account: int,
        symbol: str,
        side: int,
        qty: int,
        price: int | None = None,
        protection_bps: int | None = None,
        ts: int | None = None,
    ) -> OrderAck:
        """The risk engine's order: IOC at ``price`` (or market within the protection band), no client checks.

        Used for liquidation and for unwinding taken-over positions; fills settle like any other.
        """
        ts = self.now_ns if ts is None else ts
        book = self.books[symbol]
        oid = self.next_order_id
        self.next_order_id += 1
        if price is None:
            bps = self.market_protection_bps if protection_bps is None else protection_bps
            bound = self._market_bound(book, side, bps)
            if bound is None:
                return OrderAck(oid, Reject.NO_LIQUIDITY, cancelled=qty)
            res = book.market(oid, account, side, qty, bound[0], stp=STP.NONE, reduce_only=True, ts=ts)
        else:
            res = book.limit(oid, account, side, price, qty, tif=TIF.IOC, stp=STP.NONE, reduce_only=True, ts=ts)
        self._after_book(self.instruments[symbol], res.fills, res.cancels, ts, int(account))
        return OrderAck(oid, Reject.OK, res.filled, 0, res.cancelled, res.fills)

    @staticmethod
    def _market_bound(book: OrderBook, side: int, bps: int) -> tuple[int, int] | None:
        """(protection in ticks, worst price) of a market order: ``bps`` from the best opposite price."""
        best = book.best_ask() if side == 1 else book.best_bid()
        if best is None:
            return None
        protection = max(0, best * bps // 10_000)
        return protection, best + protection if side == 1 else max(1, best - protection)

    @staticmethod
    def _spot_need(inst: Instrument, side: int, qty: int, price: int) -> tuple[str, int]:
        """(asset, amount) a spot order ties up: quote notional plus the worst-case taker fee, or the base sold."""
        if side == 1:
            notional = qty * price * inst.unit_notional
            return inst.quote, notional + max(0, fee(notional, inst.taker_rate))
        return inst.base, qty * inst.lot_units

    def refresh_reserved(self, account: int) -> None:
        """Recompute the initial margin held by an account's open orders (after its position changed)."""
        self.clearing.reserved[account] = self._order_margin(int(account))

    def cancel(self, account: int, order_id: int) -> OrderAck:
        """Cancel one of the account's resting orders."""
        o = self.orders.get(order_id)
        if o is None or o.account != account:
            return OrderAck(order_id, Reject.UNKNOWN_ORDER)
        res = self.books[o.symbol].cancel(order_id, account, ts=self.now_ns)
        self._after_book(self.instruments[o.symbol], res.fills, res.cancels, self.now_ns)
        return OrderAck(order_id, Reject.OK, cancelled=res.cancelled)

    def cancel_all(self, account: int, symbol: str | None = None) -> int:
        """Cancel every resting order of ``account`` (on one instrument or all); returns how many."""
        count = 0
        for sym in [symbol] if symbol else list(self.books):
            res = self.books[sym].cancel_all(account, ts=self.now_ns)
            count += len(res.cancels)
            self._after_book(self.instruments[sym], res.fills, res.cancels, self.now_ns)
        return count

    # --- validation ------------------------------------------------------------------------------
    def _check_perp(self, i: int, symbol: str, side: int, qty: int, worst: int, notional: int, reduce_only: bool) -> Reject:
        ch = self.clearing
        k = ch.perp_index[symbol]
        spec = ch.perps[k]
        size = int(ch.accounts.size[k, i])
        if reduce_only:
            if size == 0 or (size > 0) == (side > 0) or qty > abs(size):
                return Reject.REDUCE_ONLY_WOULD_INCREASE
        elif notional < spec.instrument.min_notional_units:
            return Reject.BELOW_MIN_NOTIONAL
        o = self._open
        buy_qty = int(o["buy_qty"][k, i]) + (qty if side == 1 else 0)
        sell_qty = int(o["sell_qty"][k, i]) + (qty if side == -1 else 0)
        if spec.position_limit is not None and max(abs(size + buy_qty), abs(size - sell_qty)) > spec.position_limit:
            return Reject.POSITION_LIMIT
        if reduce_only:
            return Reject.OK  # a reduce-only order cannot raise the margin requirement
        mark = int(ch.marks[k]) or worst
        unit = spec.instrument.unit_notional
        worst_notional = max(abs(size + buy_qty), abs(size - sell_qty)) * max(mark, worst) * unit
        lev = int(ch.accounts.leverage[k, i])
        if lev > spec.tiers.max_leverage[spec.tiers.tier(worst_notional)]:
            return Reject.LEVERAGE_EXCEEDS_TIER
        key_q, key_n = ("buy_qty", "buy_notional") if side == 1 else ("sell_qty", "sell_notional")
        o[key_q][k, i] += qty
        o[key_n][k, i] += notional
        reserved = self._order_margin(i)
        am = ch.account_margin(i)
        ok = am.equity - am.initial - reserved >= 0
        o[key_q][k, i] -= qty
        o[key_n][k, i] -= notional
        return Reject.OK if ok else Reject.INSUFFICIENT_MARGIN

    def _check_spot(self, i: int, inst: Instrument, side: int, qty: int, worst: int, notional: int) -> Reject:
        ch = self.clearing
        if notional < inst.min_notional_units:
            return Reject.BELOW_MIN_NOTIONAL
        asset, need = self._spot_need(inst, side, qty, worst)
        a = ch.ledger.asset(asset)
        free = int(ch.ledger.balances[a, i]) - int(self.spot_reserved[a, i])
        if a == ch.q:
            free -= ch._iso_total(i)
        return Reject.OK if free >= need else Reject.INSUFFICIENT_BALANCE

    def _order_margin(self, i: int) -> int:
        """Initial margin held by the account's open perp orders: the larger increasing side, per instrument."""
        ch = self.clearing
        o = self._open
        total = 0
        for k in range(len(ch.perps)):
            bq, sq = int(o["buy_qty"][k, i]), int(o["sell_qty"][k, i])
            if bq == 0 and sq == 0:
                continue
            size = int(ch.accounts.size[k, i])
            inc_b = max(0, bq - max(0, -size))
            inc_s = max(0, sq - max(0, size))
            nb = int(o["buy_notional"][k, i]) * inc_b // bq if bq else 0
            ns = int(o["sell_notional"][k, i]) * inc_s // sq if sq else 0
            total += -((-max(nb, ns)) // int(ch.accounts.leverage[k, i]))
        return total

    # --- bookkeeping after the book acted ------------------------------------------------------------
    def _tally(self, inst: Instrument, o: OpenOrder, qty: int) -> None:
        """Add (qty > 0) or release (qty < 0) resting quantity of order ``o`` in the venue's tallies."""
        i = o.account
        if inst.kind == InstrumentKind.PERPETUAL:
            k = self.clearing.perp_index[inst.symbol]
            q, n = ("buy_qty", "buy_notional") if o.side == 1 else ("sell_qty", "sell_notional")
            self._open[q][k, i] += qty
            self._open[n][k, i] += qty * o.price * inst.unit_notional
            return
        asset, need = self._spot_need(inst, o.side, max(qty, 0), o.price)
        a = self.clearing.ledger.asset(asset)
        if qty > 0:  # reserve the whole remainder
            amount = o.reserved = need
        else:  # release pro rata; the last release frees what is left, so nothing drifts
            amount = -o.reserved if -qty >= o.qty else -(o.reserved * -qty // o.qty)
            o.reserved += amount
        self.spot_reserved[a, i] += amount

    def _release(self, inst: Instrument, order_id: int, qty: int) -> None:
        o = self.orders.get(order_id)
        if o is None:
            return
        self._tally(inst, o, -qty)
        o.qty -= qty
        if o.qty <= 0:
            del self.orders[order_id]

    def _after_book(self, inst: Instrument, fills: np.ndarray, cancels: np.ndarray, ts: int, account: int = -1) -> None:
        """Release filled/cancelled resting quantity, settle fills, refresh reserved margin."""
        for x in cancels.tolist():
            self._release(inst, x[X_ID], x[X_QTY])
        for f in fills.tolist():
            self._release(inst, f[F_MAKER_ID], f[F_QTY])
        if len(fills):
            if inst.kind == InstrumentKind.PERPETUAL:
                self.clearing.settle_perp_fills(inst.symbol, fills, ts)
            else:
                self.clearing.settle_spot_fills(inst.symbol, fills, ts)
        touched = set(fills[:, 3].tolist()) | set(fills[:, 4].tolist()) | set(cancels[:, 2].tolist()) | {account}
        for i in touched:
            if i >= 0:
                self.clearing.reserved[i] = self._order_margin(int(i))

    # --- prices, funding, time -------------------------------------------------------------------------
    def add_perp_market(
        self,
        symbol: str,
        index_weights: dict[str, Fraction],
        rule: str = "binance",
        funding: FundingRule | None = None,
        impact_margin: int = 200 * MONEY_SCALE,
    ) -> None:
        """Attach index, mark rule and funding clock to a perpetual."""
        k = self.clearing.perp_index[symbol]
        max_lev = self.clearing.perps[k].tiers.max_leverage[0]
        mark_rule = BinanceMark() if rule == "binance" else HyperliquidMark()
        if rule not in ("binance", "hyperliquid"):
            raise ValueError(f"mark rule must be 'binance' or 'hyperliquid', got {rule!r}")
        fr = funding or (FundingRule.hyperliquid() if rule == "hyperliquid" else FundingRule())
        self.markets[symbol] = PerpMarket(
            IndexPrice(index_weights), mark_rule, FundingClock(fr, self.now_ns), impact_notional=impact_margin * max_lev
        )

    def add_asset_index(self, asset: str, weights: dict[str, Fraction]) -> IndexPrice:
        """An external index for a collateral asset (used by ("index", asset) valuation terms)."""
        self.asset_indices[asset] = IndexPrice(weights)
        return self.asset_indices[asset]

    def book_price(self, symbol: str) -> Fraction | None:
        """A spot book's price as a Fraction of quote: mid, else last trade, else None."""
        inst = self.instruments[symbol]
        b = self.books[symbol]
        bb, ba = b.best_bid(), b.best_ask()
        ticks = Fraction(bb + ba, 2) if bb is not None and ba is not None else b.last_price
        return None if ticks is None else Fraction(ticks) * Fraction(inst.tick_size)

    def _resolve(self, kind: str, name: str) -> Fraction | None:
        if kind == "book":
            return self.book_price(name) if name in self.books else None
        idx = self.asset_indices.get(name)
        return idx.value(self.now_ns) if idx else None

    def update_prices(self, now_ns: int) -> None:
        """Recompute collateral prices and marks; sample premiums; pay funding that is due."""
        self.now_ns = now_ns
        ch = self.clearing
        for code, asset in ch.collateral.items():
            p = asset.valuation.price(self._resolve)
            if p is not None:
                ch.asset_price[ch.ledger.asset(code)] = price_units(p)
        for symbol, m in self.markets.items():
            inst = self.instruments[symbol]
            tick = Fraction(inst.tick_size)
            index = m.index.value(now_ns)
            if index is None:
                continue
            b = self.books[symbol]
            bb, ba = b.best_bid(), b.best_ask()
            mid = Fraction(bb + ba, 2) * tick if bb is not None and ba is not None else None
            last = Fraction(b.last_price) * tick if b.last_price else None
            if isinstance(m.mark_rule, BinanceMark):
                mark = m.mark_rule.update(
                    now_ns, index, mid, last, m.funding.last_rate, m.funding.next_funding_ns - now_ns, m.funding.interval_ns
                )
            else:
                mark = m.mark_rule.update(
                    now_ns, index, None if bb is None else bb * tick, None if ba is None else ba * tick, last
                )
            ch.set_mark(symbol, round(mark / tick))
            bids, asks = b.levels(1), b.levels(-1)
            ib = impact_price(bids[0], bids[1], inst.unit_notional, tick, m.impact_notional)
            ia = impact_price(asks[0], asks[1], inst.unit_notional, tick, m.impact_notional)
            m.funding.sample(now_ns, premium_index(ib, ia, index))
            if m.funding.due(now_ns):
                rate = m.funding.settle()
                ch.pay_funding(symbol, rate_units(rate), int(ch.marks[ch.perp_index[symbol]]), now_ns)
        if self.debug:
            ch.check()

    def close(self) -> None:
        """End of a run: prove conservation exactly (raises if the books do not balance)."""
        self.clearing.check()
