"""Liquidation: the book tier, insurance funds and takeover, auto-deleveraging, the event log."""
