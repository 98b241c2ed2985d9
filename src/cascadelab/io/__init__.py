"""Importers and exporters for external data (LOBSTER, ...)."""
