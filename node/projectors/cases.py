"""Projectors of the cases events (see :mod:`node.projection`)."""

from __future__ import annotations

from typing import Any

PROJECTORS: dict[str, Any] = {}
