"""Hub configuration: a frozen dataclass with defaults, loaded from ``DIR/hub.toml``.

Every setting is documented in ``etc/hub.toml`` (a test checks that).  The key files and the
database live next to ``hub.toml`` in the data directory (see the properties below).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from onestop.config import ConfigError, check_operations, dump_toml, load_toml


@dataclass(frozen=True)
class HubConfig:
    data_dir: Path
    name: str = "省级政务服务数据汇聚中心"
    host: str = "127.0.0.1"
    port: int = 8090
    timezone: str = "Asia/Shanghai"
    max_body_mb: int = 64
    max_batch_records: int = 5000
    max_records_page: int = 5000
    request_max_skew_seconds: int = 300
    online_seconds: int = 300
    session_max_age: int = 12 * 3600
    refresh_seconds: int = 10
    log_level: str = "info"
    log_format: str = "text"
    metrics_allow: str = ""

    # -- files in the data directory ---------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.data_dir / "hub.db"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "hub.key"

    @property
    def pub_path(self) -> Path:
        return self.data_dir / "hub.pub"

    @property
    def seal_key_path(self) -> Path:
        return self.data_dir / "hub-seal.key"

    @property
    def seal_pub_path(self) -> Path:
        return self.data_dir / "hub-seal.pub"

    @property
    def link_key_path(self) -> Path:
        return self.data_dir / "hub-link.key"

    def validate(self) -> HubConfig:
        if not self.name.strip():
            raise ConfigError("name", "the hub needs a name")
        if not self.host.strip():
            raise ConfigError("host", "must not be empty")
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"must be 0-65535, got {self.port}")
        if not 1 <= self.max_body_mb <= 1024:
            raise ConfigError("max_body_mb", f"must be between 1 and 1024, got {self.max_body_mb}")
        if not 1 <= self.max_batch_records <= 100_000:
            raise ConfigError(
                "max_batch_records", f"must be between 1 and 100000, got {self.max_batch_records}"
            )
        if not 1 <= self.max_records_page <= 100_000:
            raise ConfigError(
                "max_records_page", f"must be between 1 and 100000, got {self.max_records_page}"
            )
        if not 10 <= self.request_max_skew_seconds <= 3600:
            raise ConfigError(
                "request_max_skew_seconds",
                f"must be between 10 and 3600, got {self.request_max_skew_seconds}",
            )
        if not 10 <= self.online_seconds <= 7 * 86400:
            raise ConfigError(
                "online_seconds", f"must be between 10 and 604800, got {self.online_seconds}"
            )
        if not 60 <= self.session_max_age <= 30 * 86400:
            raise ConfigError(
                "session_max_age", f"must be between 60 and 2592000, got {self.session_max_age}"
            )
        if not 2 <= self.refresh_seconds <= 3600:
            raise ConfigError(
                "refresh_seconds", f"must be between 2 and 3600, got {self.refresh_seconds}"
            )
        check_operations(self.log_level, self.log_format, self.metrics_allow)
        try:
            ZoneInfo(self.timezone)
        except Exception:
            raise ConfigError("timezone", f"unknown time zone {self.timezone!r}") from None
        return self


def load(data_dir: str | Path, **overrides: Any) -> HubConfig:
    """Read ``DIR/hub.toml`` (keys are the dataclass fields) and validate it."""
    return load_toml(
        HubConfig,
        data_dir,
        "hub.toml",
        f"create the hub first: onestop hub init --data {data_dir}",
        **overrides,
    )


def dump(cfg: HubConfig) -> str:
    """TOML text for ``cfg`` (only the plain settings)."""
    return dump_toml(cfg, "onestop hub settings; every key is described in etc/hub.toml")
