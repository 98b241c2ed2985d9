"""Isolated positions under a cross takeover: who takes what, and nothing left on a closed account.

The trader holds a cross BTC long and an isolated ALT long. A BTC gap takes the cross part
over. Binance-style profiles take every position (the isolated one too); Hyperliquid's
backstop takes the cross positions and cross margin and leaves the isolated position, which
is liquidated on its own when it breaches.
"""

from __future__ import annotations

import pytest

from cascadelab.clearing.accounts import AccountState, MarginMode
from cascadelab.clearing.collateral import CollateralAsset, fixed
from cascadelab.clearing.core import PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import perpetual
from cascadelab.liquidation import config_from_params, engine_class
from cascadelab.records import Ev
from cascadelab.venue import Venue
from liq_helpers import ENGINES, hl_params, usd

BTC = perpetual("BTCUSDT", "0.1", "0.001", maker="0.0002", taker="0.0005")
ALT = perpetual("ALTUSDT", "0.0001", "1", maker="0.0002", taker="0.0005")
S = 1_000_000_000


def market(params: dict, engine: str) -> tuple[Venue, object, int, int]:
    flat = MarginTiers.from_table([(None, "0.005", 100)])
    ch = ClearingHouse([PerpSpec(BTC, flat), PerpSpec(ALT, flat)], [], [CollateralAsset.of("USDT", "1", fixed("1"))])
    v = Venue(ch, debug=True)
    eng = engine_class(engine)(v, config_from_params(**params))
    v.attach_risk(eng)
    mm, t = (int(x) for x in v.open_accounts(2))
    ch.deposit(mm, "USDT", usd("10000000"))
    ch.deposit(t, "USDT", usd("3200"))
    ch.set_leverage(t, "BTCUSDT", 50)
    ch.set_leverage(t, "ALTUSDT", 10)
    ch.set_margin_mode(t, "ALTUSDT", MarginMode.ISOLATED)
    ch.set_mark("BTCUSDT", 1_000_000)
    ch.set_mark("ALTUSDT", 100_000)  # 10.0000
    assert v.submit_decimal(mm, "BTCUSDT", -1, "1", "100000").accepted
    assert v.submit_decimal(t, "BTCUSDT", 1, "1", "100000").filled == 1000
    assert v.submit_decimal(mm, "ALTUSDT", -1, "1000", "10").accepted
    assert v.submit_decimal(t, "ALTUSDT", 1, "1000", "10").filled == 1000  # isolated margin 1,000 at 10x
    return v, eng, mm, t


def step(v: Venue, btc: str, alt: str, t: float) -> None:
    v.clearing.set_mark("BTCUSDT", BTC.price_to_ticks(btc))
    v.clearing.set_mark("ALTUSDT", ALT.price_to_ticks(alt))
    v.step(int(t * S))
    v.clearing.check(replay_journal=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_binance_takeover_takes_the_isolated_position_too(engine: str) -> None:
    v, eng, _mm, t = market({"style": "binance", "fund_seed": usd("100000")}, engine)
    ch = v.clearing
    step(v, "100000", "10", 0)
    step(v, "97000", "10", 1)  # cross: wallet 2,200 - 1,000 isolated - 50 - 5 fees; -3,000 on BTC: below maintenance, no bids
    assert ch.accounts.state[t] in (AccountState.TAKEN_OVER, AccountState.BANKRUPT)
    assert not ch.accounts.size[:, t].any() and not ch.accounts.iso_margin[:, t].any()
    taken = {int(e["instrument"]) for e in eng.events() if e["kind"] == Ev.TAKEOVER and e["account"] == t}
    assert taken == {0, 1}  # both positions went to the liquidator
    assert ch.ledger.balance(t, "USDT") == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_hyperliquid_backstop_leaves_the_isolated_position_alone(engine: str) -> None:
    v, eng, mm, t = market(hl_params(), engine)
    ch = v.clearing
    step(v, "100000", "10", 0)
    # cross equity 3,200 - 1,000 isolated - 50 - 5 fees = 2,145; at 98,055 it is 200 < 2/3 of MM 490.3: the backstop
    step(v, "98055", "10", 1)
    assert ch.accounts.size[0, t] == 0 and ch.accounts.size[1, t] == 1000
    assert ch.accounts.iso_margin[1, t] == usd("995")  # 1,000 at 10x, less the 5 fee: untouched
    assert ch.accounts.state[t] == AccountState.NORMAL  # the account lives on with its isolated position
    taken = {int(e["instrument"]) for e in eng.events() if e["kind"] == Ev.TAKEOVER and e["account"] == t}
    assert taken == {0} and not [e for e in eng.events() if e["kind"] == Ev.ADL_TRIGGER]
    step(v, "98055", "9.2", 2)  # isolated: 995 - 800 = 195 > MM 46: fine
    assert ch.accounts.size[1, t] == 1000
    assert v.submit_decimal(mm, "ALTUSDT", 1, "2000", "9.04").accepted
    step(v, "98055", "9.05", 3)  # 995 - 950 = 45 < MM 45.25: the isolated position is liquidated on its own
    assert ch.accounts.size[1, t] == 0
    orders = [e for e in eng.events() if e["kind"] == Ev.LIQUIDATION_ORDER and e["account"] == t]
    assert [(int(e["instrument"]), int(e["qty"])) for e in orders] == [(1, 1000)]
    assert ch.accounts.state[t] == AccountState.NORMAL and not ch.accounts.size[:, t].any()
