"""HTML pages of the hub: for now one page listing the enrolled nodes and open alerts.

Dashboards (rollups by region, item and day) are a later issue.
"""

from __future__ import annotations

from html import escape
from typing import Any

from aiohttp import web

from hub import db as hubdb
from hub.keys import CONFIG, DB

_STYLE = (
    "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;"
    "padding:.4em .6em;text-align:left;font-size:.95em}th{background:#f4f4f4}"
    ".revoked{color:#a00}.alert{color:#a00;font-weight:bold}.muted{color:#888}"
    "code{font-size:.9em}"
)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "<span class=muted>—</span>"
    return escape(str(value))


async def index(request: web.Request) -> web.Response:
    db = request.app[DB]
    nodes = hubdb.rows(
        db,
        "SELECT n.*, (SELECT count(*) FROM alerts a WHERE a.node = n.code AND a.resolved = 0) "
        "AS open_alerts FROM nodes n ORDER BY n.code",
    )
    rows = []
    for n in nodes:
        status = (
            "<span class=revoked>已吊销 revoked</span>"
            if n["status"] != "active"
            else "正常 active"
        )
        alerts = f"<span class=alert>{n['open_alerts']}</span>" if n["open_alerts"] else "0"
        rows.append(
            "<tr>"
            f"<td><code>{escape(n['code'])}</code></td><td>{_cell(n['name'])}</td>"
            f"<td>{_cell(n['level'])}</td><td>{_cell(n['parent'])}</td><td>{status}</td>"
            f"<td><code>{escape(n['key_id'])}</code></td><td>{n['ack_seq']}</td>"
            f"<td>{_cell(n['reported_backlog'])}</td><td>{_cell(n['last_contact'])}</td>"
            f"<td>{alerts}</td><td>{_cell(n['last_error'])}</td>"
            "</tr>"
        )
    name = escape(request.app[CONFIG].name)
    body = (
        f"<!doctype html><html lang=zh><meta charset=utf-8><title>{name}</title>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<style>{_STYLE}</style><body><h1>{name}</h1>"
        f"<p>{len(nodes)} 个节点 nodes · <a href='/api/v1/nodes'>JSON</a> · "
        "<a href='/api/v1/alerts'>告警 alerts</a></p>"
        "<table><thead><tr><th>代码 code</th><th>名称 name</th><th>层级 level</th>"
        "<th>上级 parent</th><th>密钥 key</th><th>key id</th><th>已确认 ack seq</th>"
        "<th>积压 backlog</th><th>最近联系 last contact</th><th>告警 alerts</th>"
        "<th>最近错误 last error</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
    return web.Response(text=body, content_type="text/html")
