"""The venue: books, clearing, prices and order entry behind one public API."""

from cascadelab.venue.venue import OrderAck, Reject, Venue

__all__ = ["OrderAck", "Reject", "Venue"]
