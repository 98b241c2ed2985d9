"""Limit order books: the fast array book, its reference twin, and shared codes."""

from cascadelab.book.codes import STP, TIF, CancelReason, Op, Side, Status
from cascadelab.book.fast import BatchResult, OrderBook, op_row
from cascadelab.book.reference import ReferenceBook

__all__ = [
    "STP",
    "TIF",
    "BatchResult",
    "CancelReason",
    "Op",
    "OrderBook",
    "ReferenceBook",
    "Side",
    "Status",
    "op_row",
]
