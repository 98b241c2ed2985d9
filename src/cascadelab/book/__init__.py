"""Limit order books: the fast array book, its reference twin, and synthetic streams.

The codes a book speaks (sides, operation kinds, time in force, self-trade prevention,
statuses, cancel reasons) and its record layouts live in :mod:`cascadelab.records`.
"""

from cascadelab.book.fast import L2, BatchResult, BookSet, OrderBook, RestingOrder, new_ops, op_record
from cascadelab.book.reference import ReferenceBook
from cascadelab.records import STP, TIF, CancelReason, Op, Side, Status

__all__ = [
    "L2",
    "STP",
    "TIF",
    "BatchResult",
    "BookSet",
    "CancelReason",
    "Op",
    "OrderBook",
    "ReferenceBook",
    "RestingOrder",
    "Side",
    "Status",
    "new_ops",
    "op_record",
]
