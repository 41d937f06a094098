"""Node configuration: a frozen dataclass with defaults, loaded from ``DIR/node.toml``.

Every setting is documented in ``etc/node.toml`` (a test checks that).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onestop.config import ConfigError, check_operations

LEVELS = ("province", "city", "county", "township")
LANGS = ("zh", "en")


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    code: str = ""
    name: str = ""
    level: str = "township"
    parent_code: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    timezone: str = "Asia/Shanghai"
    default_lang: str = "zh"
    elderly_age: int = 70
    recall_limit: int = 3
    default_service_minutes: float = 6.0
    ticket_digits: int = 3
    hub_url: str = ""
    hub_pubkey: str = ""
    session_max_age: int = 12 * 3600
    sync_interval_seconds: int = 30
    log_level: str = "info"
    log_format: str = "text"
    metrics_allow: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "node.db"

    def validate(self) -> NodeConfig:
        if not self.code.isdigit() or len(self.code) not in (2, 4, 6, 9, 12):
            raise ConfigError("code", f"division code must be 2, 4, 6, 9 or 12 digits, got {self.code!r}")
        if self.level not in LEVELS:
            raise ConfigError("level", f"must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if not self.name.strip():
            raise ConfigError("name", "the center needs a name")
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"must be 0-65535, got {self.port}")
        if self.default_lang not in LANGS:
            raise ConfigError("default_lang", f"must be one of {', '.join(LANGS)}")
        if not 50 <= self.elderly_age <= 120:
            raise ConfigError("elderly_age", f"must be between 50 and 120, got {self.elderly_age}")
        if not 0 <= self.recall_limit <= 10:
            raise ConfigError("recall_limit", f"must be between 0 and 10, got {self.recall_limit}")
        if self.default_service_minutes <= 0:
            raise ConfigError("default_service_minutes", "must be positive")
        if not 2 <= self.ticket_digits <= 5:
            raise ConfigError("ticket_digits", "must be between 2 and 5")
        if self.hub_url and not self.hub_url.startswith(("http://", "https://")):
            raise ConfigError("hub_url", f"must start with http:// or https://, got {self.hub_url!r}")
        if self.sync_interval_seconds < 1:
            raise ConfigError("sync_interval_seconds", "must be at least 1")
        check_operations(self.log_level, self.log_format, self.metrics_allow)
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except Exception:
            raise ConfigError("timezone", f"unknown time zone {self.timezone!r}") from None
        return self


_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str}
_FIELDS = {f.name for f in dataclasses.fields(NodeConfig)} - {"data_dir", "extra"}


def load(data_dir: str | Path, **overrides: Any) -> NodeConfig:
    """Read ``DIR/node.toml`` (keys are the dataclass fields) and validate it."""
    data_dir = Path(data_dir)
    path = data_dir / "node.toml"
    if not path.exists():
        raise ConfigError(
            "data_dir",
            f"{path} not found; create the node first: onestop node init --data {data_dir} "
            "--code CODE --name NAME --level township",
        )
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown setting (see etc/node.toml for all settings)")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = NodeConfig(data_dir=data_dir, **raw)
    except TypeError as exc:
        raise ConfigError("node.toml", str(exc)) from None
    for f in dataclasses.fields(NodeConfig):
        if f.name in raw and f.type in ("int", "float", "str"):
            want = _TYPES[str(f.type)]
            if not isinstance(raw[f.name], want) or isinstance(raw[f.name], bool):
                raise ConfigError(f.name, f"must be {f.type}, got {type(raw[f.name]).__name__}")
    return cfg.validate()


def dump(cfg: NodeConfig) -> str:
    """TOML text for ``cfg`` (only the plain settings)."""
    lines = ["# onestop node settings; every key is described in etc/node.toml"]
    for f in dataclasses.fields(cfg):
        if f.name in ("data_dir", "extra"):
            continue
        v = getattr(cfg, f.name)
        if isinstance(v, str):
            v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{f.name} = {v}")
    return "\n".join(lines) + "\n"
