"""Declarative option specs: each plugin (source, format, transform) states the ``CONFIG`` keys it
takes once, and that one spec validates a pipeline's ``CONFIG``, words its errors (an unknown key
names the valid ones) and documents the plugin (``OptionSpec.doc``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice.errors import SluiceError


@dataclass(frozen=True)
class Option:
    key: str
    default: int | float | str | bool
    doc: str
    minimum: float | None = None  # numbers: the smallest value accepted


@dataclass(frozen=True)
class OptionSpec:
    """The ``CONFIG`` keys of one plugin (``what``: how errors name it, e.g. ``FS CONFIG``).
    With ``passthrough``, keys it does not declare go to that library unchecked (Kafka's
    librdkafka properties), and the library names a bad one."""

    what: str
    options: tuple[Option, ...] = ()
    passthrough: str | None = None

    @property
    def keys(self) -> list[str]:
        return sorted(o.key for o in self.options)

    def parse(
        self,
        config: Mapping[str, Any],
        *,
        error: type[SluiceError] = SluiceError,
        pipeline: str | None = None,
    ) -> dict[str, Any]:
        """Every declared key with its value (the default where ``config`` has none), plus the
        passed-through keys. Raises ``error`` naming the key and what it takes."""
        unknown = sorted(set(config) - set(self.keys))
        if unknown and self.passthrough is None:
            raise error(
                f"unknown {self.what} key(s) {unknown}; valid keys: {self.keys}", pipeline=pipeline
            )
        values: dict[str, Any] = {k: config[k] for k in unknown}
        for option in self.options:
            value = config.get(option.key, option.default)
            values[option.key] = _checked(self.what, option, value, error, pipeline)
        return values

    def doc(self) -> str:
        """The keys as a Markdown list, for the README and ``--help``."""
        lines = [f"- `{o.key}` (default `{json.dumps(o.default)}`): {o.doc}" for o in self.options]
        if self.passthrough:
            lines.append(f"- any other key goes to {self.passthrough}")
        return "\n".join(lines)


def _checked(
    what: str, option: Option, value: Any, error: type[SluiceError], pipeline: str | None
) -> Any:
    want = type(option.default)
    ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if ok and option.minimum is not None and value < option.minimum:
        ok = False
    if ok:
        return value
    shape = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[want]
    at_least = f" >= {option.minimum:g}" if option.minimum is not None else ""
    raise error(
        f"{what} {option.key} must be {shape}{at_least}, got {json.dumps(value)}",
        pipeline=pipeline,
    )


def json_object(
    text: str | None, what: str, error: type[SluiceError] = SluiceError
) -> dict[str, Any]:
    """A ``CONFIG``/``CREDENTIALS`` clause's JSON text as a dict ({} when absent)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
