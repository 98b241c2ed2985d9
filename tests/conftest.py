"""Shared test set-up: make the test directory importable (liquidation helpers live in tests/liq_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
