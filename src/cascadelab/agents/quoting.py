"""Closed-form market-making quotes and the Avellaneda–Stoikov Monte Carlo.

* :func:`avellaneda_stoikov`: reservation price and optimal bid/ask of Avellaneda & Stoikov,
  "High-frequency trading in a limit order book", Quantitative Finance 8(3), 2008, 217–224.
* :func:`glft`: the closed-form (asymptotic) optimal depths of Guéant, Lehalle &
  Fernandez-Tapia, "Dealing with the inventory risk: a solution to the market making
  problem", Mathematics and Financial Economics 7(4), 2013, 477–507.
* :func:`simulate_avellaneda_stoikov`: the simulation of section 4 of Avellaneda & Stoikov,
  comparing the inventory strategy with a symmetric one, and :func:`format_paper_lines`
  to print it.

All functions are pure and vectorized with NumPy; the formulas broadcast like NumPy
arithmetic, so scalars give NumPy scalars and arrays give arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatOrArray = float | NDArray[np.float64]

INVENTORY = "inventory"
SYMMETRIC = "symmetric"

#: Column order of :func:`format_paper_lines`, after the strategy name.
PAPER_COLUMNS: tuple[str, ...] = (
    "mean_profit",
    "std_profit",
    "mean_final_inventory",
    "std_final_inventory",
    "mean_spread",
    "se_mean_profit",
    "se_mean_final_inventory",
)


class PaperRow(NamedTuple):
    """One row of the Avellaneda–Stoikov (2008) section 4 tables (1,000 simulations each)."""

    spread: float
    mean_profit: float
    std_profit: float
    mean_inventory: float
    std_inventory: float


#: The paper's published figures, keyed by gamma then strategy name.
PAPER_TABLES: dict[float, dict[str, PaperRow]] = {
    0.01: {INVENTORY: PaperRow(1.33, 66.78, 8.76, -0.02, 4.70), SYMMETRIC: PaperRow(1.33, 67.36, 13.40, -0.31, 8.65)},
    0.1: {INVENTORY: PaperRow(1.29, 62.94, 5.89, 0.10, 2.80), SYMMETRIC: PaperRow(1.29, 67.21, 13.43, -0.018, 8.66)},
    0.5: {INVENTORY: PaperRow(1.15, 33.92, 4.72, -0.02, 1.88), SYMMETRIC: PaperRow(1.15, 66.20, 14.53, 0.25, 8.24)},
}


def _as_float(name: str, value: ArrayLike) -> NDArray[np.float64]:
    """``value`` as a float array; a ValueError naming ``name`` if it is not numeric."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from exc


def _require(ok: NDArray[np.bool_] | bool, name: str, rule: str, value: ArrayLike) -> None:
    """Raise ValueError naming ``name`` unless ``ok`` holds everywhere (NaN fails every rule)."""
    if not np.all(ok):
        raise ValueError(f"{name} must be {rule}, got {value!r}")


def _finite(**values: NDArray[np.float64] | float) -> None:
    """Raise ValueError naming the first argument that is not finite everywhere (``nan``, ``inf``, ``-inf``)."""
    for name, value in values.items():
        _require(np.isfinite(value), name, "finite (not nan or inf)", value)


@dataclass(frozen=True)
class AvellanedaStoikovQuotes:
    """Avellaneda–Stoikov quotes: reservation price, bid, ask and total spread (ask − bid)."""

    reservation: FloatOrArray
    bid: FloatOrArray
    ask: FloatOrArray
    spread: FloatOrArray


def avellaneda_stoikov(
    s: ArrayLike, q: ArrayLike, t: ArrayLike, T: ArrayLike, sigma: ArrayLike, gamma: ArrayLike, k: ArrayLike
) -> AvellanedaStoikovQuotes:
    """Avellaneda–Stoikov (2008) quotes for mid ``s``, inventory ``q`` at time ``t`` of horizon ``T``.

    Reservation price ``r = s − q·γ·σ²·(T − t)`` (the agent's indifference price: a long
    inventory lowers it) and total spread ``γσ²(T − t) + (2/γ)·ln(1 + γ/k)``, quoted
    symmetrically around ``r``: ``bid = r − spread/2``, ``ask = r + spread/2``. These are the
    paper's approximate optimal quotes (section 3) for arrival intensities
    ``A·exp(−k·δ)``; ``σ`` is the absolute (price-unit) volatility of the mid. All arguments
    broadcast against each other.

    Raises ValueError if any argument is not finite (``nan``, ``inf``), or if ``gamma <= 0``,
    ``k <= 0``, ``sigma < 0`` or ``t > T`` anywhere.
    """
    s, q, t, T = _as_float("s", s), _as_float("q", q), _as_float("t", t), _as_float("T", T)
    sigma, gamma, k = _as_float("sigma", sigma), _as_float("gamma", gamma), _as_float("k", k)
    _finite(s=s, q=q, t=t, T=T, sigma=sigma, gamma=gamma, k=k)
    _require(gamma > 0, "gamma", "> 0", gamma)
    _require(k > 0, "k", "> 0", k)
    _require(sigma >= 0, "sigma", ">= 0", sigma)
    _require(t <= T, "t", "<= T", t)
    risk = gamma * sigma**2 * (T - t)
    reservation = s - q * risk
    with np.errstate(over="ignore"):
        spread = risk + (2.0 / gamma) * np.log1p(gamma / k)
    if not (np.all(np.isfinite(spread)) and np.all(np.isfinite(reservation))):
        raise ValueError(f"the quotes overflow for gamma={gamma!r}, k={k!r}: gamma is too close to 0 or the inputs too large")
    return AvellanedaStoikovQuotes(reservation, reservation - spread / 2, reservation + spread / 2, spread)


@dataclass(frozen=True)
class GLFTDepths:
    """Guéant–Lehalle–Fernandez-Tapia optimal depths: distances of the bid and ask from the mid."""

    bid_depth: FloatOrArray
    ask_depth: FloatOrArray


def glft(q: ArrayLike, sigma: ArrayLike, A: ArrayLike, k: ArrayLike, gamma: ArrayLike) -> GLFTDepths:
    """Closed-form optimal quote depths of Guéant, Lehalle & Fernandez-Tapia (2013) for inventory ``q``.

    The asymptotic (long-horizon) approximation of "Dealing with the inventory risk: a solution
    to the market making problem", Math. Finan. Econ. 7 (2013) 477–507, without an inventory
    bound and with ξ = γ, for arrival intensities ``A·exp(−k·δ)`` and mid volatility ``σ``::

        c1 = (1/γ)·ln(1 + γ/k)
        c2 = sqrt( σ²γ / (2kA) · (1 + γ/k)^(1 + k/γ) )
        bid_depth = c1 + (2q + 1)/2 · c2
        ask_depth = c1 − (2q − 1)/2 · c2

    Depths are distances from the mid (bid = mid − bid_depth, ask = mid + ask_depth) in the
    units of ``σ`` (ticks in the paper's examples). Convention: ``q > 0`` is a long inventory,
    which deepens the bid and tightens the ask, so the agent sells more than it buys; the
    spread ``bid_depth + ask_depth = 2·c1 + c2`` does not depend on ``q``. A depth can be
    negative for large ``|q|`` (a quote through the mid). All arguments broadcast.

    Raises ValueError if any argument is not finite (``nan``, ``inf``), or if ``gamma <= 0``,
    ``k <= 0``, ``A <= 0`` or ``sigma < 0`` anywhere.
    """
    q, sigma, A = _as_float("q", q), _as_float("sigma", sigma), _as_float("A", A)
    k, gamma = _as_float("k", k), _as_float("gamma", gamma)
    _finite(q=q, sigma=sigma, A=A, k=k, gamma=gamma)
    _require(gamma > 0, "gamma", "> 0", gamma)
    _require(k > 0, "k", "> 0", k)
    _require(A > 0, "A", "> 0", A)
    _require(sigma >= 0, "sigma", ">= 0", sigma)
    log_term = np.log1p(gamma / k)
    c1 = log_term / gamma
    c2 = np.sqrt(sigma**2 * gamma / (2 * k * A) * np.exp((1 + k / gamma) * log_term))
    return GLFTDepths(c1 + (2 * q + 1) / 2 * c2, c1 - (2 * q - 1) / 2 * c2)


@dataclass(frozen=True)
class StrategyResult:
    """Summary of one strategy over the simulated paths; standard deviations use ``ddof=1``.

    ``se_profit`` and ``se_inventory`` are the standard errors of ``mean_profit`` and
    ``mean_inventory`` (``std / sqrt(paths)``). ``mean_spread`` is the quoted ask − bid
    averaged over steps and paths. ``profits`` and ``inventories`` hold the per-path values.
    """

    name: str
    paths: int
    mean_profit: float
    std_profit: float
    mean_inventory: float
    std_inventory: float
    mean_spread: float
    se_profit: float
    se_inventory: float
    profits: NDArray[np.float64] = field(repr=False, compare=False)
    inventories: NDArray[np.float64] = field(repr=False, compare=False)

    @classmethod
    def from_paths(
        cls, name: str, profits: NDArray[np.float64], inventories: NDArray[np.float64], mean_spread: float
    ) -> StrategyResult:
        """Summarise per-path final profits and inventories."""
        n = profits.size
        std_profit, std_inventory = float(profits.std(ddof=1)), float(inventories.std(ddof=1))
        return cls(
            name,
            n,
            float(profits.mean()),
            std_profit,
            float(inventories.mean()),
            std_inventory,
            float(mean_spread),
            std_profit / math.sqrt(n),
            std_inventory / math.sqrt(n),
            profits,
            inventories,
        )


class SimulationResults(NamedTuple):
    """The two strategies of one simulation, run on the same random numbers."""

    inventory: StrategyResult
    symmetric: StrategyResult


def simulate_avellaneda_stoikov(
    gamma: float,
    paths: int,
    seed: int | None = None,
    s0: float = 100.0,
    T: float = 1.0,
    sigma: float = 2.0,
    dt: float = 0.005,
    k: float = 1.5,
    A: float = 140.0,
    *,
    spread_time_term: bool = True,
    fill_after_move: bool = False,
) -> SimulationResults:
    """Monte Carlo of Avellaneda & Stoikov (2008), section 4: inventory vs symmetric quoting.

    Each of the ``T/dt`` steps, at time ``t``, every path: (1) each strategy posts a bid and an
    ask with spread ``γσ²(T − t) + (2/γ)·ln(1 + γ/k)``: the *inventory* strategy around its
    reservation price (:func:`avellaneda_stoikov`), the *symmetric* strategy around the mid
    with the same spread; (2) the bid is hit, one unit, if a uniform draw is below
    ``A·exp(−k·δ_b)·dt`` with ``δ_b = s − bid``, and the ask lifted likewise with
    ``δ_a = ask − s`` and a second draw (both can fill in one step; a probability above 1,
    for a quote through the mid, is a sure fill); (3) the mid moves ``±σ·sqrt(dt)`` with
    probability 1/2. Profit at ``T`` is ``cash + q·s_T``.

    Common random numbers: both strategies see the same price path and the same two uniform
    draws per step, so their difference reflects the quoting rule, not sampling noise. The
    loop runs over time steps with arrays over paths; draws come from
    ``np.random.default_rng(seed)`` in a fixed order, so a seed reproduces the run exactly.

    Two keyword switches reproduce readings of the paper's table that the text leaves open:
    ``spread_time_term=False`` quotes the constant spread ``(2/γ)·ln(1 + γ/k)`` (the table's
    "spread" column equals this), and ``fill_after_move=True`` judges fills by the distance
    from the quotes to the mid *after* the step's move (quotes posted before the price moves),
    which adds a little adverse selection.
    """
    args = {"gamma": gamma, "s0": s0, "T": T, "sigma": sigma, "dt": dt, "k": k, "A": A}
    _finite(**{name: _as_float(name, value) for name, value in args.items()})
    for name, value in (("gamma", gamma), ("T", T), ("dt", dt), ("k", k), ("A", A)):
        _require(value > 0, name, "> 0", value)
    _require(sigma >= 0, "sigma", ">= 0", sigma)
    if isinstance(paths, bool) or not isinstance(paths, int | np.integer) or paths < 2:
        raise ValueError(f"paths must be an integer >= 2, got {paths!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    steps = round(T / dt)
    if steps < 1 or not math.isclose(steps * dt, T, rel_tol=1e-9):
        raise ValueError(f"dt must divide T into a whole number of steps, got T={T!r}, dt={dt!r}")

    rng = np.random.default_rng(seed)
    jump = sigma * math.sqrt(dt)
    constant_spread = (2.0 / gamma) * math.log1p(gamma / k)
    s = np.full(paths, float(s0))
    q = np.zeros((2, paths))  # row 0: inventory strategy, row 1: symmetric strategy
    cash = np.zeros((2, paths))
    spread_sum = np.zeros(2)
    for i in range(steps):
        tau = T - i * dt
        u = rng.random((3, paths))  # price direction, bid fill, ask fill: shared by both strategies
        spread = gamma * sigma**2 * tau + constant_spread if spread_time_term else constant_spread
        centre = np.stack([s - q[0] * gamma * sigma**2 * tau, s])
        bid, ask = centre - spread / 2, centre + spread / 2
        s_next = s + np.where(u[0] < 0.5, jump, -jump)
        ref = s_next if fill_after_move else s
        bought = u[1] < A * np.exp(-k * (ref - bid)) * dt
        sold = u[2] < A * np.exp(-k * (ask - ref)) * dt
        q += bought.astype(np.float64) - sold
        cash += np.where(sold, ask, 0.0) - np.where(bought, bid, 0.0)
        spread_sum += (ask - bid).mean(axis=1)
        s = s_next
    profit = cash + q * s
    return SimulationResults(
        *(
            StrategyResult.from_paths(name, profit[j], q[j], spread_sum[j] / steps)
            for j, name in enumerate((INVENTORY, SYMMETRIC))
        )
    )


def format_paper_lines(
    results: SimulationResults | tuple[StrategyResult, ...], header: bool = False, digits: int = 4
) -> list[str]:
    """One whitespace-separated line per strategy, for ``cascadelab paper avellaneda-stoikov``.

    Each line starts with the strategy name (``inventory``, ``symmetric``) followed by, in
    order (:data:`PAPER_COLUMNS`): mean profit, standard deviation of profit, mean final
    inventory, standard deviation of final inventory, average spread, standard error of the
    mean profit, standard error of the mean final inventory; plain fixed-point numbers with
    ``digits`` decimals, so a script can split and parse them. With ``header=True`` a first
    line ``# strategy <columns...>`` names the columns; it starts with ``#`` so parsers can skip it.
    """
    lines = [" ".join(("# strategy", *PAPER_COLUMNS))] if header else []
    for r in results:
        values = (r.mean_profit, r.std_profit, r.mean_inventory, r.std_inventory, r.mean_spread, r.se_profit, r.se_inventory)
        lines.append(" ".join((r.name, *(f"{v:.{digits}f}" for v in values))))
    return lines
