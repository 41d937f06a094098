"""Links a citizen's phone opens: the ticket status page, a case's status, a rating.

They go under the node's ``public_url``; without it, under the address the browser used
(the kiosk's ``Host``) unless that is a loopback address (``127.0.0.1``, ``localhost``,
``::1``), which no phone can reach: then there is no link, the page shows the short
reference instead of a QR code, and the node logs a warning once.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from aiohttp import web

from node.config import NodeConfig
from node.tickets import Issued

log = logging.getLogger("onestop.node")

_warned: set[str] = set()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a Host header's name, without the port) names this machine only."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def public_base(config: NodeConfig, request: web.Request) -> str | None:
    """The base URL (no trailing slash) phones reach this node at, or None."""
    if config.public_url:
        return config.public_url.rstrip("/")
    url = request.url
    if not url.host or is_loopback(url.host):
        if "loopback" not in _warned:
            _warned.add("loopback")
            log.warning(
                "public_url is not set and the page was opened at %s: QR codes are left out "
                "(set public_url in node.toml to the address phones reach)",
                request.host,
            )
        return None
    return f"{request.scheme}://{request.host}"


def public_link(config: NodeConfig, request: web.Request, path: str) -> str | None:
    """``path`` (``/s/TOKEN``) under :func:`public_base`, or None."""
    base = public_base(config, request)
    return base + path if base is not None else None


def issued_answer(config: NodeConfig, request: web.Request, issued: Issued) -> dict[str, Any]:
    """What the kiosk gets back for a new ticket, with its status page's full address."""
    out = issued.answer()
    out["status_link"] = public_link(config, request, out["status_url"])
    return out
