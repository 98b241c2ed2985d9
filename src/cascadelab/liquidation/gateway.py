"""What the risk engine needs from its venue (the venue implements it; nothing here imports the venue)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from cascadelab.clearing.house import ClearingHouse
from cascadelab.records import CancelReason


class Outcome(Protocol):
    """What a batch of requests did."""

    acks: np.ndarray
    fills: np.ndarray
    cancels: np.ndarray


class Gateway(Protocol):
    """The venue as the risk engine sees it: its clearing house, its clock, order entry and batch cancels."""

    clearing: ClearingHouse
    now_ns: int
    fill_log: list[np.ndarray]

    def open_accounts(self, n: int) -> np.ndarray: ...
    def submit_risk_batch(self, reqs: np.ndarray) -> Outcome: ...
    def cancel_accounts(
        self, mask: np.ndarray, reason: CancelReason, ts: int | None = None, instrument: int = -1
    ) -> np.ndarray: ...
