"""Node configuration: a frozen dataclass with defaults, loaded from ``DIR/node.toml``.

Every setting is documented in ``etc/node.toml`` (a test checks that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from node import hall as hall_settings
from onestop.config import ConfigError, check_operations, dump_toml, load_toml

LEVELS = ("province", "city", "county", "township")
LANGS = ("zh", "en")
QUEUE_CODE = re.compile(r"(dept|area):[a-z][a-z0-9-]*")


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
    keep_overnight_queues: str = ""
    public_url: str = ""
    center_address: str = ""
    center_phone: str = ""
    max_live_tickets_per_id: int = 2
    #: Per queue: where to wait, opening hours, cut-off (:mod:`node.hall`).
    queues: dict[str, Any] = field(default_factory=dict)
    followup_callback_workdays: int = 1
    followup_fix_workdays: int = 5

    @property
    def db_path(self) -> Path:
        return self.data_dir / "node.db"

    def public_link(self, path: str) -> str | None:
        """``path`` (``/s/...``) under ``public_url``; None when the setting is empty."""
        return self.public_url.rstrip("/") + path if self.public_url else None

    @property
    def hall(self) -> dict[str, hall_settings.QueueHall]:
        """The ``queues`` settings checked (:func:`node.hall.parse`)."""
        return hall_settings.parse(self.queues)

    @property
    def kept_queues(self) -> frozenset[str]:
        """Queue codes of ``keep_overnight_queues``: their waiting and suspended tickets
        outlive the day (:mod:`node.daybreak`)."""
        return frozenset(q.strip() for q in self.keep_overnight_queues.split(",") if q.strip())

    def validate(self) -> NodeConfig:
        if not self.code.isdigit() or len(self.code) not in (2, 4, 6, 9, 12):
            raise ConfigError(
                "code", f"division code must be 2, 4, 6, 9 or 12 digits, got {self.code!r}"
            )
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
            raise ConfigError(
                "hub_url", f"must start with http:// or https://, got {self.hub_url!r}"
            )
        if self.sync_interval_seconds < 1:
            raise ConfigError("sync_interval_seconds", "must be at least 1")
        for key in ("followup_callback_workdays", "followup_fix_workdays"):
            days = getattr(self, key)
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 30:
                raise ConfigError(
                    key, f"must be a number of working days from 1 to 30, got {days!r}"
                )
        if self.followup_callback_workdays > self.followup_fix_workdays:
            raise ConfigError(
                "followup_callback_workdays", "the call back cannot be due after the fix"
            )
        problem = public_url_problem(self.public_url)
        if problem:
            raise ConfigError("public_url", problem)
        if not 1 <= self.max_live_tickets_per_id <= 50:
            raise ConfigError(
                "max_live_tickets_per_id",
                f"must be between 1 and 50, got {self.max_live_tickets_per_id}",
            )
        if len(self.center_address) > 200:
            raise ConfigError("center_address", "must be at most 200 characters")
        if self.center_phone and not re.fullmatch(r"[0-9][0-9 ()+-]{4,30}", self.center_phone):
            raise ConfigError(
                "center_phone",
                f"must be a phone number such as 0531-12345678, got {self.center_phone!r}",
            )
        hall_settings.parse(self.queues)
        bad = sorted(q for q in self.kept_queues if not QUEUE_CODE.fullmatch(q))
        if bad:
            raise ConfigError(
                "keep_overnight_queues",
                f"queue codes are dept:<code> or area:<code>, got {', '.join(bad)}",
            )
        check_operations(self.log_level, self.log_format, self.metrics_allow)
        try:
            ZoneInfo(self.timezone)
        except Exception:
            raise ConfigError("timezone", f"unknown time zone {self.timezone!r}") from None
        return self


def public_url_problem(value: str) -> str | None:
    """What is wrong with a ``public_url`` (empty is fine), or None."""
    if not value:
        return None
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 (a port out of range raises)
    except ValueError:
        return f"is not a URL: {value!r}"
    if url.scheme not in ("http", "https") or not url.hostname:
        return (
            "must be the address citizens' phones reach, starting with http:// or https://, "
            f"e.g. https://zwfw.example.gov.cn, got {value!r}"
        )
    if url.query or url.fragment or url.username is not None:
        return f"must have no query, fragment or user name, got {value!r}"
    return None


def load(data_dir: str | Path, **overrides: Any) -> NodeConfig:
    """Read ``DIR/node.toml`` (keys are the dataclass fields) and validate it."""
    return load_toml(
        NodeConfig,
        data_dir,
        "node.toml",
        f"create the node first: onestop node init --data {data_dir} --code CODE --name NAME --level township",
        **overrides,
    )


def dump(cfg: NodeConfig) -> str:
    """TOML text for ``cfg`` (only the plain settings)."""
    return dump_toml(cfg, "onestop node settings; every key is described in etc/node.toml")
