"""The venue: books, clearing, prices and the risk engine behind one public API.

``build(profile, perps, ...)`` returns a :class:`Venue` under a real venue's rules with
prices, funding and its liquidation engine attached; :meth:`Venue.step` runs one step.
"""

from cascadelab.records import Reject
from cascadelab.venue.profiles import PROFILES, Sourced, VenueProfile, build, profile
from cascadelab.venue.venue import BatchOutcome, OrderAck, StepReport, Venue, VenueError, requests

__all__ = [
    "PROFILES",
    "BatchOutcome",
    "OrderAck",
    "Reject",
    "Sourced",
    "StepReport",
    "Venue",
    "VenueError",
    "VenueProfile",
    "build",
    "profile",
    "requests",
]
