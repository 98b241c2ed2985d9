"""Prices: the index, the venues' mark rules, premium index and funding."""

from cascadelab.prices.funding import FundingClock, FundingRule, impact_price, premium_index, rate_units
from cascadelab.prices.index import IndexPrice
from cascadelab.prices.mark import BinanceMark, HyperliquidMark, MarkRule, mark_rule

__all__ = [
    "BinanceMark",
    "FundingClock",
    "FundingRule",
    "HyperliquidMark",
    "IndexPrice",
    "MarkRule",
    "impact_price",
    "mark_rule",
    "premium_index",
    "rate_units",
]
