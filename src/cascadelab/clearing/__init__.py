"""Clearing: the ledger, accounts, positions, margin, collateral and loans."""
