"""The clearing house: ledger, accounts, settlement, funding, lending, margin and the scan."""
