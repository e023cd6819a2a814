"""The engine composes sources, formats and stores into running pipelines."""

from sluice.engine.engine import Engine

__all__ = ["Engine"]
