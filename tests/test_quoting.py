"""Avellaneda–Stoikov and GLFT quotes against hand arithmetic, and the A–S (2008) section 4 Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cascadelab.agents.quoting import (
    PAPER_COLUMNS,
    avellaneda_stoikov,
    format_paper_lines,
    glft,
    simulate_avellaneda_stoikov,
)

# ---------------------------------------------------------------------------------------------
# avellaneda_stoikov


def test_as_hand_values() -> None:
    # s=100, q=2, t=0.25, T=1, sigma=2, gamma=0.1, k=1.5
    risk = 0.1 * 2.0**2 * (1.0 - 0.25)  # 0.3
    r = 100.0 - 2 * risk  # 99.4
    spread = risk + (2 / 0.1) * math.log(1 + 0.1 / 1.5)  # 0.3 + 20 ln(16/15)
    quotes = avellaneda_stoikov(100.0, 2, 0.25, 1.0, 2.0, 0.1, 1.5)
    assert quotes.reservation == pytest.approx(99.4, abs=1e-12)
    assert quotes.reservation == pytest.approx(r, rel=1e-14)
    assert quotes.spread == pytest.approx(spread, rel=1e-14)
    assert quotes.spread == pytest.approx(1.590770, abs=1e-6)
    assert quotes.bid == pytest.approx(r - spread / 2, rel=1e-14)
    assert quotes.ask == pytest.approx(r + spread / 2, rel=1e-14)


def test_as_at_horizon_and_flat() -> None:
    # at t = T only the order-flow term is left and the reservation price is the mid
    quotes = avellaneda_stoikov(50.0, 7, 1.0, 1.0, 3.0, 0.5, 2.0)
    assert quotes.reservation == 50.0
    assert quotes.spread == pytest.approx(4 * math.log(1.25), rel=1e-14)
    # flat inventory: quotes symmetric around the mid
    quotes = avellaneda_stoikov(50.0, 0, 0.0, 1.0, 3.0, 0.5, 2.0)
    assert quotes.reservation == 50.0
    assert 50.0 - quotes.bid == pytest.approx(quotes.ask - 50.0, rel=1e-14)
    # zero volatility: no inventory term at all
    quotes = avellaneda_stoikov(50.0, 7, 0.0, 1.0, 0.0, 0.5, 2.0)
    assert quotes.reservation == 50.0


def test_as_inventory_sign() -> None:
    long, flat, short = (avellaneda_stoikov(100.0, q, 0.0, 1.0, 2.0, 0.1, 1.5) for q in (3, 0, -3))
    # long inventory lowers both quotes (buy less eagerly, sell more eagerly); short raises them
    assert long.reservation < flat.reservation == 100.0 < short.reservation
    assert long.bid < flat.bid < short.bid
    assert long.ask < flat.ask < short.ask
    assert long.spread == flat.spread == short.spread
    assert 100.0 - long.reservation == pytest.approx(3 * 0.1 * 4.0 * 1.0, rel=1e-14)


def test_as_arrays_broadcast() -> None:
    q = np.array([[-2.0], [0.0], [5.0]])  # (3, 1)
    t = np.array([0.0, 0.5, 0.9])  # (3,)
    quotes = avellaneda_stoikov(100.0, q, t, 1.0, 2.0, 0.1, 1.5)
    assert quotes.bid.shape == quotes.ask.shape == quotes.reservation.shape == (3, 3)
    assert quotes.spread.shape == (3,)
    for i, qi in enumerate((-2.0, 0.0, 5.0)):
        for j, tj in enumerate((0.0, 0.5, 0.9)):
            risk = 0.1 * 4.0 * (1.0 - tj)
            r = 100.0 - qi * risk
            spread = risk + 20 * math.log(1 + 0.1 / 1.5)
            assert quotes.reservation[i, j] == pytest.approx(r, rel=1e-14)
            assert quotes.bid[i, j] == pytest.approx(r - spread / 2, rel=1e-14)
            assert quotes.ask[i, j] == pytest.approx(r + spread / 2, rel=1e-14)
    # vector gamma
    quotes = avellaneda_stoikov(100.0, 1, 0.0, 1.0, 2.0, np.array([0.01, 0.5]), 1.5)
    assert quotes.spread == pytest.approx([0.04 + 200 * math.log(1 + 0.01 / 1.5), 2.0 + 4 * math.log(1 + 0.5 / 1.5)], rel=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": -0.1}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"gamma": np.array([0.1, 0.0])}, "gamma"),
        ({"k": 0.0}, "k"),
        ({"sigma": -1.0}, "sigma"),
        ({"t": 1.5}, "t"),
        ({"t": np.array([0.0, 2.0])}, "t"),
        ({"s": "abc"}, "s"),
    ],
)
def test_as_invalid(kwargs: dict, name: str) -> None:
    args = {"s": 100.0, "q": 0, "t": 0.0, "T": 1.0, "sigma": 2.0, "gamma": 0.1, "k": 1.5} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} must"):
        avellaneda_stoikov(**args)


# ---------------------------------------------------------------------------------------------
# glft


def _glft_by_hand(q: float, sigma: float, A: float, k: float, gamma: float) -> tuple[float, float]:
    c1 = math.log(1 + gamma / k) / gamma
    c2 = math.sqrt(sigma**2 * gamma / (2 * k * A) * (1 + gamma / k) ** (1 + k / gamma))
    return c1 + (2 * q + 1) / 2 * c2, c1 - (2 * q - 1) / 2 * c2


def test_glft_hand_values() -> None:
    # the paper's illustrative parameters: sigma=0.3 tick/sqrt(s), A=0.9 /s, k=0.3 /tick, gamma=1e-4 /tick
    for q in (-3, 0, 1, 4):
        bid, ask = _glft_by_hand(q, 0.3, 0.9, 0.3, 1e-4)
        depths = glft(q, 0.3, 0.9, 0.3, 1e-4)
        assert depths.bid_depth == pytest.approx(bid, rel=1e-12)
        assert depths.ask_depth == pytest.approx(ask, rel=1e-12)
    # a case worked fully by hand: gamma = k = 1, so ln 2 and 2**2 appear
    # c1 = ln 2, c2 = sqrt(sigma^2 / (2A) * 4) with sigma=1, A=2 -> c2 = 1
    depths = glft(2, 1.0, 2.0, 1.0, 1.0)
    assert depths.bid_depth == pytest.approx(math.log(2) + 2.5, rel=1e-14)
    assert depths.ask_depth == pytest.approx(math.log(2) - 1.5, rel=1e-14)


def test_glft_inventory_sign() -> None:
    flat = glft(0, 2.0, 140.0, 1.5, 0.1)
    long, short = glft(2, 2.0, 140.0, 1.5, 0.1), glft(-2, 2.0, 140.0, 1.5, 0.1)
    assert flat.bid_depth == pytest.approx(flat.ask_depth, rel=1e-14)
    # long inventory: deeper bid, shallower ask; short: the reverse
    assert long.bid_depth > flat.bid_depth > short.bid_depth
    assert long.ask_depth < flat.ask_depth < short.ask_depth
    # the total spread does not depend on inventory
    assert long.bid_depth + long.ask_depth == pytest.approx(flat.bid_depth + flat.ask_depth, rel=1e-14)
    assert short.bid_depth + short.ask_depth == pytest.approx(flat.bid_depth + flat.ask_depth, rel=1e-14)


def test_glft_arrays() -> None:
    q = np.arange(-3, 4)
    gamma = np.array([[0.01], [0.1], [0.5]])
    depths = glft(q, 2.0, 140.0, 1.5, gamma)
    assert depths.bid_depth.shape == depths.ask_depth.shape == (3, 7)
    for i, g in enumerate((0.01, 0.1, 0.5)):
        for j, qj in enumerate(range(-3, 4)):
            bid, ask = _glft_by_hand(qj, 2.0, 140.0, 1.5, g)
            assert depths.bid_depth[i, j] == pytest.approx(bid, rel=1e-13)
            assert depths.ask_depth[i, j] == pytest.approx(ask, rel=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gamma": 0.0}, "gamma"),
        ({"k": -1.0}, "k"),
        ({"A": 0.0}, "A"),
        ({"sigma": -0.1}, "sigma"),
        ({"A": np.array([1.0, -1.0])}, "A"),
    ],
)
def test_glft_invalid(kwargs: dict, name: str) -> None:
    args = {"q": 0, "sigma": 2.0, "A": 140.0, "k": 1.5, "gamma": 0.1} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} must"):
        glft(**args)


# ---------------------------------------------------------------------------------------------
# the section 4 simulation

# Avellaneda & Stoikov (2008), section 4, gamma = 0.1, 1,000 simulations:
# (spread, mean profit, std profit, mean final q, std final q)
PAPER_INVENTORY = (1.29, 62.94, 5.89, 0.10, 2.80)
PAPER_SYMMETRIC = (1.29, 67.21, 13.43, -0.018, 8.66)
PAPER_PATHS = 1000
Z = 4.0  # standard errors: a false alarm has probability ~6e-5 per check under normality


def _check_against_paper(result, paper: tuple[float, ...], mean_allowance: float, std_allowance: float) -> None:
    """``|ours - paper| <= Z * combined standard error + allowance * |paper|`` for each statistic.

    The combined standard error adds our sampling error and the paper's (its figures are means
    and standard deviations over 1,000 paths, so they are noisy too). The standard error of a
    sample standard deviation ``s`` over ``n`` paths is ``s / sqrt(2(n - 1))`` (normal
    approximation). The relative allowance covers what sampling cannot: the paper leaves some
    conventions open (see ``simulate_avellaneda_stoikov``), so the model's expectations differ
    from its table by a few percent; the gaps, measured with 50,000 paths, are in each test.
    """
    n, m = result.paths, PAPER_PATHS
    _, p_profit, p_std, p_q, p_std_q = paper
    checks = [
        ("mean profit", result.mean_profit, p_profit, math.hypot(result.se_profit, p_std / math.sqrt(m)), mean_allowance),
        ("mean inventory", result.mean_inventory, p_q, math.hypot(result.se_inventory, p_std_q / math.sqrt(m)), 0.0),
        (
            "std profit",
            result.std_profit,
            p_std,
            math.hypot(result.std_profit / math.sqrt(2 * (n - 1)), p_std / math.sqrt(2 * (m - 1))),
            std_allowance,
        ),
        (
            "std inventory",
            result.std_inventory,
            p_std_q,
            math.hypot(result.std_inventory / math.sqrt(2 * (n - 1)), p_std_q / math.sqrt(2 * (m - 1))),
            std_allowance,
        ),
    ]
    for label, ours, theirs, se, allowance in checks:
        tolerance = Z * se + allowance * abs(theirs)
        assert abs(ours - theirs) <= tolerance, (
            f"{result.name} {label}: {ours:.3f} vs paper {theirs:.3f} (tolerance {tolerance:.3f})"
        )


def _mean_spread_by_hand(gamma: float, sigma: float = 2.0, T: float = 1.0, dt: float = 0.005, k: float = 1.5) -> float:
    steps = round(T / dt)
    mean_tau = T - (steps - 1) * dt / 2  # average of T - t_i over t_i = 0, dt, ..., T - dt
    return gamma * sigma**2 * mean_tau + 2 / gamma * math.log(1 + gamma / k)


def test_simulation_fast_against_paper() -> None:
    # 500 paths: the bands widen with the standard errors (about sqrt(10) wider than the slow test's)
    res = simulate_avellaneda_stoikov(0.1, 500, seed=11)
    _check_against_paper(res.inventory, PAPER_INVENTORY, mean_allowance=0.05, std_allowance=0.15)
    _check_against_paper(res.symmetric, PAPER_SYMMETRIC, mean_allowance=0.05, std_allowance=0.15)
    assert res.inventory.mean_spread == pytest.approx(_mean_spread_by_hand(0.1), rel=1e-12)
    assert res.symmetric.mean_spread == pytest.approx(_mean_spread_by_hand(0.1), rel=1e-12)


def test_inventory_strategy_has_less_risk() -> None:
    # (gamma, bound on std-profit ratio, bound on std-inventory ratio); over 200 seeds at 500 paths
    # the ratios averaged 0.66/0.60, 0.50/0.35, 0.52/0.28 and never exceeded 0.73/0.64, 0.57/0.38, 0.59/0.31
    for gamma, profit_ratio, inventory_ratio in ((0.01, 0.8, 0.7), (0.1, 0.65, 0.45), (0.5, 0.65, 0.4)):
        inv, sym = simulate_avellaneda_stoikov(gamma, 500, seed=3)
        assert inv.std_profit < profit_ratio * sym.std_profit
        assert inv.std_inventory < inventory_ratio * sym.std_inventory
        assert inv.mean_profit < sym.mean_profit + 4 * math.hypot(inv.se_profit, sym.se_profit)


def test_simulation_reproducible_and_seeded() -> None:
    a = simulate_avellaneda_stoikov(0.1, 300, seed=42)
    b = simulate_avellaneda_stoikov(0.1, 300, seed=42)
    c = simulate_avellaneda_stoikov(0.1, 300, seed=43)
    for x, y, z in zip(a, b, c, strict=True):
        assert x == y
        np.testing.assert_array_equal(x.profits, y.profits)
        np.testing.assert_array_equal(x.inventories, y.inventories)
        assert not np.array_equal(x.profits, z.profits)
        assert x.mean_profit != z.mean_profit


def test_common_random_numbers() -> None:
    # with sigma = 0 the inventory term vanishes, so both strategies quote the same prices: they
    # must then fill identically path by path, which holds only if they share the uniform draws
    inv, sym = simulate_avellaneda_stoikov(0.1, 400, seed=5, sigma=0.0)
    np.testing.assert_array_equal(inv.inventories, sym.inventories)
    np.testing.assert_array_equal(inv.profits, sym.profits)
    assert inv.std_inventory > 1.0  # and the fills did happen


def test_simulation_summary_fields() -> None:
    res = simulate_avellaneda_stoikov(0.5, 250, seed=1)
    assert [r.name for r in res] == ["inventory", "symmetric"]
    for r in res:
        assert r.paths == 250 == r.profits.size == r.inventories.size
        assert r.mean_profit == pytest.approx(float(np.mean(r.profits)), rel=1e-12)
        assert r.std_profit == pytest.approx(float(np.std(r.profits, ddof=1)), rel=1e-12)
        assert r.se_profit == pytest.approx(r.std_profit / math.sqrt(250), rel=1e-14)
        assert r.se_inventory == pytest.approx(r.std_inventory / math.sqrt(250), rel=1e-14)
        assert np.all(r.inventories == np.round(r.inventories))  # one unit per fill


def test_simulation_conventions() -> None:
    const = simulate_avellaneda_stoikov(0.1, 200, seed=9, spread_time_term=False)
    # the paper's "spread" column is this constant term: 1.29 for gamma = 0.1
    assert const.inventory.mean_spread == pytest.approx(20 * math.log(1 + 0.1 / 1.5), rel=1e-12)
    assert round(const.symmetric.mean_spread, 2) == 1.29
    # judging fills after the price move adds adverse selection: the constant-spread symmetric
    # strategy then earns less on the same random numbers (about 2.3% in expectation)
    late = simulate_avellaneda_stoikov(0.1, 200, seed=9, spread_time_term=False, fill_after_move=True)
    assert late.symmetric.mean_profit < const.symmetric.mean_profit


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"paths": 1}, "paths"),
        ({"paths": 10.0}, "paths"),
        ({"gamma": 0.0}, "gamma"),
        ({"dt": 0.3}, "dt"),
        ({"sigma": -1.0}, "sigma"),
    ],
)
def test_simulation_invalid(kwargs: dict, name: str) -> None:
    args = {"gamma": 0.1, "paths": 10} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} must"):
        simulate_avellaneda_stoikov(**args)


def test_format_paper_lines() -> None:
    res = simulate_avellaneda_stoikov(0.1, 100, seed=0)
    lines = format_paper_lines(res)
    assert len(lines) == 2
    for line, r in zip(lines, res, strict=True):
        fields = line.split()
        assert fields[0] == r.name
        numbers = [float(f) for f in fields[1:]]
        expected = [r.mean_profit, r.std_profit, r.mean_inventory, r.std_inventory, r.mean_spread, r.se_profit, r.se_inventory]
        assert len(numbers) == len(PAPER_COLUMNS) == 7
        assert numbers == pytest.approx(expected, abs=1e-4)
    with_header = format_paper_lines(res, header=True)
    assert with_header[1:] == lines
    assert with_header[0].startswith("#")
    assert with_header[0].split()[2:] == list(PAPER_COLUMNS)


# ---------------------------------------------------------------------------------------------
# slow: the paper's table at 5,000 paths


@pytest.mark.slow
def test_paper_table_gamma_0_1() -> None:
    # Default model (the brief's: full A-S spread, fills judged at the quoted distance). Gaps to
    # the paper at 50,000 paths: inventory profit 64.85 (+3.0%), std 6.52 (+10.7%), std q 2.93
    # (+4.6%); symmetric profit 68.04 (+1.2%), std 13.23 (-1.5%), std q 8.41 (-2.9%).
    res = simulate_avellaneda_stoikov(0.1, 5000, seed=2008)
    _check_against_paper(res.inventory, PAPER_INVENTORY, mean_allowance=0.05, std_allowance=0.15)
    _check_against_paper(res.symmetric, PAPER_SYMMETRIC, mean_allowance=0.05, std_allowance=0.15)
    # the quoted spread averages 1.49: the paper's 1.29 is its constant part, without gamma sigma^2 (T - t)
    assert res.inventory.mean_spread == pytest.approx(_mean_spread_by_hand(0.1), rel=1e-12)
    assert res.inventory.mean_spread - 0.1 * 4.0 * (1.0 - 199 * 0.005 / 2) == pytest.approx(1.29, abs=0.005)
    # the paper's qualitative result, far beyond noise
    assert res.inventory.std_profit < 0.6 * res.symmetric.std_profit
    assert res.inventory.std_inventory < 0.4 * res.symmetric.std_inventory


@pytest.mark.slow
def test_paper_table_gamma_0_1_table_conventions() -> None:
    # Constant spread (the table's spread column) and fills judged after the price move: closer
    # to the table. Gaps at 50,000 paths: inventory profit 62.20 (-1.2%), std 5.93 (+0.7%),
    # std q 2.95 (+5.4%); symmetric profit 66.96 (-0.4%), std 13.75 (+2.4%), std q 8.96 (+3.5%).
    res = simulate_avellaneda_stoikov(0.1, 5000, seed=2008, spread_time_term=False, fill_after_move=True)
    _check_against_paper(res.inventory, PAPER_INVENTORY, mean_allowance=0.015, std_allowance=0.06)
    _check_against_paper(res.symmetric, PAPER_SYMMETRIC, mean_allowance=0.015, std_allowance=0.06)
    assert round(res.inventory.mean_spread, 2) == 1.29
