"""The market's participants (BRIEF §2, §4, §5): one small agent protocol, single agents and vectorized populations.

Every agent sees only the venue's public API (:class:`~cascadelab.agents.base.Client` and the
market-data feed in its :class:`~cascadelab.agents.base.Observation`) and answers with
:class:`~cascadelab.agents.base.Requests`. :mod:`~cascadelab.agents.quoting` holds the
Avellaneda–Stoikov and GLFT quoting rules and the paper's Monte Carlo.
"""

from cascadelab.agents.arbitrage import Arbitrageur, ArbParams
from cascadelab.agents.base import Agent, Client, External, News, Observation, Requests, Schedule, Watch
from cascadelab.agents.funds import FundParams, HedgedFund
from cascadelab.agents.loopers import LooperParams, Loopers
from cascadelab.agents.market_maker import MakerParams, MakerState, MarketMaker, Trigger
from cascadelab.agents.noise import NewsSellerParams, NewsSellers, NoiseParams, NoiseTraders
from cascadelab.agents.population import Behaviour, LeveragedTraders, TraderParams
from cascadelab.agents.quoting import avellaneda_stoikov, glft, simulate_avellaneda_stoikov
from cascadelab.agents.volatility import MultiScaleVolatility, Regime, regime

__all__ = [
    "Agent", "ArbParams", "Arbitrageur", "Behaviour", "Client", "External", "FundParams", "HedgedFund", "LeveragedTraders",
    "LooperParams", "Loopers", "MakerParams", "MakerState", "MarketMaker", "MultiScaleVolatility", "News", "NewsSellerParams",
    "NewsSellers", "NoiseParams", "NoiseTraders", "Observation", "Regime", "Requests", "Schedule", "TraderParams", "Trigger",
    "Watch", "avellaneda_stoikov", "glft", "regime", "simulate_avellaneda_stoikov",
]  # fmt: skip
