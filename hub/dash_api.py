"""Dashboard JSON API (``/api/v1/dash/...``), hub login, health; CSV export of every table.

Every dashboard call needs a login (401) and the division must be in the user's scope (403),
checked before anything else is looked up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hub import dash, staff
from hub import db as hubdb
from hub import models as m
from hub import tree as treem
from hub import users as usersm
from hub.keys import CLOCK, CONFIG, DB
from onestop import __version__, requests
from onestop.clock import iso
from onestop.errors import NotFound
from onestop.openapi import describe, operation

LANG_COOKIE = "lang"


def lang_of(request: web.Request) -> str:
    lang = request.query.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return "en" if lang == "en" else "zh"


#: The JSON object body of a request ({} without one).
json_body = requests.json_object


# -- health, login -------------------------------------------------------------------------------


@operation("Liveness: the hub answers and its database opens", tag="meta", public=True)
async def health(request: web.Request) -> web.Response:
    """Unauthenticated liveness check (deployment health checks use it)."""
    request.app[DB].execute("SELECT 1").fetchone()
    return web.json_response({"ok": True, "service": "onestop-hub", "version": __version__,
                              "name": request.app[CONFIG].name})  # fmt: skip


@operation("Hub accounts within the admin's scope (admin only)", tag="staff")
async def list_users(request: web.Request) -> web.Response:
    user = await staff.require(request, "admin")
    tree = treem.get()
    rows = [u for u in usersm.all_users(request.app[DB])
            if tree.in_scope(user["scope"], u["scope"])]  # fmt: skip
    for u in rows:
        u["disabled"] = bool(u["disabled"])
    return web.json_response({"users": rows})


DASHBOARD: dict[str, Any] = {"type": "object", "properties": {
    "division": {"type": "object"}, "path": {"type": "array"}, "period": {"type": "object"},
    "status": {"type": "object"}, "figures": {"type": "object"}, "children": {"type": "array"},
    "series": {"type": "array"}, "departments": {"type": "array"}, "items": {"type": "array"},
    "attention": {"type": "array"}}}  # fmt: skip

# -- dashboard context ---------------------------------------------------------------------------


class Ctx:
    """What every dashboard handler needs: the user, the division (checked), the period."""

    def __init__(self, request: web.Request, user: dict[str, Any], code: str,
                 query: m.PeriodQuery) -> None:  # fmt: skip
        app = request.app
        self.request = request
        self.user = user
        self.code = code
        self.db = app[DB]
        self.cfg = app[CONFIG]
        self.tree = treem.get()
        self.now: dt.datetime = app[CLOCK]()
        self.today = dash.local_today(self.now, self.cfg.timezone)
        self.query = query
        self.period = dash.period(request.query, self.today)
        self.lang = lang_of(request)
        self._nodes: list[dict[str, Any]] | None = None

    @property
    def nodes(self) -> list[dict[str, Any]]:
        if self._nodes is None:
            self._nodes = dash.node_rows(self.db, self.tree, self.code, self.now,
                                         self.cfg.online_seconds)  # fmt: skip
        return self._nodes

    def division(self) -> dict[str, Any]:
        name = ""
        if not self.tree.known(self.code):
            row = hubdb.one(self.db, "SELECT name FROM nodes WHERE code = ?", [self.code])
            name = row["name"] if row else ""
        d = self.tree.division(self.code, name)
        return {"code": d.code, "name": d.name or d.code, "level": d.level,
                "known": self.tree.known(d.code), "parent": d.parent}  # fmt: skip

    def path(self) -> list[dict[str, Any]]:
        scope = self.user["scope"]
        out = []
        for d in self.tree.path(self.code, self.division()["name"]):
            out.append({"code": d.code, "name": d.name, "level": d.level,
                        "link": self.tree.in_scope(scope, d.code)})  # fmt: skip
        return out


async def context(
    request: web.Request, code: str | None = None, query: type[m.PeriodQuery] = m.PeriodQuery
) -> Ctx:
    """Login, then scope, then existence (so another scope's code is 403 even if unknown),
    then the query string (``query``)."""
    user = await staff.require(request)
    code = code or request.match_info.get("code") or user["scope"]
    staff.check_scope(user, code)
    tree = treem.get()
    if not tree.known(code) and hubdb.one(
        request.app[DB], "SELECT 1 AS x FROM nodes WHERE code = ?", [code]
    ) is None:  # fmt: skip
        raise NotFound(f"no division or enrolled center with code {code}", field="code")
    return Ctx(request, user, code, requests.query(request, query))


def summary(c: Ctx) -> dict[str, Any]:
    """Everything a dashboard page shows (it polls this for live updates)."""
    p = c.period
    trend = p if p.days >= 7 else dash.Period(p.end - dt.timedelta(days=6), p.end, "trend")
    status = dash.status_summary(c.tree, c.code, c.nodes)
    return {
        "division": c.division(), "path": c.path(), "period": p.wire(),
        "today": c.today.isoformat(),
        "generated_at": iso(c.now, "seconds")
        .replace("+00:00", "Z"),
        "online_seconds": c.cfg.online_seconds, "refresh_seconds": c.cfg.refresh_seconds,
        "status": status,
        "figures": dash.figures(c.db, c.code, p, c.today),
        "children": dash.children(c.db, c.tree, c.code, p, c.today, c.nodes),
        "series": dash.series(c.db, c.code, trend),
        "trend_period": trend.wire(),
        "departments": dash.breakdown(c.db, c.code, p, c.today, "dept", c.lang),
        "items": dash.breakdown(c.db, c.code, p, c.today, "item", c.lang),
        "attention": dash.attention(c.nodes),
        "center": next((n for n in c.nodes if n["code"] == c.code), None),
        "user": {"username": c.user["username"], "role": c.user["role"],
                 "scope": c.user["scope"]},
    }  # fmt: skip


def table_rows(c: Ctx, table: str) -> list[dict[str, Any]]:
    p = c.period
    if table == "children":
        return dash.children(c.db, c.tree, c.code, p, c.today, c.nodes)
    if table == "departments":
        return dash.breakdown(c.db, c.code, p, c.today, "dept", c.lang)
    if table == "items":
        return dash.breakdown(c.db, c.code, p, c.today, "item", c.lang)
    if table == "series":
        return dash.series(c.db, c.code, p)
    if table == "nodes":
        return c.nodes
    if table == "alerts":
        state = getattr(c.query, "state", "open")
        return dash.alert_rows(c.db, c.tree, c.code, state=state)
    raise NotFound(f"no table {table!r}; tables: {', '.join(dash.TABLES)}", field="table")


def csv_response(c: Ctx, table: str, rows: list[dict[str, Any]]) -> web.Response:
    p = c.period
    name = f"{c.code}-{table}-{p.start.isoformat()}-{p.end.isoformat()}.csv"
    return web.Response(
        body=dash.csv_bytes(table, rows, c.lang),
        content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; "
                 f"filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"},
    )  # fmt: skip


# -- handlers ------------------------------------------------------------------------------------


@operation(
    "Dashboard of the user's scope (same as /dash/{scope})",
    tag="dashboard",
    query=m.PeriodQuery,
    returns=DASHBOARD,
    errors=(422,),
)
async def dash_root(request: web.Request) -> web.Response:
    c = await context(request)
    return web.json_response(summary(c))


@operation(
    "Dashboard of a division: center status, service figures, children, daily series, "
    "departments, items, centers needing attention",
    tag="dashboard",
    query=m.PeriodQuery,
    returns=DASHBOARD,
    errors=(404, 422),
)
async def dash_summary(request: web.Request) -> web.Response:
    c = await context(request)
    return web.json_response(summary(c))


TABLE_DOCS = {
    "children": "Child divisions (and the center at this level): status dot, centers online, "
                "lag, backlog, alerts and service figures of each subtree",
    "departments": "Service figures per department over the period",
    "items": "Service figures per service item over the period",
    "series": "Daily service figures over the period (time series)",
    "nodes": "Every enrolled center of the subtree: online/offline, last contact, lag, newest "
             "record, backlog, key status, open alerts",
    "alerts": "Alerts of the subtree's centers (state=open|resolved|all)",
}  # fmt: skip


def _table_handler(table: str) -> Any:
    model = m.AlertsTableQuery if table == "alerts" else m.TableQuery

    async def handler(request: web.Request) -> web.Response:
        c = await context(request, query=model)
        rows = table_rows(c, table)
        if getattr(c.query, "format", "json") == "csv":
            return csv_response(c, table, rows)
        return web.json_response({"division": c.division(), "period": c.period.wire(),
                                  table: rows})  # fmt: skip

    handler.__name__ = f"dash_{table}"
    return describe(handler, TABLE_DOCS[table], tag="dashboard", query=model, errors=(404, 422),
                    content={"application/json": {"schema": {"type": "object"}},
                             "text/csv": {"schema": {"type": "string"}}})  # fmt: skip


TABLE_HANDLERS = {t: _table_handler(t) for t in dash.TABLES}
