"""BRIEF §4 end to end through real books: ADL breaks hedges.

A fund is long BTC and ETH and short DOGE as a hedge. DOGE's bids vanish and DOGE falls:
the levered DOGE longs go bankrupt, the book cannot take their positions, the small
insurance fund runs dry and ADL closes the most profitable, most levered DOGE short: the
fund's hedge. BTC and ETH then fall and the now unhedged fund is liquidated. With a fund
large enough to avoid ADL the same crash leaves the hedged fund standing.

A market maker long DOGE spot and short DOGE perp loses its hedge the same way and then
carries naked spot into the fall. Prices on the books come from orders; the marks (the
external index) are the scripted, exogenous input.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.collateral import CollateralAsset, fixed, from_index
from cascadelab.instruments import Instrument
from cascadelab.liquidation.events import Ev
from cascadelab.units import money_to_units
from cascadelab.venue.profiles import build

S = 1_000_000_000
PERPS = [("BTCUSDT", "0.1", "0.001"), ("ETHUSDT", "0.01", "0.001"), ("DOGEUSDT", "0.00001", "1")]
DOGE_SPOT = Instrument("DOGE-SPOT", "spot", "DOGE", "USDT", "0.00001", "1", "1", "0", "0.0001")


def usd(x: str) -> int:
    return money_to_units(x)


class Market:
    """A Binance-profile venue with a market maker, the hedged fund, DOGE longs and another short."""

    def __init__(self, fund_seed: str) -> None:
        collateral = [CollateralAsset.of("USDT", "1", fixed("1")), CollateralAsset.of("DOGE", "0.9", from_index("DOGE"))]
        self.v, self.eng = build("binance", PERPS, spots=[DOGE_SPOT], collateral=collateral, debug=True, fund_seed=usd(fund_seed))
        self.ch = self.v.clearing
        self.doge_index = self.v.add_asset_index("DOGE", {"ext": Fraction(1)})
        self.t = 0
        self.set_marks("100000", "4000", "0.2")
        (self.mm, self.fund, self.other_short, *self.longs) = (int(x) for x in self.v.open_accounts(7))
        self.ch.deposit(self.mm, "USDT", usd("50000000"))
        self.ch.deposit(self.fund, "USDT", usd("12000"))
        self.ch.deposit(self.other_short, "USDT", usd("50000"))
        for r in self.longs:
            self.ch.deposit(r, "USDT", usd("2100"))
        for sym, lev in (("BTCUSDT", 50), ("ETHUSDT", 50), ("DOGEUSDT", 10)):
            self.ch.set_leverage(self.fund, sym, lev)
        for r in self.longs:
            self.ch.set_leverage(r, "DOGEUSDT", 10)
        # the fund: long 1 BTC and 10 ETH from the market maker, short 300,000 DOGE to three levered longs
        self.cross(self.mm, self.fund, "BTCUSDT", "1", "100000")
        self.cross(self.mm, self.fund, "ETHUSDT", "10", "4000")
        for r in self.longs[:3]:
            self.cross(self.fund, r, "DOGEUSDT", "100000", "0.2")
        # another DOGE short, barely levered, against the fourth long
        self.cross(self.other_short, self.longs[3], "DOGEUSDT", "100000", "0.2")
        self.step()

    def cross(self, seller: int, buyer: int, symbol: str, qty: str, price: str) -> None:
        assert self.v.submit_decimal(seller, symbol, -1, qty, price).accepted
        ack = self.v.submit_decimal(buyer, symbol, 1, qty, price)
        assert ack.accepted and ack.filled > 0, ack

    def set_marks(self, btc: str, eth: str, doge: str) -> None:
        for sym, p in (("BTCUSDT", btc), ("ETHUSDT", eth), ("DOGEUSDT", doge)):
            inst = self.v.instruments[sym]
            self.ch.set_mark(sym, inst.price_to_ticks(p))
        self.doge_index.update("ext", Fraction(doge), self.t * S)

    def step(self) -> list[int]:
        self.v.update_prices(self.t * S)
        out = self.eng.step(self.t * S)
        self.ch.check(replay_journal=True)
        self.t += 1
        return out

    def quote(self, symbol: str, side: int, qty: str, price: str) -> None:
        assert self.v.submit_decimal(self.mm, symbol, side, qty, price).accepted


def crash(fund_seed: str) -> Market:
    m = Market(fund_seed)
    # 05:10 the market makers leave DOGE: no bids at all; DOGE falls 15% on the index
    m.v.cancel_all(m.mm, "DOGEUSDT")
    m.set_marks("100000", "4000", "0.17")
    m.step()
    # 05:20 BTC and ETH fall 15%, DOGE to 0.12; market makers still bid BTC and ETH
    m.quote("BTCUSDT", 1, "2", "84900")
    m.quote("ETHUSDT", 1, "20", "3395")
    m.set_marks("85000", "3400", "0.12")
    m.step()
    return m


def test_adl_closes_the_hedge_and_the_unhedged_fund_is_liquidated() -> None:
    m = crash(fund_seed="500")
    doge_adl = [e for e in m.eng.events.of(Ev.ADL_CLOSE) if e.symbol == "DOGEUSDT"]
    assert doge_adl, "the small fund should not have covered the DOGE longs' deficits"
    assert doge_adl[0].account == m.fund and doge_adl[0].rank == 1  # the profitable, levered short goes first
    assert m.other_short not in [e.account for e in doge_adl[:1]]
    assert m.ch.accounts.size[2, m.fund] == 0  # the hedge is gone ...
    started = [e.account for e in m.eng.events.of(Ev.LIQUIDATION_START)]
    assert m.fund in started  # ... and the fund is liquidated when BTC and ETH fall
    assert all(m.ch.accounts.state[r] in (AccountState.BANKRUPT, AccountState.TAKEN_OVER) for r in m.longs)


def test_same_crash_with_a_deep_insurance_fund_leaves_the_hedge_and_the_fund_alive() -> None:
    m = crash(fund_seed="10000000")
    assert [e for e in m.eng.events.of(Ev.ADL_CLOSE) if e.symbol == "DOGEUSDT"] == []
    assert m.ch.accounts.size[2, m.fund] == -300_000
    assert m.fund not in [e.account for e in m.eng.events.of(Ev.LIQUIDATION_START)]
    am = m.ch.account_margin(m.fund)
    assert am.equity > am.maintenance


@pytest.mark.parametrize("fund_seed", ["500", "10000000"])
def test_market_maker_loses_its_spot_perp_hedge_to_adl(fund_seed: str) -> None:
    m = Market(fund_seed)
    ch = m.ch
    (mmh,) = (int(x) for x in m.v.open_accounts(1))
    ch.deposit(mmh, "USDT", usd("20000"))
    ch.deposit(mmh, "DOGE", usd("300000"))  # long 300,000 DOGE spot ...
    ch.set_leverage(mmh, "DOGEUSDT", 10)
    (extra_long,) = (int(x) for x in m.v.open_accounts(1))
    ch.deposit(extra_long, "USDT", usd("6300"))
    ch.set_leverage(extra_long, "DOGEUSDT", 10)
    m.cross(mmh, extra_long, "DOGEUSDT", "300000", "0.2")  # ... and short 300,000 DOGE perp: delta neutral
    m.step()
    m.v.cancel_all(m.mm, "DOGEUSDT")
    m.set_marks("100000", "4000", "0.17")
    m.step()
    hedged = ch.accounts.size[2, mmh] == -300_000
    before = ch.account_margin(mmh).equity
    m.set_marks("100000", "4000", "0.12")  # DOGE keeps falling
    m.step()
    change = ch.account_margin(mmh).equity - before
    spot_loss = 300_000 * usd("0.05") * 9 // 10  # 0.05 per DOGE at the 0.9 collateral ratio
    if fund_seed == "500":
        assert not hedged  # the perp short was deleveraged: naked spot into the fall
        assert any(e.account == mmh for e in m.eng.events.of(Ev.ADL_CLOSE))
        assert change == pytest.approx(-spot_loss, abs=usd("1"))
    else:
        assert hedged  # the perp short's gain offsets the spot loss (less the haircut)
        assert change > -spot_loss // 5
