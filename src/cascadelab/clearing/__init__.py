"""The clearing house: ledger, accounts, settlement, funding, lending, margin and the scan.

:class:`ClearingHouse` is the facade; each job lives in its own module (``ledger``,
``accounts``, ``settlement``, ``funding``, ``lending``, ``margin``, ``scan``, ``risk``).
"""

from cascadelab.clearing.accounts import AccountState, MarginMode
from cascadelab.clearing.collateral import CollateralAsset, CollateralError, Valuation, fixed, from_book, from_index, redemption
from cascadelab.clearing.core import ClearingError, LoanTerms, PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.ledger import ConservationError, Ledger, LedgerError
from cascadelab.clearing.margin import MarginError, MarginTiers, ScanResult, bankruptcy_price, liquidation_price
from cascadelab.clearing.scan import AccountMargin

__all__ = [
    "AccountMargin",
    "AccountState",
    "ClearingError",
    "ClearingHouse",
    "CollateralAsset",
    "CollateralError",
    "ConservationError",
    "Ledger",
    "LedgerError",
    "LoanTerms",
    "MarginError",
    "MarginMode",
    "MarginTiers",
    "PerpSpec",
    "ScanResult",
    "Valuation",
    "bankruptcy_price",
    "fixed",
    "from_book",
    "from_index",
    "liquidation_price",
    "redemption",
]
