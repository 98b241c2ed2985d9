"""The clearing house: who owns what, what it is worth, and what each account must hold.

It owns the ledger and the account table and is the only code that changes either. It
settles fills (perpetual PnL through a per-instrument settlement pool, spot deliveries,
fees to the fee pool), pays funding (exactly zero-sum through a per-instrument funding
pool), lends against collateral, and answers margin questions exactly, one account at a
time or for every account at once (:meth:`ClearingHouse.scan`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np

from cascadelab.book.codes import F_AGGRESSOR, F_MAKER_OWNER, F_PRICE, F_QTY, F_TAKER_OWNER
from cascadelab.clearing.accounts import AccountState, AccountTable, MarginMode
from cascadelab.clearing.arith import exact_sum, muldiv_ceil, muldiv_floor
from cascadelab.clearing.collateral import CollateralAsset
from cascadelab.clearing.ledger import FEE_POOL, OUTSIDE, Kind, Ledger, LedgerError
from cascadelab.clearing.margin import (
    MarginTiers,
    ScanResult,
    bankruptcy_price,
    liquidation_price,
    margin_exact,
    margin_prescreen,
)
from cascadelab.clearing.positions import apply_fills
from cascadelab.fees import fill_fees
from cascadelab.instruments import Instrument, InstrumentKind
from cascadelab.units import MONEY_SCALE, RATE_SCALE, decimal_to_units

FUNDING_SCALE = 10**8
"""Funding rates are integers in 1e-8 (Binance publishes them to 8 decimals)."""
INTEREST_SCALE = 10**12
"""Loan interest rates per accrual period are integers in 1e-12."""


class ClearingError(ValueError):
    """A request the clearing house refuses; the message says why."""


@dataclass(frozen=True)
class PerpSpec:
    """A perpetual as the clearing house sees it: instrument, margin tiers, position limit (lots)."""

    instrument: Instrument
    tiers: MarginTiers
    position_limit: int | None = None


@dataclass(frozen=True)
class LoanTerms:
    """Borrowing rules: borrow only while LTV stays at or below ``initial_ltv`` (millionths)."""

    initial_ltv: int = 650_000
    liquidation_ltv: int = 910_000


@dataclass
class PositionMargin:
    """Exact margin figures of one position."""

    instrument: str
    size: int
    notional: int
    upnl: int
    maintenance: int
    initial: int
    isolated: bool
    isolated_margin: int


@dataclass
class AccountMargin:
    """Exact margin figures of one account (money units of the settlement asset)."""

    account: int
    collateral: int  # haircut collateral minus debts, outside isolated margins
    equity: int  # cross margin balance: collateral + cross unrealized PnL
    maintenance: int
    initial: int
    reserved: int  # initial margin held for open orders
    positions: list[PositionMargin] = field(default_factory=list)

    @property
    def available(self) -> int:
        """What is free for new orders or withdrawal: equity - initial - reserved."""
        return self.equity - self.initial - self.reserved

    @property
    def margin_ratio(self) -> float:
        """Maintenance / equity (>= 1 means liquidation); inf when equity <= 0 with positions."""
        if self.equity <= 0:
            return float("inf") if self.maintenance > 0 else 0.0
        return self.maintenance / self.equity

    @property
    def below_maintenance(self) -> bool:
        """Cross margin balance below maintenance, or an isolated position below its own."""
        cross = self.maintenance > 0 and self.equity < self.maintenance
        return cross or any(p.isolated and p.isolated_margin + p.upnl < p.maintenance for p in self.positions)


class ClearingHouse:
    """Ledger + accounts + margin for a set of perpetuals, spot pairs and collateral assets."""

    def __init__(
        self,
        perps: list[PerpSpec],
        spots: list[Instrument],
        collateral: list[CollateralAsset],
        settle_asset: str = "USDT",
        loan_terms: LoanTerms | None = None,
        journal: bool = True,
        capacity: int = 16,
    ) -> None:
        self.perps = list(perps)
        self.spots = list(spots)
        self.collateral = {c.code: c for c in collateral}
        if settle_asset not in self.collateral:
            raise ClearingError(f"settlement asset {settle_asset!r} must be a collateral asset")
        for p in self.perps:
            if p.instrument.kind != InstrumentKind.PERPETUAL or p.instrument.quote != settle_asset:
                raise ClearingError(f"{p.instrument.symbol}: only {settle_asset}-margined perpetuals are supported")
        for s in self.spots:
            if s.kind != InstrumentKind.SPOT:
                raise ClearingError(f"{s.symbol}: not a spot instrument")
            if s.lot_units is None:
                raise ClearingError(f"{s.symbol}: field 'lot_size' must be a multiple of 1e-8 for exact delivery")
            for a in (s.base, s.quote):
                if a not in self.collateral:
                    raise ClearingError(f"{s.symbol}: asset {a!r} is not configured")
        self.assets = list(self.collateral)
        self.settle_asset = settle_asset
        self.q = self.assets.index(settle_asset)
        self.ledger = Ledger(self.assets, journal=journal)
        self.accounts = AccountTable(len(self.perps), len(self.assets), capacity)
        self.perp_index = {p.instrument.symbol: k for k, p in enumerate(self.perps)}
        self.spot_index = {s.symbol: j for j, s in enumerate(self.spots)}
        self.settlement = [self.ledger.system_account(f"settlement:{p.instrument.symbol}") for p in self.perps]
        self.funding_pool = [self.ledger.system_account(f"funding:{p.instrument.symbol}") for p in self.perps]
        self.lending_pool = {a: self.ledger.system_account(f"lending:{a}") for a in self.assets}
        self.loan_terms = loan_terms or LoanTerms()
        self.principal = dict.fromkeys(self.assets, 0)
        self.marks = np.zeros(len(self.perps), np.int64)
        self.asset_price = np.zeros(len(self.assets), np.int64)
        self.asset_price[self.q] = MONEY_SCALE
        self.ratio = np.array([self.collateral[a].ratio for a in self.assets], np.int64)
        self.reserved = np.zeros(capacity, np.int64)  # initial margin held by open orders (the venue sets it)
        caps = [p.tiers.arrays() for p in self.perps]
        t = max((len(c[0]) for c in caps), default=1)
        self._tiers = tuple(np.zeros((len(self.perps), t), np.int64) for _ in range(4))
        self._n_tiers = np.array([len(c[0]) for c in caps], np.int64)
        for k, arrs in enumerate(caps):
            for dst, src in zip(self._tiers, arrs, strict=True):
                dst[k, : len(src)] = src
                dst[k, len(src) :] = src[-1]
        self._units = np.array([p.instrument.unit_notional for p in self.perps], np.int64)

    # --- accounts and money in/out -------------------------------------------------------
    def open_accounts(self, n: int) -> np.ndarray:
        """Open ``n`` accounts (ids aligned in the ledger and the account table)."""
        ids = self.ledger.add_accounts(n)
        self.accounts.add(n)
        if len(self.reserved) < self.accounts.n:
            grown = np.zeros(self.accounts.state.shape[0], np.int64)
            grown[: len(self.reserved)] = self.reserved
            self.reserved = grown
        return ids

    def _acct(self, i: int) -> int:
        if not 0 <= int(i) < self.accounts.n:
            raise ClearingError(f"unknown account {i}")
        return int(i)

    def deposit(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Credit ``amount`` money units of ``asset`` from outside the venue."""
        self.ledger.deposit(self._acct(i), asset, amount, ts)

    def withdraw(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Pay out to outside, only if the account stays above every requirement."""
        i = self._acct(i)
        if amount <= 0:
            raise ClearingError("withdrawal amount must be > 0")
        if self.accounts.state[i] != AccountState.NORMAL:
            raise ClearingError(f"account {i} is {AccountState(self.accounts.state[i]).name}: withdrawals are blocked")
        a = self.ledger.asset(asset)
        free = self.ledger.balance(i, a) - (self._iso_total(i) if a == self.q else 0)
        if amount > free:
            raise ClearingError(f"account {i}: withdrawal of {amount} {asset} exceeds the free balance {free}")
        after = self.account_margin(i, balance_delta=(a, -amount))
        if after.available < 0:
            raise ClearingError(f"account {i}: withdrawal would leave available margin {after.available} < 0")
        if self.ltv(i, balance_delta=(a, -amount)) > self.loan_terms.initial_ltv:
            raise ClearingError(f"account {i}: withdrawal would lift the loan-to-value above the initial LTV")
        self.ledger.withdraw(i, asset, amount, ts)

    def _iso_total(self, i: int) -> int:
        return int(self.accounts.iso_margin[:, i].sum())

    def set_leverage(self, i: int, symbol: str, leverage: int) -> None:
        """Set the leverage of one position (at most the tier maximum for its notional)."""
        i, k = self._acct(i), self._perp(symbol)
        notional = abs(int(self.accounts.size[k, i]) * int(self.marks[k]) * int(self._units[k]))
        tiers = self.perps[k].tiers
        cap = tiers.max_leverage[tiers.tier(notional)]
        if not 1 <= leverage <= cap:
            raise ClearingError(f"{symbol}: leverage must be within 1..{cap} at a notional of {notional}")
        self.accounts.leverage[k, i] = leverage

    def set_margin_mode(self, i: int, symbol: str, mode: MarginMode) -> None:
        """Switch a flat position between cross and isolated."""
        i, k = self._acct(i), self._perp(symbol)
        if self.accounts.size[k, i] != 0:
            raise ClearingError(f"{symbol}: margin mode can change only while the position is flat")
        self.accounts.isolated[k, i] = mode == MarginMode.ISOLATED
        if mode == MarginMode.CROSS:
            self.accounts.iso_margin[k, i] = 0

    def add_isolated_margin(self, i: int, symbol: str, amount: int) -> None:
        """Move margin from the cross wallet into an isolated position (negative: take it out)."""
        i, k = self._acct(i), self._perp(symbol)
        if not self.accounts.isolated[k, i]:
            raise ClearingError(f"{symbol}: position of account {i} is not isolated")
        if amount > 0 and self.account_margin(i).available < amount:
            raise ClearingError(f"account {i}: not enough available margin to add {amount}")
        if amount < 0:
            pm = next(p for p in self.account_margin(i).positions if p.instrument == symbol)
            if pm.isolated_margin + amount + min(pm.upnl, 0) < pm.initial:
                raise ClearingError(f"{symbol}: removing {-amount} would leave less than the initial margin")
        self.accounts.iso_margin[k, i] += amount

    def _perp(self, symbol: str) -> int:
        try:
            return self.perp_index[symbol]
        except KeyError:
            raise ClearingError(f"unknown perpetual {symbol!r}; known: {list(self.perp_index)}") from None

    # --- settlement of fills -------------------------------------------------------------
    def _fees(self, payer: np.ndarray, fee: np.ndarray, asset: int, ts: int) -> None:
        """Positive fees from traders to the fee pool; negative (rebates) from the pool to traders."""
        pos = fee > 0
        self.ledger.transfer_many(asset, payer[pos], np.full(int(pos.sum()), FEE_POOL), fee[pos], Kind.TRADE_FEE, ts)
        neg = fee < 0
        self.ledger.transfer_many(asset, np.full(int(neg.sum()), FEE_POOL), payer[neg], -fee[neg], Kind.TRADE_FEE, ts)

    def settle_perp_fills(
        self,
        symbol: str,
        fills: np.ndarray,
        ts: int = 0,
        charge_fees: bool = True,
        maker_fee: np.ndarray | None = None,
        taker_fee: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Book perpetual fills: positions, realized PnL via the settlement pool, fees.

        ``maker_fee``/``taker_fee`` override the instrument's fees per fill (e.g. zero for ADL).
        Returns per-fill arrays (notional, fees, realized PnL of each side).
        """
        k = self._perp(symbol)
        inst = self.perps[k].instrument
        if len(fills) == 0:
            z = np.zeros(0, np.int64)
            return {"notional": z, "maker_fee": z, "taker_fee": z, "pnl_maker": z, "pnl_taker": z}
        maker = np.ascontiguousarray(fills[:, F_MAKER_OWNER])
        taker = np.ascontiguousarray(fills[:, F_TAKER_OWNER])
        for ids in (maker, taker):
            if ids.min() < 0 or ids.max() >= self.accounts.n:
                raise ClearingError(f"{symbol}: fill names an unknown account")
        notional, mf, tf = fill_fees(inst, fills)
        if not charge_fees:
            mf = np.zeros_like(mf)
            tf = np.zeros_like(tf)
        if maker_fee is not None:
            mf = maker_fee
        if taker_fee is not None:
            tf = taker_fee
        n = len(fills)
        pnl_m, pnl_t, before_m, before_t = (np.zeros(n, np.int64) for _ in range(4))
        acc = self.accounts
        apply_fills(
            acc.size[k],
            acc.cost[k],
            acc.realized[k],
            maker,
            taker,
            np.ascontiguousarray(fills[:, F_AGGRESSOR]),
            np.ascontiguousarray(fills[:, F_PRICE]),
            np.ascontiguousarray(fills[:, F_QTY]),
            inst.unit_notional,
            pnl_m,
            pnl_t,
            before_m,
            before_t,
        )
        pool = self.settlement[k]
        for who, pnl in ((maker, pnl_m), (taker, pnl_t)):
            gain = pnl > 0
            self.ledger.transfer_many(self.q, np.full(int(gain.sum()), pool), who[gain], pnl[gain], Kind.REALIZED_PNL, ts)
            loss = pnl < 0
            self.ledger.transfer_many(self.q, who[loss], np.full(int(loss.sum()), pool), -pnl[loss], Kind.REALIZED_PNL, ts)
        self._fees(maker, mf, self.q, ts)
        self._fees(taker, tf, self.q, ts)
        iso = acc.isolated[k]
        if iso[maker].any() or iso[taker].any():
            self._isolated_after_fills(k, fills, maker, taker, before_m, before_t, pnl_m, pnl_t, mf, tf)
        return {"notional": notional, "maker_fee": mf, "taker_fee": tf, "pnl_maker": pnl_m, "pnl_taker": pnl_t}

    def _isolated_after_fills(self, k, fills, maker, taker, before_m, before_t, pnl_m, pnl_t, mf, tf) -> None:
        """Isolated positions: allocate margin on increase, release on decrease, book PnL and fees."""
        acc = self.accounts
        unit = int(self._units[k])
        for j in range(len(fills)):
            price = int(fills[j, F_PRICE])
            dq = int(fills[j, F_AGGRESSOR]) * int(fills[j, F_QTY])
            for i, d, before, pnl, fee in (
                (int(maker[j]), -dq, int(before_m[j]), int(pnl_m[j]), int(mf[j])),
                (int(taker[j]), dq, int(before_t[j]), int(pnl_t[j]), int(tf[j])),
            ):
                if not acc.isolated[k, i]:
                    continue
                after = before + d
                m = int(acc.iso_margin[k, i]) + pnl - fee
                if before != 0 and (before > 0) != (d > 0):  # reduced (maybe flipped)
                    closed = min(abs(d), abs(before))
                    release = m if closed == abs(before) else m * closed // abs(before)
                    m -= release
                opened = abs(after) - abs(before) if (after > 0) == (before > 0) or before == 0 else abs(after)
                if opened > 0 and after != 0:
                    m += -((-opened * price * unit) // int(acc.leverage[k, i]))
                acc.iso_margin[k, i] = m

    def settle_spot_fills(self, symbol: str, fills: np.ndarray, ts: int = 0) -> None:
        """Deliver spot fills: quote from buyer to seller, base from seller to buyer, fees in quote."""
        if len(fills) == 0:
            return
        s = self.spots[self.spot_index[symbol]]
        notional, mf, tf = fill_fees(s, fills)
        buy = fills[:, F_AGGRESSOR] == 1
        maker = fills[:, F_MAKER_OWNER]
        taker = fills[:, F_TAKER_OWNER]
        buyer = np.where(buy, taker, maker)
        seller = np.where(buy, maker, taker)
        qa, ba = self.ledger.asset(s.quote), self.ledger.asset(s.base)
        self.ledger.transfer_many(qa, buyer, seller, notional, Kind.SPOT_TRADE, ts)
        self.ledger.transfer_many(ba, seller, buyer, fills[:, F_QTY] * s.lot_units, Kind.SPOT_TRADE, ts)
        self._fees(maker, mf, qa, ts)
        self._fees(taker, tf, qa, ts)

    # --- funding ------------------------------------------------------------------------
    def pay_funding(self, symbol: str, rate: int, mark_ticks: int, ts: int = 0) -> np.ndarray:
        """Pay funding at ``rate`` (1e-8 units; > 0: longs pay shorts) on notional at ``mark_ticks``.

        Payers pay their exact amount rounded up into the funding pool; the pool pays out
        exactly what it collected to receivers, in proportion to their exact amounts
        (largest remainder, ties to the lower account id), so payments sum to zero.
        Returns the signed payment per account (positive = paid).
        """
        k = self._perp(symbol)
        acc = self.accounts
        n = acc.n
        size = acc.size[k, :n]
        notional = np.abs(size) * int(mark_ticks) * int(self._units[k])
        payer_mask = (size > 0) if rate > 0 else (size < 0)
        recv_mask = (size < 0) if rate > 0 else (size > 0)
        r = abs(int(rate))
        out = np.zeros(n, np.int64)
        if r == 0 or not payer_mask.any():
            return out
        pay = _muldiv_vec(notional, r, FUNDING_SCALE, ceil=True)
        pay[~payer_mask] = 0
        recv_floor = _muldiv_vec(notional, r, FUNDING_SCALE, ceil=False)
        recv_floor[~recv_mask] = 0
        collected = exact_sum(pay)
        ids = np.flatnonzero(recv_mask)
        residual = collected - exact_sum(recv_floor)
        if len(ids):
            remainder = ((notional[ids] % FUNDING_SCALE) * (r % FUNDING_SCALE)) % FUNDING_SCALE
            each, extra = divmod(residual, len(ids))
            recv = recv_floor.copy()
            recv[ids] += each
            order = np.lexsort((ids, -remainder))
            recv[ids[order[:extra]]] += 1
        else:  # nobody on the other side (cannot happen with matched trades): refund nothing, keep it exact
            recv = np.zeros(n, np.int64)
            pay[:] = 0
        pool = self.funding_pool[k]
        payers = np.flatnonzero(pay)
        self.ledger.transfer_many(self.q, payers, np.full(len(payers), pool), pay[payers], Kind.FUNDING, ts)
        receivers = np.flatnonzero(recv)
        self.ledger.transfer_many(self.q, np.full(len(receivers), pool), receivers, recv[receivers], Kind.FUNDING, ts)
        out = pay - recv
        iso = acc.isolated[k, :n]
        acc.iso_margin[k, :n][iso] -= out[iso]
        return out

    # --- loans ----------------------------------------------------------------------------
    def seed_lending_pool(self, asset: str, amount: int, ts: int = 0) -> None:
        """Lenders outside the venue put ``amount`` of ``asset`` into its lending pool."""
        self.ledger.transfer(asset, OUTSIDE, self.lending_pool[asset], amount, Kind.FUND_SEED, ts)

    def borrow(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Borrow from the lending pool while the loan-to-value stays within the initial LTV."""
        i = self._acct(i)
        a = self.ledger.asset(asset)
        if amount <= 0:
            raise ClearingError("borrow amount must be > 0")
        if self.accounts.state[i] != AccountState.NORMAL:
            raise ClearingError(f"account {i} is not in normal state: borrowing is blocked")
        pool = self.lending_pool[asset]
        if self.ledger.balance(pool, a) < amount:
            raise ClearingError(f"{asset} lending pool holds only {self.ledger.balance(pool, a)}")
        ltv = self.ltv(i, balance_delta=(a, amount), debt_delta=(a, amount))
        if ltv > self.loan_terms.initial_ltv:
            raise ClearingError(
                f"account {i}: loan-to-value would be {ltv / RATE_SCALE:.4f} > initial LTV "
                f"{self.loan_terms.initial_ltv / RATE_SCALE:.4f}"
            )
        self.ledger.transfer(a, pool, i, amount, Kind.LOAN, ts)
        self.accounts.debt[a, i] += amount
        self.principal[asset] += amount

    def repay(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Repay up to the outstanding debt from the account's balance."""
        i = self._acct(i)
        a = self.ledger.asset(asset)
        amount = min(int(amount), int(self.accounts.debt[a, i]))
        if amount <= 0:
            raise ClearingError(f"account {i} owes no {asset}")
        if self.ledger.balance(i, a) < amount:
            raise ClearingError(f"account {i}: balance too small to repay {amount} {asset}")
        self.ledger.transfer(a, i, self.lending_pool[asset], amount, Kind.REPAY, ts)
        self.accounts.debt[a, i] -= amount
        self.principal[asset] -= amount

    def accrue_interest(self, asset: str, rate: str | Decimal, ts: int = 0) -> int:
        """Charge one period's interest (``rate`` per period) on every loan of ``asset``; returns the total."""
        a = self.ledger.asset(asset)
        r = decimal_to_units(rate, Decimal(1) / INTEREST_SCALE, f"interest rate of {asset}")
        debt = self.accounts.debt[a, : self.accounts.n]
        interest = _muldiv_vec(debt, r, INTEREST_SCALE, ceil=True)
        who = np.flatnonzero(interest)
        self.ledger.transfer_many(a, who, np.full(len(who), self.lending_pool[asset]), interest[who], Kind.INTEREST, ts)
        return exact_sum(interest)

    def ltv(self, i: int, balance_delta: tuple[int, int] | None = None, debt_delta: tuple[int, int] | None = None) -> int:
        """Loan-to-value in millionths: debt value / haircut collateral value (inf-like if no collateral)."""
        bal = self.ledger.balances[:, i].astype(np.int64).copy()
        debt = self.accounts.debt[:, i].copy()
        if balance_delta:
            bal[balance_delta[0]] += balance_delta[1]
        if debt_delta:
            debt[debt_delta[0]] += debt_delta[1]
        owed = sum(muldiv_ceil(int(d), int(p), MONEY_SCALE) for d, p in zip(debt, self.asset_price, strict=True) if d)
        if owed == 0:
            return 0
        coll = 0
        for a, b in enumerate(bal.tolist()):
            if b > 0:
                coll += muldiv_floor(muldiv_floor(b, int(self.asset_price[a]), MONEY_SCALE), int(self.ratio[a]), RATE_SCALE)
        if coll <= 0:
            return np.iinfo(np.int64).max
        return owed * RATE_SCALE // coll

    def ltv_breaches(self, limit: int | None = None) -> np.ndarray:
        """Accounts whose loan-to-value exceeds ``limit`` (default: the liquidation LTV), exactly.

        A float pass over every indebted account keeps only those within a 1e-9 band of the
        limit or beyond it; the exact :meth:`ltv` decides for those.
        """
        limit = self.loan_terms.liquidation_ltv if limit is None else limit
        n = self.accounts.n
        lent = [a for a, code in enumerate(self.assets) if self.principal[code] > 0]
        if not lent:
            return np.zeros(0, np.int64)
        ids = np.flatnonzero(self.accounts.debt[lent, :n].any(axis=0))
        if len(ids) == 0:
            return ids
        price = self.asset_price.astype(np.float64) / MONEY_SCALE
        owed = (self.accounts.debt[:, ids] * price[:, None]).sum(axis=0)
        bal = np.maximum(self.ledger.balances[:, ids], 0)
        coll = (bal * (price * self.ratio / RATE_SCALE)[:, None]).sum(axis=0)
        suspect = owed * RATE_SCALE >= limit * coll * (1 - 1e-9) - 1.0
        return np.array([i for i in ids[suspect].tolist() if self.ltv(i) > limit], np.int64)

    # --- prices and margin ---------------------------------------------------------------
    def set_mark(self, symbol: str, ticks: int) -> None:
        """Set the mark price (ticks) used for margin."""
        self.marks[self._perp(symbol)] = int(ticks)

    def set_asset_price(self, asset: str, price: Fraction | int) -> None:
        """Set an asset's collateral price (a Fraction of quote per coin, or integer money units)."""
        a = self.ledger.asset(asset)
        if isinstance(price, Fraction):
            price = (price.numerator * MONEY_SCALE) // price.denominator
        if price < 0:
            raise ClearingError(f"{asset}: price must be >= 0")
        self.asset_price[a] = int(price)

    def _scan_args(self) -> tuple:
        n = self.accounts.n
        acc = self.accounts
        caps, mmr, cum, lev = self._tiers
        return (
            acc.size[:, :n],
            acc.cost[:, :n],
            self.marks,
            self._units,
            caps,
            mmr,
            cum,
            lev,
            self._n_tiers,
            acc.leverage[:, :n],
            acc.isolated[:, :n],
            acc.iso_margin[:, :n],
            self.ledger.balances[:, :n],
            acc.debt[:, :n],
            self.asset_price,
            self.ratio,
            self.q,
        )

    def exact_margins(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact (equity, maintenance, initial, isolated breach) of the accounts ``ids``."""
        ids = np.ascontiguousarray(ids, np.int64)
        out = [np.zeros(len(ids), np.int64) for _ in range(3)] + [np.zeros(len(ids), np.bool_)]
        margin_exact(ids, *self._scan_args(), *out)
        return out[0], out[1], out[2], out[3]

    def scan(self) -> ScanResult:
        """Margin of every account at the current prices: a float pre-screen of all, exact figures for suspects."""
        n = self.accounts.n
        size, cost, marks, units, _caps, mmr, cum, _lev, _n_tiers, _leverage, iso, iso_m, bal, debt, price, ratio, q = (
            self._scan_args()
        )
        eq, mm, suspect = np.zeros(n), np.zeros(n), np.zeros(n, np.bool_)
        lent = np.array([a for a, code in enumerate(self.assets) if self.principal[code] > 0], np.int64)
        t0 = time.perf_counter()
        margin_prescreen(size, cost, marks, units, mmr, cum, iso, iso_m, bal, debt, lent, price, ratio, q, eq, mm, suspect)
        elapsed = time.perf_counter() - t0
        ids = np.flatnonzero(suspect)
        return ScanResult(eq, mm, ids, *self.exact_margins(ids), n, elapsed)

    def account_margin(self, i: int, balance_delta: tuple[int, int] | None = None) -> AccountMargin:
        """Exact margin figures of one account, optionally as if a balance changed by a delta."""
        i = self._acct(i)
        acc = self.accounts
        collateral = 0
        iso_total = self._iso_total(i)
        for a in range(len(self.assets)):
            b = int(self.ledger.balances[a, i])
            if balance_delta and balance_delta[0] == a:
                b += balance_delta[1]
            if a == self.q:
                b -= iso_total
            if b:
                v = muldiv_floor(b, int(self.asset_price[a]), MONEY_SCALE)
                collateral += muldiv_floor(v, int(self.ratio[a]), RATE_SCALE) if v > 0 else v
            d = int(acc.debt[a, i])
            if d:
                collateral -= muldiv_ceil(d, int(self.asset_price[a]), MONEY_SCALE)
        equity, mm, im = collateral, 0, 0
        positions = []
        for k, p in enumerate(self.perps):
            q = int(acc.size[k, i])
            if q == 0:
                continue
            value = q * int(self.marks[k]) * int(self._units[k])
            upnl = value - int(acc.cost[k, i])
            notional = abs(value)
            m = p.tiers.maintenance(notional)
            init = p.tiers.initial(notional, int(acc.leverage[k, i]))
            iso = bool(acc.isolated[k, i])
            positions.append(PositionMargin(p.instrument.symbol, q, notional, upnl, m, init, iso, int(acc.iso_margin[k, i])))
            if not iso:
                equity += upnl
                mm += m
                im += init
        return AccountMargin(i, collateral, equity, mm, im, int(self.reserved[i]), positions)

    def position_prices(self, i: int, symbol: str) -> tuple[Fraction, Fraction]:
        """(liquidation price, bankruptcy price) of one position, other prices held fixed (Binance formulas).

        Cross: the wallet is the account's cross collateral, with the other cross positions'
        maintenance and unrealized PnL; isolated: the wallet is the isolated margin alone.
        Prices are exact fractions of the quote asset.
        """
        i, k = self._acct(i), self._perp(symbol)
        am = self.account_margin(i)
        pos = next((p for p in am.positions if p.instrument == symbol), None)
        if pos is None:
            raise ClearingError(f"account {i} has no {symbol} position")
        inst = self.perps[k].instrument
        tiers = self.perps[k].tiers
        t = tiers.tier(pos.notional)
        size = abs(Fraction(pos.size) * Fraction(inst.lot_size))
        side = 1 if pos.size > 0 else -1
        entry = Fraction(int(self.accounts.cost[k, i]), MONEY_SCALE) / (side * size)
        if pos.isolated:
            wallet, tmm, upnl = Fraction(pos.isolated_margin, MONEY_SCALE), Fraction(0), Fraction(0)
        else:
            others = [p for p in am.positions if not p.isolated and p.instrument != symbol]
            wallet = Fraction(am.collateral, MONEY_SCALE)
            tmm = Fraction(sum(p.maintenance for p in others), MONEY_SCALE)
            upnl = Fraction(sum(p.upnl for p in others), MONEY_SCALE)
        cum = Fraction(tiers.cum[t], MONEY_SCALE)
        mmr = Fraction(tiers.mmr[t], RATE_SCALE)
        return (
            liquidation_price(wallet, tmm, upnl, cum, side, size, entry, mmr),
            bankruptcy_price(wallet, upnl, side, size, entry),
        )

    # --- conservation ----------------------------------------------------------------------
    def check(self, replay_journal: bool = False) -> None:
        """Prove the books balance: ledger conservation, settlement pools = -sum(cost), funding pools empty."""
        from cascadelab.clearing.ledger import ConservationError

        self.ledger.check(replay_journal)
        n = self.accounts.n
        for k, p in enumerate(self.perps):
            pool = self.ledger.balance(self.settlement[k], self.q)
            open_cost = exact_sum(self.accounts.cost[k, :n])
            if pool != -open_cost:
                raise ConservationError(f"{p.instrument.symbol}: settlement pool {pool} != -open cost {-open_cost}")
            if exact_sum(self.accounts.size[k, :n]) != 0:
                raise ConservationError(f"{p.instrument.symbol}: long and short open interest differ")
            if self.ledger.balance(self.funding_pool[k], self.q) != 0:
                raise ConservationError(f"{p.instrument.symbol}: funding pool did not pay out exactly")
        for a, code in enumerate(self.assets):
            if exact_sum(self.accounts.debt[a, :n]) != self.principal[code]:
                raise ConservationError(f"{code}: debts {exact_sum(self.accounts.debt[a, :n])} != principal lent")


def _muldiv_vec(a: np.ndarray, b: int, d: int, ceil: bool) -> np.ndarray:
    """Elementwise floor/ceil(a * b / d) for non-negative int64 ``a`` without overflow."""
    a = np.asarray(a, np.int64)
    b1, b0 = divmod(int(b), int(d))
    q, r = np.divmod(a, d)
    num = r * b0
    if ceil:
        return a * b1 + q * b0 + (-((-num) // d))
    return a * b1 + q * b0 + num // d


__all__ = ["AccountMargin", "ClearingError", "ClearingHouse", "LedgerError", "LoanTerms", "PerpSpec", "PositionMargin"]
