"""Reports of a run: PNG figures (matplotlib, offline)."""
