"""What the node's and the hub's settings share."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
