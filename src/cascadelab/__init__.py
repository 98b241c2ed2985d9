"""cascadelab: a simulator of crypto derivatives exchanges under stress."""

__version__ = "0.1.0"
