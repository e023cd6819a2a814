"""Sluice: an operational SQL database with native streaming pipelines."""

from sluice.connection import Connection, connect
from sluice.errors import (
    CatalogError,
    DatabaseLockedError,
    NotSupportedError,
    ParseError,
    SluiceError,
    TerminalError,
    TransientError,
)
from sluice.result import Result

__version__ = "0.1.0"

__all__ = [
    "CatalogError",
    "Connection",
    "DatabaseLockedError",
    "NotSupportedError",
    "ParseError",
    "Result",
    "SluiceError",
    "TerminalError",
    "TransientError",
    "__version__",
    "connect",
]
