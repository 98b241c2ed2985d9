"""The venue: books, clearing, prices and the risk engine behind one public API."""

from cascadelab.records import Reject
from cascadelab.venue.venue import BatchOutcome, OrderAck, StepReport, Venue, requests

__all__ = ["BatchOutcome", "OrderAck", "Reject", "StepReport", "Venue", "requests"]
