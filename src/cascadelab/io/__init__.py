"""Importers for external data: LOBSTER order books (with a verifying replay) and position files."""

from cascadelab.io.lobster import LobsterError, Messages, ReplayReport, load_messages, load_orderbook, replay
from cascadelab.io.positions import Position, PositionFileError, read_positions

__all__ = [
    "LobsterError",
    "Messages",
    "Position",
    "PositionFileError",
    "ReplayReport",
    "load_messages",
    "load_orderbook",
    "read_positions",
    "replay",
]
