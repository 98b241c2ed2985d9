"""One venue step that liquidates 1% of 1,000,000 accounts, drains the insurance fund and runs ADL.

The market (built by :func:`crash_market`, also used by a test at small scale): Binance rules,
BTC and ETH perpetuals; 87% of accounts long. One account in a hundred is a 50x long whose
bankruptcy price lies within 2% of the entry; the rest hold 2-5x longs or 5-20x shorts, and
market makers quote thin books. The external index then gaps 3% down: every 50x long is past
bankruptcy, the book absorbs a little, the fund covers the first deficits and runs dry, and
auto-deleveraging closes profitable shorts for the rest. The step (``Venue.step``: prices,
order entry, incremental detection, the three tiers) is timed with its phase breakdown, and
the per-account reference engine runs the same crash at a smaller scale beside it. The
positions are booked by the clearing house's opening auction (ledger-exact, no fees).
Prints, never asserts.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np

from cascadelab.records import ORDER_REQUEST, STP, TIF, Ev, Op
from cascadelab.units import MONEY_SCALE, SECOND_NS
from cascadelab.venue.profiles import build
from cascadelab.venue.venue import Venue

PERPS = [("BTCUSDT", "0.1", "0.001"), ("ETHUSDT", "0.01", "0.01")]
PRICE = (1_000_000, 400_000)  # ticks: BTC 100,000.0, ETH 4,000.00
LOT_VALUE = (100 * MONEY_SCALE, 40 * MONEY_SCALE)  # one lot at PRICE, in money units
GAP = 0.97  # the external index gaps 3% down


def _quote_price(k: int, factor: float) -> Fraction:
    """PRICE[k] x ``factor`` in USDT (ticks x tick size)."""
    return Fraction(int(PRICE[k] * factor)) * Fraction(PERPS[k][1])


def _quotes(venue: Venue, makers: np.ndarray, factor: float, ts: int, levels: int = 20, lots: int = 5) -> np.ndarray:
    """The market makers cancel their quotes and quote thin two-sided books around ``factor`` x PRICE."""
    rows = [(ts, int(m), 0, 0, 0, k, 0, Op.CANCEL_ALL, 0, 0, 0) for m in makers for k in range(len(PRICE))]
    for k, p in enumerate(PRICE):
        mid = int(p * factor)
        for j in range(levels):
            for side in (1, -1):
                m = makers[(k * levels + j) % len(makers)]
                rows.append((ts, int(m), 0, mid - side * (j + 1) * (p // 10_000), lots, k, 0, Op.LIMIT, side, TIF.GTC, STP.NONE))
    return np.array(rows, ORDER_REQUEST)


def crash_market(n_accounts: int, seed: int, engine: str = "batched") -> tuple[Venue, dict]:
    """The market above with ``n_accounts`` accounts (fund: 1 USDT per account), one calm step done; returns (venue, facts)."""
    fund_usd = n_accounts
    rng = np.random.default_rng(seed)
    venue = build("binance", PERPS, engine=engine, fund_seed=fund_usd * MONEY_SCALE, liquidator_orders_per_s=50)
    ch = venue.clearing
    ids = venue.open_accounts(n_accounts)
    makers, traders = ids[:10], ids[10:]
    n = len(traders)
    k_of = rng.integers(0, 2, n)  # BTC or ETH
    long = rng.random(n) < 0.87
    hot = long & (rng.random(n) < 0.01 / 0.87)  # 1% of accounts: 50x longs
    lev = np.where(hot, 50, np.where(long, rng.integers(2, 6, n), rng.integers(5, 21, n)))
    margin_usd = np.where(hot, rng.uniform(500, 2_000, n), np.where(long, rng.uniform(200, 5_000, n), 0.0))
    lots = np.zeros(n, np.int64)
    for k in range(2):
        on = k_of == k
        lots[on & long] = np.maximum(1, (margin_usd[on & long] * lev[on & long] * MONEY_SCALE) // LOT_VALUE[k]).astype(np.int64)
        short = on & ~long
        total = int(lots[on & long].sum())
        share = rng.dirichlet(np.ones(int(short.sum())))
        s = np.floor(share * total).astype(np.int64)
        s[: total - int(s.sum())] += 1  # whole lots summing exactly to the long side
        lots[short] = -s
    notional = np.abs(lots) * np.array(LOT_VALUE)[k_of]
    deposit = notional // lev + np.where(hot, notional // 400, notional // 20) + MONEY_SCALE  # margin plus a small cushion
    ch.deposit_many(traders, "USDT", deposit)
    ch.deposit_many(makers, "USDT", np.full(len(makers), 10**9 * MONEY_SCALE))
    for k, (symbol, _, _) in enumerate(PERPS):
        on = (k_of == k) & (lots != 0)
        ch.configure_positions(symbol, traders[on], lev[on], False)
        ch.opening_auction(symbol, traders[on], lots[on], PRICE[k])
        venue.feed_index(symbol, _quote_price(k, 1.0), ts=0)
    venue.step(SECOND_NS, _quotes(venue, makers, 1.0, SECOND_NS))
    facts = {"hot": int(hot.sum()), "makers": makers, "long_share": float(long.mean())}
    return venue, facts


def crash_step(venue: Venue, makers: np.ndarray) -> tuple[float, np.ndarray]:
    """Move the books, then gap the index; time the venue step that liquidates. Returns (seconds, events)."""
    venue.step(2 * SECOND_NS, _quotes(venue, makers, GAP, 2 * SECOND_NS))
    for k, (symbol, _, _) in enumerate(PERPS):
        venue.feed_index(symbol, _quote_price(k, GAP), ts=3 * SECOND_NS)
    venue.clock.reset()
    venue.risk.clock.reset()
    t0 = time.perf_counter()
    report = venue.step(3 * SECOND_NS)
    return time.perf_counter() - t0, report.events


def _describe(events: np.ndarray) -> str:
    def count(kind: Ev) -> int:
        return int((events["kind"] == kind).sum())

    return (
        f"{count(Ev.LIQUIDATION_START):,} liquidations started, {count(Ev.LIQUIDATION_FILL):,} book fills, "
        f"{count(Ev.TAKEOVER):,} takeovers, {count(Ev.ADL_CLOSE):,} ADL closes"
    )


def run(n_accounts: int = 1_000_000, reference_accounts: int = 20_000, seed: int = 1) -> dict[str, float]:
    """Time the crash step at ``n_accounts`` (batched) and at ``reference_accounts`` (both engines)."""
    small, f = crash_market(2_000, seed)  # load compiled code
    crash_step(small, f["makers"])
    t0 = time.perf_counter()
    venue, facts = crash_market(n_accounts, seed)
    build_s = time.perf_counter() - t0
    secs, events = crash_step(venue, facts["makers"])
    fund = venue.risk.fund_balance(0)
    print(
        f"liquidation step: {n_accounts:,} accounts ({facts['hot']:,} at 50x), index gaps 3%: {secs * 1e3:,.0f} ms "
        f"for {_describe(events)}; fund left {fund / MONEY_SCALE:,.0f} USDT (market built in {build_s:.1f} s)"
    )
    print(f"  venue step: {venue.clock.breakdown()}")
    print(f"  liquidation: {venue.risk.clock.breakdown()}")
    venue.close()
    times = {}
    for engine in ("batched", "reference"):
        v, f = crash_market(reference_accounts, seed, engine)
        times[engine], ev = crash_step(v, f["makers"])
        v.close()
    print(
        f"liquidation step at {reference_accounts:,} accounts ({_describe(ev)}): batched {times['batched'] * 1e3:,.1f} ms, "
        f"per-account reference {times['reference'] * 1e3:,.0f} ms ({times['reference'] / times['batched']:,.0f}x slower)"
    )
    return {"step_s": secs, "reference_s": times["reference"], "batched_small_s": times["batched"]}


if __name__ == "__main__":
    run()
