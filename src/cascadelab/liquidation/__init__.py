"""The three liquidation tiers: book liquidation, insurance funds and takeover, auto-deleveraging.

:class:`~cascadelab.liquidation.reference.ReferenceEngine` is the per-account Python engine;
:class:`~cascadelab.liquidation.engine.LiquidationEngine` runs the same phases on arrays and
is tested against it.
"""

from __future__ import annotations

from cascadelab.liquidation.config import LiquidationConfig, config_from_params
from cascadelab.liquidation.reference import ReferenceEngine


def engine_class(name: str) -> type:
    """The engine class by name: ``"batched"`` or ``"reference"``."""
    if name == "reference":
        return ReferenceEngine
    if name == "batched":
        from cascadelab.liquidation.engine import LiquidationEngine

        return LiquidationEngine
    raise ValueError(f"engine must be 'batched' or 'reference', got {name!r}")


def __getattr__(name: str) -> type:
    """``LiquidationEngine`` on demand (it imports the venue's compiled paths)."""
    if name == "LiquidationEngine":
        return engine_class("batched")
    raise AttributeError(name)


__all__ = ["LiquidationConfig", "LiquidationEngine", "ReferenceEngine", "config_from_params", "engine_class"]
