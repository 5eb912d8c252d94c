"""leon: a terminal chat client for Claude with local memory."""

__version__ = "0.1.0"
