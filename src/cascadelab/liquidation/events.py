"""The liquidation event log: every order, fill, takeover, fund movement, ADL close and bad debt."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

import polars as pl


class Ev(StrEnum):
    """Kinds of liquidation event."""

    LIQUIDATION_START = "liquidation_start"
    ORDERS_CANCELLED = "orders_cancelled"
    LIQUIDATION_ORDER = "liquidation_order"
    LIQUIDATION_FILL = "liquidation_fill"
    CLEARANCE_FEE = "clearance_fee"
    COMPLIANT = "compliant"
    TAKEOVER = "takeover"
    COLLATERAL_TAKEN = "collateral_taken"
    DEBT_TAKEN = "debt_taken"
    FUND_IN = "fund_in"
    FUND_OUT = "fund_out"
    ADL_TRIGGER = "adl_trigger"
    ADL_CLOSE = "adl_close"
    BAD_DEBT = "bad_debt"
    UNWIND_ORDER = "unwind_order"
    UNWIND_FILL = "unwind_fill"


@dataclass
class Event:
    """One row of the log; fields that do not apply stay at their defaults."""

    ts: int
    kind: Ev
    account: int = -1
    symbol: str = ""
    side: int = 0
    qty: int = 0
    price: int = 0
    amount: int = 0  # money units (fees, fund flows, deficits)
    pnl: int = 0
    score: float = 0.0
    rank: int = 0
    fund: str = ""
    note: str = ""


@dataclass
class EventLog:
    """Append-only list of :class:`Event`, exportable as a Polars frame."""

    rows: list[Event] = field(default_factory=list)

    def add(self, ts: int, kind: Ev, **fields: object) -> None:
        """Record one event."""
        self.rows.append(Event(ts, kind, **fields))

    def of(self, kind: Ev) -> list[Event]:
        """All events of one kind, in order."""
        return [e for e in self.rows if e.kind == kind]

    def frame(self) -> pl.DataFrame:
        """The log as a table (one column per field)."""
        if not self.rows:
            return pl.DataFrame(schema={k: pl.Utf8 for k in Event.__dataclass_fields__})
        return pl.DataFrame([asdict(e) | {"kind": str(e.kind)} for e in self.rows])
