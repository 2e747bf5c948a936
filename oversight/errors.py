"""Errors that mean "the user asked for something that cannot work": printed as one line."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """Bad input from the user: a value out of range, an unknown choice, a missing path, an
    unreachable database. A ValueError, as a bad argument to a constructor is."""


def built(node: Any, what: str) -> Any:
    """Instantiate a config node (a judge, a protocol, a role), or a one-line ConfigError."""
    from hydra.utils import instantiate  # the package needs no Hydra to define its errors

    try:
        return instantiate(node, _convert_="all")
    except Exception as e:  # Hydra wraps the real cause several layers deep
        cause = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise ConfigError(f"cannot build {what}: {cause}") from None
