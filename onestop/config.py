"""Settings files: what the node's and the hub's settings share.

Each service keeps a frozen dataclass of its settings (defaults, ``validate()`` naming the field)
and reads ``DIR/<name>.toml`` with :func:`load_toml`: a broken file, an unknown key or a value
of the wrong type is a :class:`ConfigError` naming the field, never a traceback.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Protocol, TypeVar


class ConfigError(ValueError):
    """A setting is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Settings(Protocol):
    @property
    def data_dir(self) -> Path: ...

    def validate(self) -> Any: ...


S = TypeVar("S", bound=Settings)

_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str}


def load_toml(cls: type[S], data_dir: str | Path, filename: str, missing_hint: str,
              **overrides: Any) -> S:  # fmt: skip
    """Read ``DIR/filename`` (keys are the fields of ``cls`` but ``data_dir``), apply the
    ``overrides`` that are not None, check the types and validate."""
    data_dir = Path(data_dir)
    path = data_dir / filename
    if not path.exists():
        raise ConfigError("data_dir", f"{path} not found; {missing_hint}")
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(filename, f"not valid TOML: {exc}") from None
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "data_dir"}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(unknown[0], f"unknown setting (see etc/{filename} for all settings)")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    for name, value in raw.items():
        want = _TYPES.get(str(fields[name].type))
        if want is not None and (not isinstance(value, want) or isinstance(value, bool)):
            raise ConfigError(name, f"must be {fields[name].type}, got {type(value).__name__}")
    cfg = cls(data_dir=data_dir, **raw)  # type: ignore[call-arg]
    cfg.validate()
    return cfg


def dump_toml(cfg: Any, header: str) -> str:
    """TOML text for the plain settings of ``cfg`` (every field but ``data_dir``)."""
    lines = [f"# {header}"]
    tables: list[str] = []
    for f in dataclasses.fields(cfg):
        if f.name == "data_dir":
            continue
        v = getattr(cfg, f.name)
        if isinstance(v, dict):  # tables of tables ([queues."dept:edu"]) go last
            for key, entry in v.items():
                tables.append(f"\n[{f.name}.{_toml_str(key)}]")
                tables += [f"{k} = {_toml_str(str(x))}" for k, x in entry.items()]
            continue
        if isinstance(v, str):
            v = _toml_str(v)
        elif isinstance(v, bool):
            v = "true" if v else "false"
        lines.append(f"{f.name} = {v}")
    return "\n".join(lines + tables) + "\n"


def _toml_str(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
