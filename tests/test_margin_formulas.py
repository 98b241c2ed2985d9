"""Margin tiers, liquidation and bankruptcy prices, and the exact scan, against DOMAIN.md."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pytest

from cascadelab.clearing.accounts import MarginMode
from cascadelab.clearing.margin import MarginError, MarginTiers, bankruptcy_price, liquidation_price
from cascadelab.units import MONEY_SCALE, money_to_units
from market_helpers import BTC, BTC_TIERS, make_clearing


def usd(x: str) -> int:
    return money_to_units(x)


def test_cum_follows_the_published_recurrence() -> None:
    # cum_n = floor_n x (MMR_n - MMR_{n-1}) + cum_{n-1}; Binance publishes 0, 50, 950, 11,450, 131,450
    assert [c // MONEY_SCALE for c in BTC_TIERS.cum] == [0, 50, 950, 11_450, 131_450]


def test_maintenance_is_continuous_at_tier_edges() -> None:
    for cap in BTC_TIERS.caps[:-1]:
        below, above = BTC_TIERS.maintenance(cap), BTC_TIERS.maintenance(cap + 1)
        assert 0 <= above - below <= 1  # one money unit of rounding at most
    assert BTC_TIERS.maintenance(usd("10000")) == usd("40")  # 0.4%
    assert BTC_TIERS.maintenance(usd("100000")) == usd("450")  # 0.5% - 50


def test_initial_margin_caps_leverage_by_tier() -> None:
    assert BTC_TIERS.initial(usd("10000"), 20) == usd("500")
    assert BTC_TIERS.initial(usd("1000000"), 125) == -(-usd("1000000") // 75)  # tier 3 allows 75x; rounds up


def test_hyperliquid_mmr_is_half_the_initial_rate() -> None:
    t = MarginTiers.hyperliquid(40)
    assert t.mmr == (12_500,) and t.max_leverage == (40,)  # 1/(2*40) = 1.25%


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ([], "at least one"),
        ([("100", "0.01", 10), ("50", "0.02", 5)], "tier 2: cap"),
        ([("100", "0.02", 10), (None, "0.01", 5)], "tier 2: mmr"),
        ([(None, "0.01", 10), ("100", "0.02", 5)], "only the last"),
        ([("100", "0.01", 0)], "max_leverage"),
    ],
)
def test_invalid_tiers_name_the_tier(rows, needle: str) -> None:
    with pytest.raises((MarginError, ValueError), match=needle):
        MarginTiers.from_table(rows)


def test_binance_liquidation_price_example() -> None:
    """DOMAIN.md: short 0.005 BTC at 9,451.53, WB 10.72, other MM 1.3, other uPnL 0.47 -> 11,383.99."""
    lp = liquidation_price(
        Decimal("10.72"), Decimal("1.3"), Decimal("0.47"), 0, -1, Decimal("0.005"), Decimal("9451.53"), Decimal("0.004")
    )
    assert (Decimal(lp.numerator) / Decimal(lp.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal("11383.99")


def test_liquidation_price_is_where_margin_meets_maintenance() -> None:
    wb, size, entry, mmr = Fraction(1000), Fraction(1), Fraction(50_000), Fraction(4, 1000)
    lp = liquidation_price(wb, 0, 0, 0, +1, size, entry, mmr)
    assert wb + size * (lp - entry) == size * lp * mmr  # margin balance == maintenance at LP
    bp = bankruptcy_price(wb, 0, +1, size, entry)
    assert bp == 49_000 and wb + size * (bp - entry) == 0
    assert bankruptcy_price(wb, 0, -1, size, entry) == 51_000


def test_scan_agrees_with_exact_per_account_figures() -> None:
    rng = np.random.default_rng(3)
    ch = make_clearing()
    n = 300
    ch.open_accounts(n)
    acc = ch.accounts
    acc.size[0, :n] = rng.integers(-5_000, 5_000, n)
    acc.size[0, :n] -= acc.size[0, :n].sum() // n  # roughly balanced; the scan does not need it exact
    acc.cost[0, :n] = acc.size[0, :n] * rng.integers(900_000, 1_100_000, n) * BTC.unit_notional
    acc.size[1, :n] = rng.integers(-(10**6), 10**6, n)
    acc.cost[1, :n] = acc.size[1, :n] * rng.integers(15_000, 30_000, n) * 100_000
    acc.isolated[1, : n // 3] = True
    acc.iso_margin[1, : n // 3] = rng.integers(0, usd("3000"), n // 3)
    acc.leverage[0, :n] = rng.integers(1, 126, n)
    ch.ledger.balances[0, :n] = rng.integers(0, usd("50000"), n)  # test-only: balances set directly
    ch.ledger.balances[1, :n] = rng.integers(0, usd("50000"), n)
    acc.debt[0, :n] = rng.integers(0, usd("1000"), n)
    ch.principal["USDT"] = int(acc.debt[0, :n].sum())  # keep the loan book consistent with the debts
    ch.set_mark("BTCUSDT", 1_020_000)
    ch.set_mark("DOGEUSDT", 21_000)
    ch.set_asset_price("USDe", Fraction(66, 100))
    eq, mm, im, _ = ch.exact_margins(np.arange(n))
    s = ch.scan()
    for i in range(n):
        am = ch.account_margin(i)
        assert (eq[i], mm[i], im[i]) == (am.equity, am.maintenance, am.initial), i
        assert bool(s.below_maintenance[i]) == am.below_maintenance, i
        assert abs(s.equity[i] - am.equity) <= 1e-9 * abs(am.equity) + 1e4  # the float estimate is close
    assert s.below_maintenance.any() and not s.below_maintenance.all()


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_prescreen_never_misses_an_account_one_unit_from_the_edge(delta: int) -> None:
    """Equity exactly at maintenance +/- one money unit: the verdict must be exact."""
    ch = make_clearing()
    (a,) = ch.open_accounts(1)
    ch.accounts.size[0, a] = 12_345  # 12.345 BTC long at 100,000.0
    ch.accounts.cost[0, a] = 12_345 * 1_000_000 * BTC.unit_notional
    ch.set_mark("BTCUSDT", 999_000)  # -0.1%
    eq0, mm0, _, _ = ch.exact_margins(np.array([a]))
    # deposit exactly enough USDT (after the 0.9999 haircut) to sit at maintenance + delta
    need = int(mm0[0] - eq0[0]) + delta
    deposit = -(-need * 10_000 // 9_999)
    while (deposit * 9_999) // 10_000 > need:
        deposit -= 1
    ch.ledger.balances[0, a] = deposit
    eq, mm, _, _ = ch.exact_margins(np.array([a]))
    assert eq[0] - mm[0] == delta
    s = ch.scan()
    assert bool(s.below_maintenance[a]) == (delta < 0)
    assert a in s.suspects


def test_cross_versus_isolated_loss_containment() -> None:
    """The same losing DOGE position: cross drains the whole account, isolated only its own margin."""
    results = {}
    for mode in (MarginMode.CROSS, MarginMode.ISOLATED):
        ch = make_clearing()
        a, b = ch.open_accounts(2)
        for i in (a, b):
            ch.deposit(i, "USDT", usd("10000"))
        ch.set_margin_mode(a, "DOGEUSDT", mode)
        ch.set_leverage(a, "DOGEUSDT", 10)
        from cascadelab.book import OrderBook

        book = OrderBook()
        book.limit(1, b, -1, 20_000, 200_000)  # 200,000 DOGE at 0.2
        fills = book.limit(2, a, 1, 20_000, 200_000).fills
        ch.settle_perp_fills("DOGEUSDT", fills)
        ch.set_mark("DOGEUSDT", 17_000)  # -15%: the long loses 6,000 USDT
        am = ch.account_margin(a)
        results[mode] = am
        ch.check(replay_journal=True)
    cross, iso = results[MarginMode.CROSS], results[MarginMode.ISOLATED]
    # cross: 10,000 - fee - 6,000 covers maintenance (34,000 x 1.5% - 50 = 460): not liquidated
    assert not cross.below_maintenance
    # isolated: 40,000 notional at 10x put ~4,000 in the position; a 6,000 loss breaches it
    assert iso.below_maintenance
    pos = iso.positions[0]
    assert pos.isolated_margin == usd("4000") - usd("20") and pos.upnl == -usd("6000")
    # the rest of the account is untouched: 10,000 - 20 fee - 3,980 isolated, at the 0.9999 USDT ratio
    assert iso.equity == (usd("10000") - usd("20") - pos.isolated_margin) * 9999 // 10000


def test_position_prices_reproduce_the_binance_example_on_a_real_account() -> None:
    """DOMAIN.md's example as an account: short 0.005 BTC at 9,451.53 next to another position."""
    from cascadelab.clearing.collateral import CollateralAsset, fixed
    from cascadelab.clearing.house import ClearingHouse, PerpSpec
    from cascadelab.instruments import perpetual

    btc = perpetual("BTCUSDT", "0.01", "0.001")
    eth = perpetual("ETHUSDT", "0.01", "0.001")
    flat = MarginTiers.from_table([(None, "0.004", 125)])
    ch = ClearingHouse(
        [PerpSpec(btc, flat), PerpSpec(eth, MarginTiers.from_table([(None, "0.01", 100)]))],
        [],
        [CollateralAsset.of("USDT", "1", fixed("1"))],
    )
    a, b = ch.open_accounts(2)
    ch.ledger.deposit(a, "USDT", usd("10.72"))
    ch.ledger.deposit(b, "USDT", usd("100000"))
    acc = ch.accounts
    # test set-up: positions placed directly, mirrored by the counterparty so open interest balances
    acc.size[0, a], acc.cost[0, a] = -5, -5 * 945_153 * btc.unit_notional
    acc.size[0, b], acc.cost[0, b] = 5, 5 * 945_153 * btc.unit_notional
    # the other position: 0.13 ETH long with MM 1.3 (1% of 130) and uPnL 0.47
    acc.size[1, a], acc.cost[1, a] = 130, usd("130") - usd("0.47")
    acc.size[1, b], acc.cost[1, b] = -130, -(usd("130") - usd("0.47"))
    ch.set_mark("ETHUSDT", 100_000)  # 1,000.00 x 0.13 = 130 notional
    ch.set_mark("BTCUSDT", 945_153)
    lp, bp = ch.position_prices(a, "BTCUSDT")
    assert round(Decimal(lp.numerator) / Decimal(lp.denominator), 2) == Decimal("11383.99")
    assert bp > lp  # a short is bankrupt above its liquidation price
