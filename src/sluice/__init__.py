"""Sluice: an operational SQL database with native streaming pipelines."""

from sluice.connection import Connection, connect
from sluice.errors import (
    CatalogError,
    DatabaseLockedError,
    NotSupportedError,
    ParseError,
    SluiceError,
    TerminalError,
    TransformError,
    TransientError,
)
from sluice.result import Result
from sluice.transforms.python import REJECT_COLUMN, reject

__version__ = "0.1.0"

__all__ = [
    "REJECT_COLUMN",
    "CatalogError",
    "Connection",
    "DatabaseLockedError",
    "NotSupportedError",
    "ParseError",
    "Result",
    "SluiceError",
    "TerminalError",
    "TransformError",
    "TransientError",
    "__version__",
    "connect",
    "reject",
]
