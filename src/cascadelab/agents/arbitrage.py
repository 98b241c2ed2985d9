"""Arbitrageurs: keep the venue's prices near outside prices, within their capital and transfer delays.

An :class:`Arbitrageur` watches one instrument against its external reference (BRIEF §5:
cross-venue gaps paid more than quoting):

* a perpetual: buys when the venue's ask is below the external index by more than its
  threshold, sells when the bid is above (IOC limit orders at the threshold price; the
  other leg is on another venue, outside the simulation), within an inventory limit and
  the margin its capital allows; it unwinds as the gap closes;
* a collateral token (USDe redeemable near 1, wBETH / BNSOL at their conversion ratio):
  buys the token cheap with USDT held on the venue, withdraws it to redeem outside, and the
  USDT comes back only after a transfer delay (minutes); when the venue's bid is rich it
  sells tokens it holds, and once those are gone it mints more outside with USDT it
  withdraws: the tokens arrive after the same delay.

Its capital is what limits it: once its cash is spent and in transit, it stops, and a gap
can open. That is when a depeg appears on the venue's book.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from cascadelab.agents.base import (
    NEVER,
    WATCH_EXTERNAL,
    WATCH_VENUE,
    Client,
    Observation,
    Requests,
    Schedule,
    Watch,
    account_requests,
    check_params,
    orders,
)
from cascadelab.records import FLAG_REDUCE_ONLY, ORDER_REQUEST, TIF, AccountOp, AccountType, Op
from cascadelab.units import MONEY_SCALE, SECOND_NS


def _arrived(queue: deque[tuple[int, int]], now: int) -> list[int]:
    """Take the amounts due by ``now`` off the front of a due-ordered queue."""
    out = []
    while queue and queue[0][0] <= now:
        out.append(queue.popleft()[1])
    return out


@dataclass
class ArbParams:
    """One arbitrageur's limits and reaction (quote units unless named)."""

    symbol: str
    threshold_bps: float = 30.0  # minimum gap to trade
    close_bps: float = 5.0  # a position is unwound once the gap is back within this
    clip_notional: float = 200_000.0  # per order
    inventory_limit: float = 5_000_000.0  # notional
    transfer_delay_s: float = 600.0  # tokens out and cash back (spot arbitrage)
    redemption_fee_bps: float = 5.0
    every_ms: int = 2_000
    rest: bool = True  # also rest a bid and an ask (sized by its room) where it stands ready to trade...
    rest_bps: float | None = None  # ...this far from the outside price (default: its threshold)

    def __post_init__(self) -> None:
        check_params(self, positive=("threshold_bps", "clip_notional", "inventory_limit", "every_ms"),
                     non_negative=("close_bps", "transfer_delay_s", "redemption_fee_bps"))  # fmt: skip


class Arbitrageur:
    """One arbitrageur on one instrument (see the module docstring)."""

    account_type = AccountType.ARBITRAGEUR
    wake_on_fills = True
    wake_on_news = False
    reads = frozenset({"fills"})  # of its own records it reads only fills (acks, cancels, events are not sent)

    def __init__(self, name: str, account: int, params: ArbParams, latency_ns: int = 20_000_000, jitter_ns: int = 20_000_000):
        self.name = name
        self.accounts = np.array([account], np.int64)
        self.p = params
        self.latency_ns, self.jitter_ns = latency_ns, jitter_ns
        self.schedule = Schedule(params.every_ms * 1_000_000)
        self.instrument = -1
        # (due ns, money units) in due order (a fixed delay from each send): USDT coming back, tokens minted outside
        self.in_transit: deque[tuple[int, int]] = deque()
        self.tokens_in_transit: deque[tuple[int, int]] = deque()
        self.returned = 0
        self.sent_out = 0
        self._band: tuple[float, float] | None = None
        self._rested: tuple[float, int, int] | None = None  # (outside price, bid lots, ask lots) of its resting quotes
        self._watch_key: tuple = ()
        self._watch: list[Watch] = []
        self._tick = self._lot = math.nan  # its book's tick and lot (set at the first wake, with ``instrument``)
        self._is_perp = False

    def wake_at(self) -> int:
        """The next check or the next transfer arrival."""
        cash = self.in_transit[0][0] if self.in_transit else NEVER
        tokens = self.tokens_in_transit[0][0] if self.tokens_in_transit else NEVER
        nxt = min(cash, tokens)
        return min(self.schedule.next_ns, nxt)

    def watch(self) -> list[Watch]:
        """Woken when the venue's price leaves the no-trade band, or the outside price moves its resting quotes' worth."""
        if self._band is None or self.instrument < 0:
            return []
        key = (self._band, None if self._rested is None else self._rested[0])
        if key == self._watch_key:  # the same bands as last time: the same (immutable) Watches
            return self._watch
        out = [Watch(self.instrument, WATCH_VENUE, *self._band)]
        if self._rested is not None:
            ext, d = self._rested[0], self.p.threshold_bps / 4e4
            out.append(Watch(self.instrument, WATCH_EXTERNAL, ext * (1 - d), ext * (1 + d)))
        self._watch_key, self._watch = key, out
        return out

    def _stale(self, ext: float, lb: int, la: int, fills: int) -> bool:
        """Should the resting quotes be replaced? (outside price moved, room changed by a fifth, or fills)."""
        if self._rested is None or fills:
            return True
        e0, b0, a0 = self._rested
        if abs(ext / e0 - 1) * 4e4 > self.p.threshold_bps:
            return True
        return abs(lb - b0) > 0.2 * max(b0, 1) or abs(la - a0) > 0.2 * max(a0, 1)

    def act(self, obs: Observation, client: Client) -> Requests:
        """Trade the gap, move tokens out, bring cash back."""
        m, p, now = obs.market, self.p, obs.now_ns
        if self.instrument < 0:
            b = self.instrument = m.index(p.symbol)
            self._tick, self._lot = float(m.tick[b]), float(m.lot[b])
            self._is_perp = bool(m.is_perp[b])
        if self.schedule.due(now):
            self.schedule.advance(now)
        b = self.instrument
        out: list[Requests] = []
        arrived = _arrived(self.in_transit, now)
        if arrived:
            q = client.asset_index(m.quote[b])
            out.append(Requests(account=account_requests(self.accounts[0], AccountOp.DEPOSIT, q, sum(arrived))))
            self.returned += sum(arrived)
        minted = _arrived(self.tokens_in_transit, now)
        if minted:
            out.append(Requests(account=account_requests(self.accounts[0], AccountOp.DEPOSIT, client.asset_index(m.base[b]),
                                                         sum(minted))))  # fmt: skip
        ext = float(obs.external.reference[b])
        self._fills_seen = int((obs.fills["instrument"] == b).sum()) if len(obs.fills) else 0
        if not (math.isfinite(ext) and ext > 0):
            self._band = None
            return Requests.concat(out)
        thr = p.threshold_bps / 1e4
        lo, hi = ext * (1 - thr), ext * (1 + thr)
        trade = self._perp(m, client, ext) if self._is_perp else self._spot(obs, client, ext)
        out.append(trade)
        # a gap it cannot act on (capital, inventory or tokens used up) is rechecked on its schedule and on
        # its fills, not on every step the venue's price stays outside the band; one it trades keeps it awake
        ref = float(m.reference()[b])
        inside = not math.isfinite(ref) or lo <= ref <= hi
        self._band = (lo, hi) if inside or len(trade.orders) else None
        return Requests.concat(out)

    def _perp(self, m: object, client: Client, ext: float) -> Requests:
        p, b, _me = self.p, self.instrument, self.accounts[0]
        tick, lot = self._tick, self._lot
        bid, ask = int(m.best_bid[b]) * tick, int(m.best_ask[b]) * tick  # type: ignore[attr-defined]
        pos = client.position(b) * lot
        thr, _close = p.threshold_bps / 1e4, p.close_bps / 1e4
        room_long = p.inventory_limit - pos * ext
        room_short = p.inventory_limit + pos * ext
        take = self._take_perp(m, ext, bid, ask, pos, room_long, room_short)
        if not p.rest:
            return take
        thr = (p.rest_bps if p.rest_bps is not None else p.threshold_bps) / 1e4
        bid_t, ask_t = math.floor(ext * (1 - thr) / tick), math.ceil(ext * (1 + thr) / tick)
        lb = int(min(p.clip_notional, max(0.0, room_long)) / max(bid_t * tick * lot, 1e-12))
        la = int(min(p.clip_notional, max(0.0, room_short)) / (ask_t * tick * lot))
        if not self._stale(ext, lb, la, self._fills_seen):
            return take
        return Requests.concat([take, self._rest(b, ext, bid_t, ask_t, lb, la)])

    def _rest(self, b: int, ext: float, bid_t: int, ask_t: int, lb: int, la: int) -> Requests:
        """Resting quotes at the threshold prices: where it stands ready to trade the gap, one clip each side."""
        me = self.accounts[0]
        lb = lb if bid_t > 0 else 0
        out = np.zeros(1 + (lb > 0) + (la > 0), ORDER_REQUEST)
        out["account"] = me
        out["instrument"] = b
        out["kind"][0] = Op.CANCEL_ALL
        j = 1
        for side, lots, px in ((1, lb, bid_t), (-1, la, ask_t)):
            if lots > 0:
                out[j]["side"], out[j]["qty"], out[j]["price"], out[j]["tif"] = side, lots, px, TIF.POST_ONLY
                j += 1
        self._rested = (ext, lb, la)
        return Requests(out)

    def _take_perp(
        self, m: object, ext: float, bid: float, ask: float, pos: float, room_long: float, room_short: float
    ) -> Requests:
        p, b, me = self.p, self.instrument, self.accounts[0]
        tick, lot = self._tick, self._lot
        thr, close = p.threshold_bps / 1e4, p.close_bps / 1e4
        if ask > 0 and ask < ext * (1 - thr) and room_long > 0:
            px = math.floor(ext * (1 - thr) / tick)
            lots = int(min(p.clip_notional, room_long) / (px * tick * lot))
            if lots > 0:
                return Requests(orders(me, b, 1, lots, px, Op.LIMIT, TIF.IOC))
        if bid > 0 and bid > ext * (1 + thr) and room_short > 0:
            px = math.ceil(ext * (1 + thr) / tick)
            lots = int(min(p.clip_notional, room_short) / (px * tick * lot))
            if lots > 0:
                return Requests(orders(me, b, -1, lots, px, Op.LIMIT, TIF.IOC))
        if pos > 0 and bid > 0 and bid >= ext * (1 - close):  # the gap closed: unwind the long
            lots = int(min(pos * ext, p.clip_notional) / (bid * lot))
            if lots > 0:
                return Requests(orders(me, b, -1, lots, int(bid / tick), Op.LIMIT, TIF.IOC, FLAG_REDUCE_ONLY))
        if pos < 0 and ask > 0 and ask <= ext * (1 + close):
            lots = int(min(-pos * ext, p.clip_notional) / (ask * lot))
            if lots > 0:
                return Requests(orders(me, b, 1, lots, round(ask / tick), Op.LIMIT, TIF.IOC, FLAG_REDUCE_ONLY))
        return Requests()

    def _spot(self, obs: Observation, client: Client, ext: float) -> Requests:
        m, p, b, me = obs.market, self.p, self.instrument, self.accounts[0]
        tick, lot = self._tick, self._lot
        bid, ask = int(m.best_bid[b]) * tick, int(m.best_ask[b]) * tick
        thr = p.threshold_bps / 1e4
        base, quote = m.base[b], m.quote[b]
        tokens = client.balance(base)
        cash = client.balance(quote) / MONEY_SCALE
        out: list[Requests] = []
        # what it bought earlier goes out to be redeemed; the cash comes back after the delay
        bought = [f for f in obs.fills if f["instrument"] == b]
        if bought and tokens > 0:
            out.append(Requests(account=account_requests(me, AccountOp.WITHDRAW, client.asset_index(base), tokens)))
            value = int(tokens / MONEY_SCALE * ext * (1 - p.redemption_fee_bps / 1e4) * MONEY_SCALE)
            self.in_transit.append((obs.now_ns + int(p.transfer_delay_s * SECOND_NS), value))
            self.sent_out += value
            tokens = 0
        if ask > 0 and ask < ext * (1 - thr) and cash > 0:
            px = math.floor(ext * (1 - thr) / tick)
            spend = min(p.clip_notional, cash / (1 + 0.001))
            lots = int(spend / (px * tick * lot))
            if lots > 0:
                out.append(Requests(orders(me, b, 1, lots, px, Op.LIMIT, TIF.IOC)))
        elif bid > 0 and bid > ext * (1 + thr) and tokens > 0:
            px = math.ceil(ext * (1 + thr) / tick)
            lots = int(min(p.clip_notional / (px * tick), tokens / MONEY_SCALE) / lot)
            if lots > 0:
                out.append(Requests(orders(me, b, -1, lots, px, Op.LIMIT, TIF.IOC)))
        elif bid > 0 and bid > ext * (1 + thr) and not self.tokens_in_transit and cash >= p.clip_notional:
            spend = int(p.clip_notional * MONEY_SCALE)  # mint outside: USDT out now, tokens in after the delay
            out.append(Requests(account=account_requests(me, AccountOp.WITHDRAW, client.asset_index(quote), spend)))
            tokens_out = int(p.clip_notional / ext * (1 - p.redemption_fee_bps / 1e4) * MONEY_SCALE)
            self.tokens_in_transit.append((obs.now_ns + int(p.transfer_delay_s * SECOND_NS), tokens_out))
            cash -= p.clip_notional
        if p.rest:  # stand ready with what it has: cash to buy, tokens to sell
            rt = (p.rest_bps if p.rest_bps is not None else p.threshold_bps) / 1e4
            bid_t = math.floor(ext * (1 - rt) / tick)
            ask_t = math.ceil(ext * (1 + rt) / tick)
            lb = int(min(p.clip_notional, max(0.0, cash * 0.99)) / max(bid_t * tick * lot, 1e-12))
            la = int(min(p.clip_notional / (ask_t * tick), tokens / MONEY_SCALE) / lot)
            if self._stale(ext, lb, la, len(bought)):
                out.append(self._rest(b, ext, bid_t, ask_t, lb, la))
        return Requests.concat(out)

    def capital_in_transit(self) -> float:
        """Quote units on their way back (observable: when this is all its capital, it has stopped)."""
        return sum(a for _, a in self.in_transit) / MONEY_SCALE


__all__ = ["ArbParams", "Arbitrageur"]
