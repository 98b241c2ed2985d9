"""Prices: index, mark and funding."""
