"""The clearing house: who owns what, what it is worth, and what each account must hold.

A facade over the jobs that share one :class:`~cascadelab.clearing.core.ClearingCore`:

* accounts and ledger (this module): opening accounts, deposits and withdrawals,
  leverage, margin mode, isolated margin, and the exact conservation check;
* :class:`~cascadelab.clearing.settlement.Settlement`: fills into positions, PnL and fees;
* :class:`~cascadelab.clearing.funding.Funding`: zero-sum funding payments;
* :class:`~cascadelab.clearing.lending.Lending`: loans, interest and loan-to-value;
* :class:`~cascadelab.clearing.scan.Margins`: exact margin figures and the scan.

It is the only code that changes the ledger and the account table, apart from the
venue's compiled order entry, which writes the same arrays through the same routines.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np

from cascadelab.arith import exact_sum
from cascadelab.clearing.accounts import AccountState, MarginMode
from cascadelab.clearing.collateral import CollateralAsset
from cascadelab.clearing.core import ClearingCore, ClearingError, LoanTerms, PerpSpec, whole, whole_array
from cascadelab.clearing.funding import Funding
from cascadelab.clearing.ledger import OUTSIDE, ConservationError
from cascadelab.clearing.lending import Lending
from cascadelab.clearing.margin import ScanResult
from cascadelab.clearing.risk import IncrementalRisk
from cascadelab.clearing.scan import AccountMargin, Margins
from cascadelab.clearing.settlement import Settlement, settle_auction
from cascadelab.instruments import Instrument
from cascadelab.records import FILL, FillKind, Kind, Reject
from cascadelab.units import MONEY_SCALE


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
        self.core = ClearingCore.build(perps, spots, collateral, settle_asset, loan_terms, journal, capacity)
        self.settlement = Settlement(self.core)
        self.funding = Funding(self.core)
        self.lending = Lending(self.core)
        self.margins = Margins(self.core, self.lent_assets)
        self.risk = IncrementalRisk(self.core)

    # --- what the core holds ---------------------------------------------------------------
    @property
    def ledger(self):
        """The double-entry ledger."""
        return self.core.ledger

    @property
    def accounts(self):
        """The account table."""
        return self.core.accounts

    @property
    def perps(self) -> list[PerpSpec]:
        """Perpetuals, in index order."""
        return self.core.perps

    @property
    def spots(self) -> list[Instrument]:
        """Spot pairs, in index order."""
        return self.core.spots

    @property
    def collateral(self) -> dict[str, CollateralAsset]:
        """Collateral assets by code."""
        return self.core.collateral

    @property
    def assets(self) -> list[str]:
        """Asset codes in ledger order."""
        return self.core.assets

    @property
    def q(self) -> int:
        """Index of the settlement asset."""
        return self.core.q

    @property
    def settle_asset(self) -> str:
        """Code of the settlement asset."""
        return self.core.settle_asset

    @property
    def perp_index(self) -> dict[str, int]:
        """Perpetual index by symbol."""
        return self.core.perp_index

    @property
    def spot_index(self) -> dict[str, int]:
        """Spot pair index by symbol."""
        return self.core.spot_index

    @property
    def loan_terms(self) -> LoanTerms:
        """Borrowing limits."""
        return self.core.loan_terms

    @property
    def marks(self) -> np.ndarray:
        """Mark price per perpetual (ticks)."""
        return self.core.marks

    @property
    def asset_price(self) -> np.ndarray:
        """Collateral price per asset (money units per coin)."""
        return self.core.asset_price

    @property
    def ratio(self) -> np.ndarray:
        """Collateral ratio per asset (millionths)."""
        return self.core.ratio

    @property
    def units(self) -> np.ndarray:
        """Money per tick-lot of each perpetual."""
        return self.core.units

    @property
    def principal(self) -> dict[str, int]:
        """Principal lent per asset (debts sum to this)."""
        return self.lending.principal

    def lent_assets(self) -> list[int]:
        """Indices of the assets with loans outstanding."""
        return [a for a, code in enumerate(self.assets) if self.lending.principal[code] > 0]

    # --- accounts and money in/out -------------------------------------------------------
    def open_accounts(self, n: int) -> np.ndarray:
        """Open ``n`` accounts (ids aligned in the ledger and the account table)."""
        if n < 0:
            raise ClearingError(f"cannot open {n} accounts")
        ids = self.ledger.add_accounts(n)
        self.accounts.add(n)
        return ids

    def deposit(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Credit ``amount`` (> 0) money units of ``asset`` from outside the venue."""
        i = self.core.acct(i)
        amount = whole("deposit amount", amount, 1)
        if int(self.ledger.balances[self.ledger.asset(asset), i]) + int(amount) > np.iinfo(np.int64).max:
            raise ClearingError(
                f"account {i}: a deposit of {amount} {asset} would exceed the largest balance an account can hold"
            )
        self.ledger.deposit(i, asset, int(amount), ts)

    def deposit_many(self, ids: np.ndarray, asset: str, amounts: np.ndarray, ts: int = 0) -> None:
        """Vectorized :meth:`deposit`: account ``ids[j]`` receives ``amounts[j]`` (> 0) of ``asset`` from outside."""
        ids = self._trader_ids(ids, "ids")
        amounts = whole_array("deposit amounts", amounts)
        if amounts.shape != ids.shape:
            raise ClearingError(f"deposit_many: {len(ids)} accounts but {len(amounts)} amounts")
        if len(amounts) and int(amounts.min()) <= 0:
            raise ClearingError(f"deposit amounts must be > 0, got {int(amounts.min())}")
        a = self.ledger.asset(asset)
        if len(np.unique(ids)) != len(ids):
            raise ClearingError("deposit_many: an account appears twice; sum its deposits first")
        room = np.iinfo(np.int64).max - self.ledger.balances[a, ids]
        if (amounts > room).any():
            j = int(np.flatnonzero(amounts > room)[0])
            raise ClearingError(f"account {int(ids[j])}: a deposit of {int(amounts[j])} {asset} would exceed the largest balance")
        self.ledger.transfer_many(asset, np.full(len(ids), OUTSIDE, np.int64), ids, amounts, Kind.DEPOSIT, ts)

    def configure_positions(self, symbol: str, ids: np.ndarray, leverage: np.ndarray | int, isolated: np.ndarray | bool) -> None:
        """Set leverage and margin mode of many flat positions at once (the vectorized setters).

        ``leverage`` and ``isolated`` are one value for all or one per account (integers and
        booleans only); each account appears once.
        """
        k = self.core.perp(symbol)
        ids = self._trader_ids(ids, "ids")
        if len(np.unique(ids)) != len(ids):
            raise ClearingError("configure_positions: an account appears twice")
        lev = whole_array("leverage", np.atleast_1d(leverage))
        iso = np.atleast_1d(np.asarray(isolated))
        if iso.dtype != np.bool_:
            raise ClearingError(f"configure_positions: isolated must be booleans, got dtype {iso.dtype}")
        for name, arr in (("leverage", lev), ("isolated", iso)):
            if len(arr) not in (1, len(ids)):
                raise ClearingError(f"configure_positions: {len(ids)} accounts but {len(arr)} {name} values")
        lev = np.broadcast_to(lev, ids.shape)
        iso = np.broadcast_to(iso, ids.shape)
        if (self.accounts.size[k, ids] != 0).any():
            raise ClearingError(f"{symbol}: leverage and margin mode can be set in bulk only on flat positions")
        cap = int(self.perps[k].tiers.max_leverage[0])
        if len(lev) and (int(lev.min()) < 1 or int(lev.max()) > cap):
            raise ClearingError(f"{symbol}: leverage must be within 1..{cap}, got {int(lev.min())}..{int(lev.max())}")
        self.accounts.leverage[k, ids] = lev
        self.accounts.isolated[k, ids] = iso
        self.accounts.iso_margin[k, ids] = 0
        self.ledger.note(ids)

    def leverage_cap(self, symbol: str, notional: int = 0) -> int:
        """The highest leverage the margin tiers of ``symbol`` allow for a position of ``notional`` money units."""
        tiers = self.perps[self.core.perp(symbol)].tiers
        return int(tiers.max_leverage[tiers.tier(int(notional))])

    def opening_auction(self, symbol: str, ids: np.ndarray, sizes: np.ndarray, price: int, ts: int = 0) -> np.ndarray:
        """Open positions for many accounts at once by one crossing at ``price`` ticks; returns the FILL records.

        A documented, ledger-exact stand-in for the order flow that built a market's open
        interest before a run starts: ``sizes`` (signed lots, one per account, summing to zero)
        are crossed at one price, buyers against sellers in account order, each pair a fill
        settled exactly as a trade (cost basis, settlement pool, isolated margin) but with no
        fee (kind ``FillKind.AUCTION``). Margin is not checked here: the caller sizes positions
        within its accounts' leverage; :meth:`exact_margins` tells it where each stands.
        """
        k = self.core.perp(symbol)
        ids = self._trader_ids(ids, "ids")
        q = whole_array("opening_auction sizes", sizes)
        price = whole("opening_auction price", price)
        if q.shape != ids.shape:
            raise ClearingError(f"opening_auction: {len(ids)} accounts but {len(q)} sizes")
        if len(np.unique(ids)) != len(ids):
            raise ClearingError("opening_auction: an account appears twice")
        if exact_sum(q) != 0:
            raise ClearingError(f"opening_auction: sizes must sum to zero (bought = sold), got {exact_sum(q)}")
        if int(price) <= 0:
            raise ClearingError(f"opening_auction: price must be > 0 ticks, got {price}")
        if (self.accounts.state[ids] != AccountState.NORMAL).any():
            raise ClearingError("opening_auction: every account must be NORMAL")
        unit = int(self.units[k])
        if len(q) and int(np.abs(q).max()) > np.iinfo(np.int64).max // (int(price) * unit):
            raise ClearingError("opening_auction: a position's notional would overflow int64 money units")
        order = np.argsort(ids, kind="stable")
        ids, q = ids[order], q[order]
        buy, sell = q > 0, q < 0
        nb, ns = int(buy.sum()), int(sell.sum())
        out_b, out_s, out_q = (np.zeros(nb + ns, np.int64) for _ in range(3))
        self.ledger.ensure_journal_room(4 * (nb + ns) + 4)
        n = settle_auction(self.ledger.arrays, self.accounts.arrays, unit, k, int(self.settlement.pools[k]), self.q,
                           np.int64(ts), ids[buy], q[buy], ids[sell], -q[sell], int(price), out_b, out_s, out_q)  # fmt: skip
        fills = np.zeros(n, FILL)
        fills["ts"] = ts
        fills["maker_account"] = out_s[:n]
        fills["taker_account"] = out_b[:n]
        fills["price"] = price
        fills["qty"] = out_q[:n]
        fills["instrument"] = k
        fills["aggressor"] = 1
        fills["kind"] = FillKind.AUCTION
        return fills

    def _trader_ids(self, ids: np.ndarray, name: str) -> np.ndarray:
        ids = np.ascontiguousarray(np.asarray(ids).reshape(-1))
        if ids.dtype.kind not in "iu":
            raise ClearingError(f"{name}: account ids must be integers, got {ids.dtype}")
        ids = ids.astype(np.int64)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= self.accounts.n):
            raise ClearingError(f"{name}: account ids must be within 0..{self.accounts.n - 1}")
        return ids

    def withdrawal_refusal(self, i: int, asset: str, amount: int) -> Reject:
        """Why a withdrawal of ``amount`` would be refused (``Reject.OK``: it is allowed).

        It must leave the account NORMAL-state, within its free balance (isolated margin is
        earmarked), with available margin >= 0 and the loan-to-value within the initial LTV.
        """
        i = self.core.acct(i)
        amount = whole("withdrawal amount", amount)
        if amount <= 0:
            return Reject.INVALID_QUANTITY
        if self.accounts.state[i] != AccountState.NORMAL:
            return Reject.ACCOUNT_NOT_NORMAL
        a = self.ledger.asset(asset)
        free = int(self.ledger.balances[a, i]) - (self.accounts.iso_total(i) if a == self.q else 0)
        if amount > free:
            return Reject.INSUFFICIENT_BALANCE
        if self.margins.account_margin(i, balance_delta=(a, -amount)).available < 0:
            return Reject.INSUFFICIENT_MARGIN
        if self.lending.ltv(i, balance_delta=(a, -amount)) > self.loan_terms.initial_ltv:
            return Reject.LTV_LIMIT
        return Reject.OK

    def withdraw(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Pay out to outside, only if the account stays above every requirement (see :meth:`withdrawal_refusal`)."""
        amount = whole("withdrawal amount", amount)
        why = self.withdrawal_refusal(i, asset, amount)
        if why != Reject.OK:
            explain = {
                Reject.INVALID_QUANTITY: "the amount must be > 0",
                Reject.ACCOUNT_NOT_NORMAL: f"the account is {AccountState(self.accounts.state[i]).name}: withdrawals are blocked",
                Reject.INSUFFICIENT_BALANCE: "it exceeds the free balance (isolated margin is earmarked)",
                Reject.INSUFFICIENT_MARGIN: "it would leave available margin < 0",
                Reject.LTV_LIMIT: "it would lift the loan-to-value above the initial LTV",
            }[why]
            raise ClearingError(f"account {i}: withdrawal of {amount} {asset} refused ({why.name}): {explain}")
        self.ledger.withdraw(int(i), asset, amount, ts)

    def set_leverage(self, i: int, symbol: str, leverage: int) -> None:
        """Set the leverage of one position (at most the tier maximum for its notional).

        Lowering it raises the initial margin: refused (nothing changes) if the account's
        available margin would fall below zero, as venues refuse it.
        """
        i, k = self.core.acct(i), self.core.perp(symbol)
        notional = abs(int(self.accounts.size[k, i]) * int(self.marks[k]) * int(self.units[k]))
        tiers = self.perps[k].tiers
        cap = tiers.max_leverage[tiers.tier(notional)]
        if not isinstance(leverage, (int, np.integer)) or isinstance(leverage, bool) or not 1 <= leverage <= cap:
            raise ClearingError(f"{symbol}: leverage must be an integer within 1..{cap} at a notional of {notional}")
        before = int(self.accounts.leverage[k, i])
        self.accounts.leverage[k, i] = int(leverage)
        if self.accounts.size[k, i] != 0 and not self.accounts.isolated[k, i] and int(leverage) < before:
            m = self.margins.account_margin(i)
            if m.available < 0:
                self.accounts.leverage[k, i] = before
                raise ClearingError(
                    f"account {i}: {symbol} leverage {leverage} needs initial margin {m.initial} > equity {m.equity}; "
                    f"kept {before}"
                )

    def set_margin_mode(self, i: int, symbol: str, mode: MarginMode) -> None:
        """Switch a flat position between cross and isolated."""
        i, k = self.core.acct(i), self.core.perp(symbol)
        if self.accounts.size[k, i] != 0:
            raise ClearingError(f"{symbol}: margin mode can change only while the position is flat")
        self.accounts.isolated[k, i] = mode == MarginMode.ISOLATED
        if mode == MarginMode.CROSS:
            self.accounts.iso_margin[k, i] = 0
        self.ledger.note(np.array([i]))

    def add_isolated_margin(self, i: int, symbol: str, amount: int) -> None:
        """Move margin from the cross wallet into an isolated position (negative: take it out)."""
        i, k = self.core.acct(i), self.core.perp(symbol)
        amount = whole("isolated margin amount", amount)
        if not self.accounts.isolated[k, i]:
            raise ClearingError(f"{symbol}: position of account {i} is not isolated")
        if self.accounts.state[i] != AccountState.NORMAL:
            raise ClearingError(f"account {i} is {AccountState(self.accounts.state[i]).name}: margin changes are blocked")
        if amount > 0 and self.margins.account_margin(i).available < amount:
            raise ClearingError(f"account {i}: not enough available margin to add {amount}")
        if amount < 0:
            pm = next((p for p in self.margins.account_margin(i).positions if p.instrument == symbol), None)
            if pm is None or pm.isolated_margin + amount + min(pm.upnl, 0) < pm.initial:
                raise ClearingError(f"{symbol}: removing {-amount} would leave less than the initial margin")
        self.accounts.iso_margin[k, i] += amount
        self.ledger.note(np.array([i]))

    # --- settlement, funding, loans (delegated) -----------------------------------------------
    def settle_perp_fills(self, symbol: str, fills: np.ndarray, kind: FillKind = FillKind.TRADE, **rates: int) -> np.ndarray:
        """Settle BOOK_FILL records of one perpetual (reference path); returns FILL records."""
        return self.settlement.perp_fills(self.core.perp(symbol), fills, kind, **rates)

    def settle_spot_fills(self, symbol: str, fills: np.ndarray) -> np.ndarray:
        """Deliver BOOK_FILL records of one spot pair (reference path); returns FILL records."""
        return self.settlement.spot_fills(self.spot_index[symbol], fills)

    def pay_funding(self, symbol: str, rate: int, mark_ticks: int, ts: int = 0) -> np.ndarray:
        """Pay funding (see :class:`~cascadelab.clearing.funding.Funding`)."""
        return self.funding.pay(symbol, rate, mark_ticks, ts)

    def seed_lending_pool(self, asset: str, amount: int, ts: int = 0) -> None:
        """Lenders outside the venue fund a lending pool."""
        self.lending.seed_pool(asset, whole("lending pool amount", amount, 1), ts)

    def borrow(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Borrow within the initial LTV."""
        self.lending.borrow(i, asset, whole("borrow amount", amount), ts)

    def repay(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Repay a loan from the account's balance."""
        self.lending.repay(i, asset, whole("repay amount", amount), ts)

    def accrue_interest(self, asset: str, rate: str | Decimal, ts: int = 0) -> int:
        """Capitalise one period's interest on every loan of ``asset``; returns the total."""
        return self.lending.accrue_interest(asset, rate, ts)

    def ltv(self, i: int, balance_delta: tuple[int, int] | None = None, debt_delta: tuple[int, int] | None = None) -> int:
        """Loan-to-value of one account (millionths)."""
        return self.lending.ltv(i, balance_delta, debt_delta)

    def ltv_breaches(self, limit: int | None = None) -> np.ndarray:
        """Accounts above the liquidation LTV (or ``limit``), exactly."""
        return self.lending.ltv_breaches(limit)

    # --- prices and margin (delegated) ------------------------------------------------------------
    def set_mark(self, symbol: str, ticks: int) -> None:
        """Set the mark price (ticks) used for margin."""
        if int(ticks) <= 0:
            raise ClearingError(f"{symbol}: mark must be > 0 ticks, got {ticks}")
        self.marks[self.core.perp(symbol)] = int(ticks)

    def set_asset_price(self, asset: str, price: Fraction | int) -> None:
        """Set an asset's collateral price (a Fraction of quote per coin, or integer money units)."""
        a = self.ledger.asset(asset)
        if isinstance(price, Fraction):
            price = (price.numerator * MONEY_SCALE) // price.denominator
        if price < 0:
            raise ClearingError(f"{asset}: price must be >= 0")
        self.asset_price[a] = int(price)

    def account_margin(self, i: int, balance_delta: tuple[int, int] | None = None) -> AccountMargin:
        """Exact margin figures of one account."""
        return self.margins.account_margin(i, balance_delta)

    def exact_margins(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact (equity, maintenance, initial, isolated breach) of the accounts ``ids``."""
        return self.margins.exact_margins(ids)

    def scan(self) -> ScanResult:
        """The full margin scan."""
        return self.margins.scan()

    def breaching(self) -> np.ndarray:
        """Accounts below maintenance or above the liquidation LTV now, exactly (the full scan's answer).

        Found incrementally (:class:`~cascadelab.clearing.risk.IncrementalRisk`): a quiet step
        looks only at accounts whose prices could have reached their limits or whose balances
        or positions changed.
        """
        return self.risk.detect()

    def full_breaching(self) -> np.ndarray:
        """The same set from the full scan of every account (the incremental detector's oracle)."""
        ids = np.union1d(np.flatnonzero(self.margins.scan().below_maintenance), self.lending.ltv_breaches())
        return ids.astype(np.int64)

    def position_prices(self, i: int, symbol: str) -> tuple[Fraction, Fraction]:
        """(liquidation price, bankruptcy price) of one position."""
        return self.margins.position_prices(i, symbol)

    # --- conservation ----------------------------------------------------------------------
    def check(self, replay_journal: bool = False) -> None:
        """Prove the books balance exactly, or raise :class:`ConservationError`.

        Ledger conservation (and optionally journal replay); each settlement pool holds minus
        the open cost; long and short open interest are equal; funding pools are empty; debts
        equal the principal lent; no taken-over or bankrupt account holds a position or a debt.
        """
        self.ledger.check(replay_journal)
        n = self.accounts.n
        acc = self.accounts
        for k, p in enumerate(self.perps):
            pool = self.ledger.balance(int(self.settlement.pools[k]), self.q)
            open_cost = exact_sum(acc.cost[k, :n])
            if pool != -open_cost:
                raise ConservationError(f"{p.instrument.symbol}: settlement pool {pool} != -open cost {-open_cost}")
            if exact_sum(acc.size[k, :n]) != 0:
                raise ConservationError(f"{p.instrument.symbol}: long and short open interest differ")
            if self.ledger.balance(self.funding.pools[k], self.q) != 0:
                raise ConservationError(f"{p.instrument.symbol}: funding pool did not pay out exactly")
        for a, code in enumerate(self.assets):
            if exact_sum(acc.debt[a, :n]) != self.lending.principal[code]:
                raise ConservationError(f"{code}: debts {exact_sum(acc.debt[a, :n])} != principal lent")
        closed = np.isin(acc.state[:n], (AccountState.TAKEN_OVER, AccountState.BANKRUPT))
        if closed.any():
            holding = closed & (acc.size[:, :n].any(axis=0) | acc.debt[:, :n].any(axis=0))
            if holding.any():
                i = int(np.flatnonzero(holding)[0])
                raise ConservationError(f"account {i} is {AccountState(acc.state[i]).name} but still holds a position or a debt")


__all__ = ["AccountMargin", "ClearingError", "ClearingHouse", "LoanTerms", "PerpSpec"]
