"""The batched liquidation engine (being rebuilt on arrays; for now the reference engine)."""

from cascadelab.liquidation.reference import ReferenceEngine as LiquidationEngine

__all__ = ["LiquidationEngine"]
