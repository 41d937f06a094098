"""What the node's and the hub's settings share."""

from __future__ import annotations

import ipaddress


class ConfigError(ValueError):
    """A setting is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# -- operations: the log and who may read /metrics (node and hub alike) -------------------------

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


def networks(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``"10.20.0.5, 10.20.1.0/24"`` as networks (an address is a network of one)."""
    out = []
    for part in value.replace(";", ",").split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return out


def check_operations(log_level: str, log_format: str, metrics_allow: str) -> None:
    """Validate the settings ``log_level``, ``log_format`` and ``metrics_allow``."""
    if log_level not in LOG_LEVELS:
        raise ConfigError("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    if log_format not in LOG_FORMATS:
        raise ConfigError(
            "log_format", f"must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}"
        )
    try:
        networks(metrics_allow)
    except ValueError as exc:
        raise ConfigError(
            "metrics_allow", f"must list IP addresses or networks (CIDR), comma-separated: {exc}"
        ) from None
