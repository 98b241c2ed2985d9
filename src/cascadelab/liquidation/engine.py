"""The liquidation engine: the three tiers, run on every mark update.

1. **Detection.** The clearing house's scan (float pre-screen of every account, exact check
   of suspects) names the accounts below maintenance.
2. **Tier 1, the book.** The account's orders are cancelled, then liquidation orders go to
   the real book, by the profile's style:
   ``binance``: IOC orders for the size needed, bounded by the bankruptcy price, stopping as
   soon as the account is compliant; a clearance fee goes to the insurance fund.
   ``hyperliquid``: market orders, 20% chunks above a notional threshold with a cooldown;
   the backstop takes over once equity falls below 2/3 of maintenance.
   ``takeover``: the engine takes the account over at once (BitMEX).
3. **Takeover.** What the book cannot finish is taken over by the venue's liquidator
   account at the mark: positions, collateral and debts. The account's remaining quote
   balance goes to the insurance fund if positive; if negative (a deficit) the fund pays it
   (**tier 2**); what the fund cannot or, by the profile's trigger, may not pay is recovered
   by **ADL** (tier 3): the liquidator's taken-over position is closed against ranked
   opposite positions at the bankruptcy price (which makes them absorb the deficit) or at
   the mark. Whatever is still missing is bad debt, paid from the socialized-loss account.
   The liquidator then unwinds what it holds through the books at a limited throughput
   (orders and notional per second), and its gains and losses flow to the funds.

Every step is a ledger entry; the event log records each order, fill, takeover, fund
movement, ADL close and bad debt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cascadelab.book.codes import N_FILL_COLS
from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.ledger import SOCIALIZED_LOSS, Kind
from cascadelab.fees import fee as fee_on
from cascadelab.liquidation import adl
from cascadelab.liquidation.events import Ev, EventLog
from cascadelab.units import RATE_SCALE

SECOND_NS = 1_000_000_000
STYLES = ("binance", "hyperliquid", "takeover")
FUND_STRUCTURES = ("shared", "per_symbol", "vault")
ADL_TRIGGERS = ("insufficient", "drawdown", "negative_equity")
ADL_PRICES = ("bankruptcy", "mark", "previous_mark")


class Gateway(Protocol):
    """What the engine needs from the venue (the venue implements it; nothing here imports the venue)."""

    clearing: ClearingHouse
    debug: bool

    def open_accounts(self, n: int) -> np.ndarray: ...
    def cancel_all(self, account: int, symbol: str | None = None) -> int: ...
    def force_order(
        self,
        account: int,
        symbol: str,
        side: int,
        qty: int,
        price: int | None = None,
        protection_bps: int | None = None,
        ts: int | None = None,
    ) -> Any: ...
    def refresh_reserved(self, account: int) -> None: ...


class LiquidationError(ValueError):
    """An invalid liquidation configuration; the message names the field."""


@dataclass(frozen=True)
class LiquidationConfig:
    """How one venue liquidates (see the module docstring for the meaning of each style)."""

    style: str = "binance"
    clearance_fee: int = 4_000  # millionths of liquidated notional to the insurance fund (40 bps)
    fund_structure: str = "shared"
    fund_seed: int = 0  # money units per fund (or vault capital)
    adl_trigger: str = "insufficient"
    drawdown_threshold: int = 300_000  # millionths of the window's peak (30%)
    drawdown_window_ns: int = 8 * 3600 * SECOND_NS
    adl_ranking: str = "binance"
    adl_price: str = "bankruptcy"
    chunk_threshold: int = 0  # money: above this notional, liquidate in chunks (Hyperliquid: 100k)
    chunk_fraction: int = 200_000  # millionths of the position per chunk
    chunk_cooldown_ns: int = 30 * SECOND_NS
    backstop_fraction: tuple[int, int] = (2, 3)  # take over when equity < 2/3 of maintenance
    liquidator_orders_per_s: float = 50.0
    liquidator_notional_per_s: int = 0  # money per second; 0 = unlimited
    max_steps_per_account: int = 20

    def __post_init__(self) -> None:
        for name, allowed in (
            ("style", STYLES),
            ("fund_structure", FUND_STRUCTURES),
            ("adl_trigger", ADL_TRIGGERS),
            ("adl_price", ADL_PRICES),
            ("adl_ranking", adl.RANKINGS),
        ):
            if getattr(self, name) not in allowed:
                value = getattr(self, name)
                raise LiquidationError(f"liquidation config: field {name!r} must be one of {allowed}, got {value!r}")
        if not 0 <= self.clearance_fee < RATE_SCALE:
            raise LiquidationError("liquidation config: field 'clearance_fee' must be within [0, 1e6) millionths")
        if not 0 < self.chunk_fraction <= RATE_SCALE:
            raise LiquidationError("liquidation config: field 'chunk_fraction' must be within (0, 1e6] millionths")
        if self.liquidator_orders_per_s <= 0:
            raise LiquidationError("liquidation config: field 'liquidator_orders_per_s' must be > 0")


@dataclass
class FundState:
    """One insurance fund (a ledger system account) and its recent peak for drawdown triggers."""

    name: str
    account: int
    history: list[tuple[int, int]] = field(default_factory=list)


class LiquidationEngine:
    """Runs detection, the three tiers and the liquidator's unwinding for one venue."""

    def __init__(self, venue: Gateway, config: LiquidationConfig) -> None:
        self.venue = venue
        self.ch = venue.clearing
        self.config = config
        self.events = EventLog()
        (self.liquidator,) = venue.open_accounts(1)
        self.liquidator = int(self.liquidator)
        self.system_accounts = {self.liquidator}
        symbols = [p.instrument.symbol for p in self.ch.perps]
        self.funds: dict[str, FundState] = {}
        if config.fund_structure == "shared":
            self.funds["shared"] = FundState("shared", self.ch.ledger.system_account("insurance:shared"))
        elif config.fund_structure == "per_symbol":
            for s in symbols:
                self.funds[s] = FundState(s, self.ch.ledger.system_account(f"insurance:{s}"))
        for f in self.funds.values():
            if config.fund_seed:
                self.ch.ledger.transfer(self.ch.q, -1, f.account, config.fund_seed, Kind.FUND_SEED)
        if config.fund_structure == "vault" and config.fund_seed:
            self.ch.deposit(self.liquidator, self.ch.settle_asset, config.fund_seed)
        self.swept = np.zeros(len(symbols), np.int64)  # liquidator PnL per symbol already moved to the funds
        self.fees_paid = np.zeros(len(symbols), np.int64)
        self.prev_marks = self.ch.marks.copy()
        self.cooldown_until: dict[int, int] = {}
        self.order_credit = 0.0
        self.last_step_ns: int | None = None
        self.history: list[dict[str, object]] = []
        self.now_ns = 0
        self._record_funds(0)

    # --- funds --------------------------------------------------------------------------
    def fund_for(self, symbol: str) -> FundState | None:
        """The insurance fund that backs ``symbol`` (None for a vault profile)."""
        if self.config.fund_structure == "shared":
            return self.funds["shared"]
        return self.funds.get(symbol)

    def fund_balance(self, symbol: str) -> int:
        """Balance of the fund (or vault capital) backing ``symbol``."""
        f = self.fund_for(symbol)
        if f is None:
            return self.ch.ledger.balance(self.liquidator, self.ch.q)
        return self.ch.ledger.balance(f.account, self.ch.q)

    def _record_funds(self, ts: int) -> None:
        for f in self.funds.values():
            f.history.append((ts, self.ch.ledger.balance(f.account, self.ch.q)))
            cutoff = ts - self.config.drawdown_window_ns
            while len(f.history) > 1 and f.history[0][0] < cutoff:
                f.history.pop(0)

    def _fund_pay_limit(self, symbol: str, deficit: int, ts: int) -> int:
        """How much of a deficit the fund may pay before ADL takes over (the profile's trigger)."""
        bal = self.fund_balance(symbol)
        if self.config.adl_trigger == "negative_equity":
            return 0  # Hyperliquid: a negative account value goes to ADL first
        limit = max(0, bal)
        if self.config.adl_trigger == "drawdown":
            f = self.fund_for(symbol)
            peak = max([b for _, b in f.history] + [bal]) if f else bal
            floor = peak - peak * self.config.drawdown_threshold // RATE_SCALE
            limit = max(0, min(limit, bal - floor))
        return min(deficit, limit)

    def _fund_transfer(self, symbol: str, amount: int, to_account: int, ts: int, kind: Kind, note: str) -> None:
        """Move ``amount`` from the fund backing ``symbol`` to ``to_account`` (negative: the other way)."""
        if amount == 0:
            return
        f = self.fund_for(symbol)
        src = f.account if f else self.liquidator
        name = f.name if f else "vault"
        if src == to_account:
            return
        if amount > 0:
            self.ch.ledger.transfer(self.ch.q, src, to_account, amount, kind, ts)
            self.events.add(ts, Ev.FUND_OUT, account=to_account, symbol=symbol, amount=amount, fund=name, note=note)
        else:
            self.ch.ledger.transfer(self.ch.q, to_account, src, -amount, kind, ts)
            self.events.add(ts, Ev.FUND_IN, account=to_account, symbol=symbol, amount=-amount, fund=name, note=note)

    # --- the step ---------------------------------------------------------------------------
    def step(self, now_ns: int) -> list[int]:
        """Run one risk cycle at ``now_ns`` (call after prices were updated). Returns accounts liquidated."""
        self.now_ns = now_ns
        dt = 0.0 if self.last_step_ns is None else (now_ns - self.last_step_ns) / SECOND_NS
        self.last_step_ns = now_ns
        scan = self.ch.scan()
        below = set(np.flatnonzero(scan.below_maintenance).tolist()) | set(self.ltv_breaches())
        touched = []
        for i in sorted(below):
            if i in self.system_accounts or self.ch.accounts.state[i] in (AccountState.TAKEN_OVER, AccountState.BANKRUPT):
                continue
            if self.cooldown_until.get(i, -1) > now_ns:
                continue
            self._liquidate(i, now_ns)
            touched.append(i)
        self._unwind(now_ns, dt)
        self._sweep(now_ns)
        self.prev_marks = self.ch.marks.copy()
        self._record_funds(now_ns)
        self.history.append(
            {
                "ts": now_ns,
                "liquidated": len(touched),
                "backlog": self.backlog(),
                **{f"fund:{n}": self.ch.ledger.balance(f.account, self.ch.q) for n, f in self.funds.items()},
            }
        )
        return touched

    def ltv_breaches(self) -> list[int]:
        """Accounts whose loans exceed the liquidation loan-to-value (they may hold no position at all)."""
        return [i for i in self.ch.ltv_breaches().tolist() if i not in self.system_accounts]

    def backlog(self) -> int:
        """Notional (money units at mark) the liquidator still holds: positions plus collateral."""
        ch, liq = self.ch, self.liquidator
        total = 0
        for k in range(len(ch.perps)):
            total += abs(int(ch.accounts.size[k, liq])) * int(ch.marks[k]) * int(ch._units[k])
        for a in range(len(ch.assets)):
            if a != ch.q:
                b = int(ch.ledger.balances[a, liq])
                total += max(0, b) * int(ch.asset_price[a]) // 10**8
        return total

    # --- tier 1 -------------------------------------------------------------------------------
    def _status(self, i: int) -> tuple[int, int, list[int], bool]:
        """(cross equity, cross maintenance, isolated positions in breach, LTV breach) of account ``i``."""
        ch = self.ch
        am = ch.account_margin(i)
        iso_bad = [ch.perp_index[p.instrument] for p in am.positions if p.isolated and p.isolated_margin + p.upnl < p.maintenance]
        ltv_bad = bool(ch.accounts.debt[:, i].any()) and ch.ltv(i) > ch.loan_terms.liquidation_ltv
        return am.equity, am.maintenance, iso_bad, ltv_bad

    def _liquidate(self, i: int, ts: int) -> None:
        ch = self.ch
        eq, mm, iso_bad, ltv_bad = self._status(i)
        if ch.accounts.state[i] == AccountState.NORMAL:
            ch.accounts.state[i] = AccountState.LIQUIDATING
            self.events.add(ts, Ev.LIQUIDATION_START, account=i, amount=eq, note=f"maintenance {mm}")
            n = self.venue.cancel_all(i)
            if n:
                self.events.add(ts, Ev.ORDERS_CANCELLED, account=i, qty=n)
        for k in iso_bad:  # each isolated position stands alone
            self._liquidate_isolated(i, k, ts)
        cross_bad = mm > 0 and eq < mm
        if ltv_bad and not cross_bad:
            self._takeover(i, ts, "loan-to-value above the liquidation LTV")
            return
        if cross_bad:
            self._liquidate_cross(i, ts)
            return
        ch.accounts.state[i] = AccountState.NORMAL
        self.events.add(ts, Ev.COMPLIANT, account=i, amount=eq, note=f"maintenance {mm}")

    def _liquidate_isolated(self, i: int, k: int, ts: int) -> None:
        ch, cfg = self.ch, self.config
        sym = ch.perps[k].instrument.symbol
        for _ in range(cfg.max_steps_per_account):
            am = ch.account_margin(i)
            pos = next((p for p in am.positions if p.instrument == sym), None)
            if pos is None or pos.isolated_margin + pos.upnl >= pos.maintenance:
                return
            if cfg.style == "takeover" or (
                cfg.style == "hyperliquid"
                and (pos.isolated_margin + pos.upnl) * cfg.backstop_fraction[1] < pos.maintenance * cfg.backstop_fraction[0]
            ):
                break
            if self._liquidation_order(i, k, pos.isolated_margin + pos.upnl, pos.maintenance, ts) == 0:
                break
            if cfg.style == "hyperliquid" and self.cooldown_until.get(i, -1) > ts:
                return
        if ch.accounts.size[k, i] != 0:
            self._takeover_isolated(i, k, ts)

    def _liquidate_cross(self, i: int, ts: int) -> None:
        ch, cfg = self.ch, self.config
        if cfg.style == "takeover":
            self._takeover(i, ts, "profile takes over at once")
            return
        for _ in range(cfg.max_steps_per_account):
            eq, mm, _, ltv_bad = self._status(i)
            if mm == 0 or eq >= mm:
                if ltv_bad:
                    break
                ch.accounts.state[i] = AccountState.NORMAL
                self.events.add(ts, Ev.COMPLIANT, account=i, amount=eq, note=f"maintenance {mm}")
                self.cooldown_until.pop(i, None)
                return
            if cfg.style == "hyperliquid" and eq * cfg.backstop_fraction[1] < mm * cfg.backstop_fraction[0]:
                self._takeover(i, ts, "equity below 2/3 of maintenance: backstop")
                return
            k = self._largest_position(i)
            if k is None:
                break
            filled = self._liquidation_order(i, k, eq, mm, ts)
            if cfg.style == "hyperliquid" and self.cooldown_until.get(i, -1) > ts:
                eq, mm, _, _ = self._status(i)
                if mm > 0 and eq < mm:
                    return  # wait out the cooldown, still LIQUIDATING
            if filled == 0:
                break
        eq, mm, _, ltv_bad = self._status(i)
        if (mm > 0 and eq < mm) or ltv_bad:
            self._takeover(i, ts, "the book could not restore the account")
        else:
            ch.accounts.state[i] = AccountState.NORMAL
            self.events.add(ts, Ev.COMPLIANT, account=i, amount=eq, note=f"maintenance {mm}")

    def _largest_position(self, i: int) -> int | None:
        ch = self.ch
        best, best_k = 0, None
        for k in range(len(ch.perps)):
            q = int(ch.accounts.size[k, i])
            if q == 0 or ch.accounts.isolated[k, i]:
                continue
            n = abs(q) * int(ch.marks[k]) * int(ch._units[k])
            if n > best:
                best, best_k = n, k
        return best_k

    def _liquidation_order(self, i: int, k: int, eq: int, mm: int, ts: int) -> int:
        """Send one liquidation order for position ``k`` of account ``i``; returns lots filled."""
        ch, cfg = self.ch, self.config
        spec = ch.perps[k]
        symbol = spec.instrument.symbol
        q = int(ch.accounts.size[k, i])
        unit = int(ch._units[k])
        mark = int(ch.marks[k])
        side = -1 if q > 0 else 1
        notional = abs(q) * mark * unit
        if cfg.style == "hyperliquid":
            price = None
            chunked = notional > cfg.chunk_threshold > 0 and i not in self.cooldown_until
            qty = max(1, abs(q) * cfg.chunk_fraction // RATE_SCALE) if chunked else abs(q)
            if chunked:
                self.cooldown_until[i] = ts + cfg.chunk_cooldown_ns
        else:
            # bankruptcy price with the rest of the account fixed (equity would be 0 there), rounded so
            # that the order never trades beyond it: a long sells at or above it, a short buys at or below
            step = eq // (abs(q) * unit)
            price = max(1, mark - step if q > 0 else mark + step)
            # lots that would restore compliance at the mark, with a margin for slippage, at least one lot
            mmr = spec.tiers.mmr[spec.tiers.tier(notional)]
            need = (mm - eq) * RATE_SCALE // max(1, mark * unit * mmr // 1) + 1
            qty = min(abs(q), max(1, 2 * need, abs(q) // 10))
        self.events.add(ts, Ev.LIQUIDATION_ORDER, account=i, symbol=symbol, side=side, qty=qty, price=price or 0)
        ack = self.venue.force_order(i, symbol, side, qty, price, ts=ts)
        filled = 0
        for f in ack.fills.tolist():
            filled += f[6]
            self.events.add(ts, Ev.LIQUIDATION_FILL, account=i, symbol=symbol, side=side, qty=f[6], price=f[5])
        if filled and cfg.clearance_fee:
            fee = fee_on(sum(f[6] * f[5] for f in ack.fills.tolist()) * unit, cfg.clearance_fee)
            fee = min(fee, max(0, ch.account_margin(i).equity))  # never push the account into bankruptcy
            fund = self.fund_for(symbol)
            if fee > 0 and fund is not None:
                ch.ledger.transfer(ch.q, i, fund.account, fee, Kind.LIQUIDATION_FEE, ts)
                self.events.add(ts, Ev.CLEARANCE_FEE, account=i, symbol=symbol, amount=fee, fund=fund.name)
        return filled

    # --- takeover, tier 2 and tier 3 ------------------------------------------------------------
    def _synthetic_fill(self, symbol: str, maker: int, taker: int, taker_side: int, price: int, qty: int, ts: int) -> dict:
        row = np.zeros((1, N_FILL_COLS), np.int64)
        row[0] = [ts, 0, 0, maker, taker, price, qty, taker_side]
        return self.ch.settle_perp_fills(symbol, row, ts, charge_fees=False)

    def _take_position(self, i: int, k: int, ts: int, why: str) -> int:
        """Move account ``i``'s position in ``k`` to the liquidator at the mark (no fee); returns its size."""
        ch = self.ch
        q = int(ch.accounts.size[k, i])
        sym = ch.perps[k].instrument.symbol
        mark = int(ch.marks[k])
        self._synthetic_fill(sym, self.liquidator, i, -1 if q > 0 else 1, mark, abs(q), ts)
        self.events.add(ts, Ev.TAKEOVER, account=i, symbol=sym, side=1 if q > 0 else -1, qty=abs(q), price=mark, note=why)
        return q

    def _takeover(self, i: int, ts: int, why: str) -> None:
        """Cross takeover: cross positions, collateral and debts go to the liquidator; tiers 2-3 settle the rest."""
        ch, liq = self.ch, self.liquidator
        self.venue.cancel_all(i)
        taken = {
            k: self._take_position(i, k, ts, why)
            for k in range(len(ch.perps))
            if ch.accounts.size[k, i] != 0 and not ch.accounts.isolated[k, i]
        }
        for a, code in enumerate(ch.assets):
            b = int(ch.ledger.balances[a, i])
            if a != ch.q and b > 0:
                ch.ledger.transfer(a, i, liq, b, Kind.TAKEOVER, ts)
                self.events.add(ts, Ev.COLLATERAL_TAKEN, account=i, amount=b, note=code)
            d = int(ch.accounts.debt[a, i])
            if d > 0:
                ch.accounts.debt[a, i] = 0
                ch.accounts.debt[a, liq] += d
                self.events.add(ts, Ev.DEBT_TAKEN, account=i, amount=d, note=code)
        cross = ch.ledger.balance(i, ch.q) - ch._iso_total(i)
        self._settle_remainder(i, taken, cross, ts)
        self.cooldown_until.pop(i, None)

    def _takeover_isolated(self, i: int, k: int, ts: int) -> None:
        """Isolated takeover: only that position and its margin; the rest of the account is untouched."""
        ch = self.ch
        margin = int(ch.accounts.iso_margin[k, i])
        cost = int(ch.accounts.cost[k, i])
        q = int(ch.accounts.size[k, i])
        value = q * int(ch.marks[k]) * int(ch._units[k])
        left = margin + value - cost  # what the isolated margin is worth after closing at the mark
        ch.accounts.isolated[k, i] = False  # close it as a plain position, then settle its margin here
        ch.accounts.iso_margin[k, i] = 0
        self._take_position(i, k, ts, "isolated position below maintenance")
        ch.accounts.isolated[k, i] = True
        # the close moved (value - cost) into the wallet; the isolated margin ``left`` is the result
        self._settle_remainder(i, {k: q}, left, ts)
        if ch.accounts.state[i] == AccountState.BANKRUPT or ch.accounts.state[i] == AccountState.TAKEN_OVER:
            ch.accounts.state[i] = AccountState.LIQUIDATING  # the cross part of the account lives on

    def _settle_remainder(self, i: int, taken: dict[int, int], remainder: int, ts: int) -> None:
        """A positive remainder goes to the funds; a deficit goes through tier 2, ADL, then bad debt."""
        ch = self.ch
        shares = self._shares(taken, abs(remainder))
        if remainder >= 0:
            for sym, amt in shares.items():
                self._fund_transfer(sym, -amt, i, ts, Kind.TAKEOVER, "remaining margin to the fund")
            ch.accounts.state[i] = AccountState.TAKEN_OVER
        else:
            for sym, deficit in shares.items():
                self._cover_deficit(i, sym, deficit, taken, ts)
            ch.accounts.state[i] = AccountState.BANKRUPT

    def _shares(self, taken: dict[int, int], amount: int) -> dict[str, int]:
        """Split ``amount`` over the taken-over symbols by notional (largest remainder), or to the first fund."""
        ch = self.ch
        if not taken:
            sym = ch.perps[0].instrument.symbol
            return {sym: amount} if amount else {}
        ks = sorted(taken)
        weights = [abs(taken[k]) * int(ch.marks[k]) * int(ch._units[k]) for k in ks]
        total = sum(weights) or 1
        base = [amount * w // total for w in weights]
        rest = amount - sum(base)
        order = sorted(range(len(ks)), key=lambda j: (-(amount * weights[j] % total), ks[j]))
        for j in order[:rest]:
            base[j] += 1
        return {ch.perps[k].instrument.symbol: b for k, b in zip(ks, base, strict=True) if b}

    def _cover_deficit(self, i: int, symbol: str, deficit: int, taken: dict[int, int], ts: int) -> None:
        """Tier 2 then tier 3 for one symbol's share of an account's deficit."""
        ch, cfg = self.ch, self.config
        k = ch.perp_index[symbol]
        pay = self._fund_pay_limit(symbol, deficit, ts)
        self._fund_transfer(symbol, pay, i, ts, Kind.INSURANCE, "deficit covered by the fund")
        rest = deficit - pay
        if rest > 0 and k in taken:
            self.events.add(
                ts,
                Ev.ADL_TRIGGER,
                account=i,
                symbol=symbol,
                amount=rest,
                note=f"trigger {cfg.adl_trigger}, fund {self.fund_balance(symbol)}",
            )
            rest -= self._adl(i, k, rest, ts)
        if rest > 0 and cfg.fund_structure == "vault":
            pay = min(rest, max(0, ch.ledger.balance(self.liquidator, ch.q)))
            self._fund_transfer(symbol, pay, i, ts, Kind.INSURANCE, "deficit covered by the vault")
            rest -= pay
        if rest > 0:
            ch.ledger.transfer(ch.q, SOCIALIZED_LOSS, i, rest, Kind.BAD_DEBT, ts)
            self.events.add(ts, Ev.BAD_DEBT, account=i, symbol=symbol, amount=rest)

    def _adl(self, i: int, k: int, deficit: int, ts: int) -> int:
        """Close the liquidator's position in ``k`` against ranked opposite positions; returns deficit recovered."""
        ch, cfg, liq = self.ch, self.config, self.liquidator
        spec = ch.perps[k]
        sym = spec.instrument.symbol
        held = int(ch.accounts.size[k, liq])
        if held == 0:
            return 0
        unit = int(ch._units[k])
        mark = int(ch.marks[k])
        if cfg.adl_price == "bankruptcy":
            # the price at which closing |held| lots recovers the deficit from the counterparties
            shift = -(-deficit // (abs(held) * unit))
            price = mark + shift if held > 0 else max(1, mark - shift)
        elif cfg.adl_price == "previous_mark":
            price = int(self.prev_marks[k]) or mark
        else:
            price = mark
        cand = self.candidates(k, -1 if held > 0 else 1)
        cuts, scores = adl.allocate(cfg.adl_ranking, cand, abs(held), price_value=float(mark * unit))
        rank_order = adl.order(scores, cand.account)
        closed = 0
        for rank, j in enumerate(rank_order.tolist(), start=1):
            if cuts[j] == 0:
                continue
            acct = int(cand.account[j])
            self.venue.cancel_all(acct, sym)
            res = self._synthetic_fill(sym, acct, liq, -1 if held > 0 else 1, price, int(cuts[j]), ts)
            self.venue.refresh_reserved(acct)
            closed += int(cuts[j])
            self.events.add(
                ts,
                Ev.ADL_CLOSE,
                account=acct,
                symbol=sym,
                side=1 if held < 0 else -1,
                qty=int(cuts[j]),
                price=price,
                pnl=int(res["pnl_maker"][0]),
                score=float(scores[j]),
                rank=rank,
            )
        # what the counterparties paid over the mark is what ADL recovers for the deficit
        premium = (price - mark) * (1 if held > 0 else -1) * closed * unit
        recovered = max(0, min(deficit, premium))
        if recovered:
            ch.ledger.transfer(ch.q, liq, i, recovered, Kind.ADL, ts)
            self.swept[k] += recovered  # that part of the liquidator's realized PnL is already spent
        return recovered

    def candidates(self, k: int, side: int) -> adl.Candidates:
        """Positions on ``side`` (+1 long, -1 short) of instrument ``k`` that ADL may close."""
        ch = self.ch
        n = ch.accounts.n
        size = ch.accounts.size[k, :n]
        mask = (size > 0) if side > 0 else (size < 0)
        mask &= ch.accounts.state[:n] == AccountState.NORMAL
        for s in self.system_accounts:
            mask[s] = False
        ids = np.flatnonzero(mask)
        eq = ch.exact_margins(ids)[0] if len(ids) else np.zeros(0, np.int64)
        unit = int(ch._units[k])
        mark_notional = size[ids] * int(ch.marks[k]) * unit
        cost = ch.accounts.cost[k, ids]
        iso = ch.accounts.isolated[k, ids]
        iso_m = ch.accounts.iso_margin[k, ids]
        tiers = ch.perps[k].tiers
        pos_mm = np.array([tiers.maintenance(int(v)) for v in np.abs(mark_notional).tolist()], np.int64)
        upnl = mark_notional - cost
        wallet = np.where(iso, iso_m, eq - upnl)
        equity = np.where(iso, iso_m + upnl, eq)
        return adl.Candidates(ids.astype(np.int64), size[ids].copy(), cost.copy(), mark_notional, wallet, pos_mm, equity)

    def adl_indicator(self, symbol: str) -> dict[str, np.ndarray]:
        """Every open position's ADL score, rank, quantile (0-4) and lights (1-5), per side."""
        k = self.ch.perp_index[symbol]
        out: dict[str, list] = {"account": [], "side": [], "score": [], "rank": [], "quantile": [], "lights": []}
        for side in (1, -1):
            c = self.candidates(k, side)
            s = adl.scores(self.config.adl_ranking, c)
            if self.config.adl_ranking == "water_filling":
                s = np.where(c.equity > 0, np.abs(c.mark_notional) / np.maximum(c.equity, 1), np.inf)
            q = adl.quantiles(s, c.account)
            rank = np.empty(len(s), np.int64)
            rank[adl.order(s, c.account)] = np.arange(1, len(s) + 1)
            for name, vals in (
                ("account", c.account),
                ("side", np.full(len(s), side)),
                ("score", s),
                ("rank", rank),
                ("quantile", q),
                ("lights", adl.lights(q)),
            ):
                out[name].extend(vals.tolist())
        return {k_: np.array(v) for k_, v in out.items()}

    # --- unwinding --------------------------------------------------------------------------------
    def _unwind(self, ts: int, dt: float) -> None:
        """The liquidator works down what it took over, within its order and notional budget."""
        ch, cfg, liq = self.ch, self.config, self.liquidator
        self.order_credit = min(self.order_credit + cfg.liquidator_orders_per_s * dt, max(1.0, cfg.liquidator_orders_per_s))
        budget = cfg.liquidator_notional_per_s * dt if cfg.liquidator_notional_per_s else float("inf")
        for k, p in enumerate(ch.perps):
            q = int(ch.accounts.size[k, liq])
            if q == 0 or self.order_credit < 1:
                continue
            sym = p.instrument.symbol
            lot_value = int(ch.marks[k]) * int(ch._units[k])
            qty = abs(q) if budget == float("inf") else min(abs(q), int(budget // max(1, lot_value)))
            if qty <= 0:
                continue
            side = -1 if q > 0 else 1
            self.order_credit -= 1
            self.events.add(ts, Ev.UNWIND_ORDER, account=liq, symbol=sym, side=side, qty=qty)
            ack = self.venue.force_order(liq, sym, side, qty, None, ts=ts)
            for f in ack.fills.tolist():
                self.events.add(ts, Ev.UNWIND_FILL, account=liq, symbol=sym, side=side, qty=f[6], price=f[5])
                budget -= f[6] * f[5] * int(ch._units[k])
                self.fees_paid[k] += fee_on(f[6] * f[5] * int(ch._units[k]), p.instrument.taker_rate)
        for s in ch.spots:
            a = ch.ledger.asset(s.base)
            held = int(ch.ledger.balances[a, liq])
            lots = held // s.lot_units
            if s.quote != ch.settle_asset or lots <= 0 or self.order_credit < 1:
                continue
            self.order_credit -= 1
            self.events.add(ts, Ev.UNWIND_ORDER, account=liq, symbol=s.symbol, side=-1, qty=lots, note="collateral")
            ack = self.venue.force_order(liq, s.symbol, -1, lots, None, ts=ts)
            for f in ack.fills.tolist():
                self.events.add(ts, Ev.UNWIND_FILL, account=liq, symbol=s.symbol, side=-1, qty=f[6], price=f[5])

    def _sweep(self, ts: int) -> None:
        """Move the liquidator's settled gains and losses to the funds (vault profiles keep them)."""
        ch, liq = self.ch, self.liquidator
        if self.config.fund_structure == "vault":
            return
        for a, code in enumerate(ch.assets):  # repay debts taken over, from what the liquidator holds
            d = int(ch.accounts.debt[a, liq])
            if d > 0 and ch.ledger.balance(liq, a) > 0:
                ch.repay(liq, code, min(d, ch.ledger.balance(liq, a)), ts)
        for k, p in enumerate(ch.perps):
            if ch.accounts.size[k, liq] != 0:
                continue  # settle a symbol's result once its position is fully unwound
            delta = int(ch.accounts.realized[k, liq]) - int(self.swept[k]) - int(self.fees_paid[k])
            self.swept[k] += delta + int(self.fees_paid[k])
            self.fees_paid[k] = 0
            if delta:
                self._fund_transfer(p.instrument.symbol, -delta, liq, ts, Kind.INSURANCE, "liquidator result")
        rest = ch.ledger.balance(liq, ch.q) - int(ch.accounts.debt[ch.q, liq])
        if rest and not ch.accounts.size[:, liq].any():
            sym = ch.perps[0].instrument.symbol
            self._fund_transfer(sym, -rest, liq, ts, Kind.INSURANCE, "liquidator balance")
