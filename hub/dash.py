"""Dashboard figures: read from the rollup tables (:mod:`hub.rollups`) and the node registry,
never from the ``records`` table.

Every function takes a division code; figures for it are the subtree rows (``self = 0``) of
``rollup_day`` / ``rollup_day_item`` / ``rollup_open``, so one indexed range read answers any
level, province to township.  Center status (online, lag, backlog, keys, alerts) comes from
``nodes`` and ``alerts``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from hub import catalog as catalogm
from hub import db as hubdb
from hub import rollups
from hub.tree import Tree
from onestop.errors import Invalid
from onestop.i18n import lazy_gettext, lazy_pgettext
from sync import figures as rules

METRICS = rollups.METRICS
PRESETS = {"today": 1, "7d": 7, "30d": 30}
MAX_DAYS = 366
TABLES = ("children", "departments", "items", "series", "nodes", "alerts")
SEVERE_ALERTS = ("fork", "rollback", "revoked_key")


# --------------------------------------------------------------------------- period


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date
    preset: str  # today | 7d | 30d | custom

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def wire(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                "preset": self.preset, "days": self.days}  # fmt: skip

    def query(self) -> str:
        if self.preset != "custom":
            return f"preset={self.preset}"
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} must be a date YYYY-MM-DD", field=name) from None


def period(query: Mapping[str, str], today: dt.date) -> Period:
    """``?preset=today|7d|30d`` or ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (default: today)."""
    start, end = query.get("from") or "", query.get("to") or ""
    preset = query.get("preset") or ""
    if start or end:
        d0 = _date(start, "from") if start else None
        d1 = _date(end, "to") if end else today
        d0 = d0 or d1
        if d0 > d1:
            raise Invalid("from must not be after to", field="from")
        if (d1 - d0).days + 1 > MAX_DAYS:
            raise Invalid(f"a period is at most {MAX_DAYS} days", field="from")
        return Period(d0, d1, "custom")
    preset = preset or "today"
    if preset not in PRESETS:
        raise Invalid(f"preset must be one of {', '.join(PRESETS)}", field="preset")
    return Period(today - dt.timedelta(days=PRESETS[preset] - 1), today, preset)


def local_today(now: dt.datetime, tz: str) -> dt.date:
    return now.astimezone(ZoneInfo(tz)).date()


# --------------------------------------------------------------------------- labels


def _labels_of(catalog: Mapping[str, Any]) -> dict[str, dict[str, tuple[str, str]]]:
    out: dict[str, dict[str, tuple[str, str]]] = {"dept": {}, "item": {}}
    for key, src in (("dept", "departments"), ("item", "items")):
        for x in catalog.get(src) or []:
            if isinstance(x, dict) and x.get("code"):
                out[key][str(x["code"])] = (
                    str(x.get("name_zh") or x["code"]),
                    str(x.get("name_en") or x.get("name_zh") or ""),
                )
    return out


_label_cache: dict[str, Any] = {"id": -1, "labels": None}
UNASSIGNED = {"dept": lazy_gettext("未分部门"), "item": lazy_gettext("未选事项")}


def labels(db: sqlite_utils.Database) -> dict[str, dict[str, tuple[str, str]]]:
    """Department and item names (zh, en): the shipped catalog, overlaid by the latest one
    the hub published."""
    cid = catalogm.latest_id(db)
    key = (hubdb.database_file(db), cid)
    if _label_cache["id"] != key:
        merged = _labels_of(catalogm.seed())
        if cid:
            pub = _labels_of(catalogm.catalog_at(db, cid))
            for k in merged:
                merged[k].update(pub[k])
        _label_cache.update(id=key, labels=merged)
    result: dict[str, dict[str, tuple[str, str]]] = _label_cache["labels"]
    return result


def label(names: Mapping[str, tuple[str, str]], code: str, lang: str, kind: str) -> str:
    if not code:
        return UNASSIGNED[kind].text(lang)
    zh, en = names.get(code, (code, code))
    return en if lang == "en" and en else zh


# --------------------------------------------------------------------------- figures


# Overdue (:func:`sync.figures.overdue`): a promised deadline before today, in SQL below.
_SUMS = ", ".join(f"COALESCE(SUM({m}), 0) AS {m}" for m in METRICS)


def derive(m: Mapping[str, Any]) -> dict[str, Any]:
    """Counters plus the figures shown: averages, shares, satisfaction (:mod:`sync.figures`)."""
    out: dict[str, Any] = {k: int(m.get(k) or 0) for k in METRICS}
    out["avg_wait_s"] = rules.mean_seconds(out["wait_sum"], out["wait_n"])
    out["avg_service_s"] = rules.mean_seconds(out["service_sum"], out["service_n"])
    out["one_visit_share"] = rules.at_most_once_share(
        out["cases_one_visit"], out["cases_delivered"]
    )
    rated = rules.ratings({lv: out[f"rating_{lv}"] for lv in rules.LEVELS})
    out["ratings"] = rated["total"]
    out["satisfaction"] = rated["satisfaction"]
    out["not_bad_share"] = rated["not_bad_share"]
    out["rating_average"] = rated["average"]
    out["bad_ratings"] = rated["bad"]
    out["on_time_share"] = rules.on_time_share(out["cases_completed"], out["cases_late"])
    for k in ("in_review", "overdue"):
        out[k] = int(m.get(k) or 0)
    return out


def totals(db: sqlite_utils.Database, code: str, p: Period, own: int = 0) -> dict[str, Any]:
    row = hubdb.one(
        db,
        f"SELECT {_SUMS} FROM rollup_day WHERE area = ? AND self = ? AND day BETWEEN ? AND ?",
        [code, own, p.start.isoformat(), p.end.isoformat()],
    )
    return dict(row or {})


def open_cases(
    db: sqlite_utils.Database, code: str, today: dt.date, own: int = 0
) -> dict[str, int]:
    row = hubdb.one(
        db,
        "SELECT COALESCE(SUM(n), 0) AS in_review, COALESCE(SUM(CASE WHEN deadline < ? THEN n "
        "ELSE 0 END), 0) AS overdue FROM rollup_open WHERE area = ? AND self = ?",
        [today.isoformat(), code, own],
    )
    return {"in_review": int(row["in_review"]), "overdue": int(row["overdue"])} if row else {}


def figures(db: sqlite_utils.Database, code: str, p: Period, today: dt.date,
            own: int = 0) -> dict[str, Any]:  # fmt: skip
    return derive({**totals(db, code, p, own), **open_cases(db, code, today, own)})


def series(db: sqlite_utils.Database, code: str, p: Period) -> list[dict[str, Any]]:
    """One row per day of the period (zeros where nothing happened)."""
    got = {
        r["day"]: r
        for r in hubdb.rows(
            db,
            f"SELECT day, {', '.join(METRICS)} FROM rollup_day WHERE area = ? AND self = 0 AND "
            "day BETWEEN ? AND ? ORDER BY day",
            [code, p.start.isoformat(), p.end.isoformat()],
        )
    }
    out = []
    for i in range(p.days):
        day = (p.start + dt.timedelta(days=i)).isoformat()
        f = derive(got.get(day, {}))
        f["day"] = day
        out.append(f)
    return out


def breakdown(db: sqlite_utils.Database, code: str, p: Period, today: dt.date, by: str,
              lang: str = "zh") -> list[dict[str, Any]]:  # fmt: skip
    """Figures per department (``by="dept"``) or service item (``by="item"``)."""
    if by not in ("dept", "item"):
        raise ValueError(by)
    cols = "dept, item" if by == "item" else "dept"
    rows = hubdb.rows(
        db,
        f"SELECT {by} AS key, {_SUMS} FROM rollup_day_item WHERE area = ? AND self = 0 AND "
        f"day BETWEEN ? AND ? GROUP BY {by}",
        [code, p.start.isoformat(), p.end.isoformat()],
    )
    opened = {
        r["key"]: r
        for r in hubdb.rows(
            db,
            f"SELECT {by} AS key, SUM(n) AS in_review, SUM(CASE WHEN deadline < ? THEN n ELSE 0 "
            f"END) AS overdue FROM rollup_open WHERE area = ? AND self = 0 GROUP BY {by}",
            [today.isoformat(), code],
        )
    }
    depts = {}
    if by == "item":  # the item's department as counted (its lead department)
        depts = {
            r["item"]: r["dept"]
            for r in hubdb.rows(
                db,
                f"SELECT {cols} FROM rollup_day_item WHERE area = ? AND self = 0 AND day BETWEEN "
                "? AND ? GROUP BY item",
                [code, p.start.isoformat(), p.end.isoformat()],
            )
        }
    names = labels(db)
    out = []
    seen = set()
    for r in rows:
        key = r.pop("key")
        seen.add(key)
        f = derive({**r, **(opened.get(key) or {})})
        out.append(_keyed(f, by, key, names, lang, depts.get(key, "")))
    for key, r in opened.items():
        if key not in seen and r["in_review"]:
            out.append(_keyed(derive(r), by, key, names, lang, ""))
    out.sort(key=lambda f: (-(f["tickets_issued"] + f["cases_received"] + f["in_review"]),
                            f["code"]))  # fmt: skip
    return out


def _keyed(f: dict[str, Any], by: str, key: str, names: Mapping[str, Any], lang: str,
           dept: str) -> dict[str, Any]:  # fmt: skip
    f["code"] = key
    f["name"] = label(names[by], key, lang, by)
    if by == "item":
        f["dept"] = dept
        f["dept_name"] = label(names["dept"], dept, lang, "dept") if dept else ""
    return f


# --------------------------------------------------------------------------- center status


def _range(code: str, tree: Tree) -> tuple[str, list[Any]]:
    """SQL condition on ``node``/``code`` columns for the subtree of ``code``."""
    if code == tree.root:
        return "1 = 1", []
    return "{col} >= ? AND {col} < ?", [code, code + ":"]


def _seconds_since(at: str | None, now: dt.datetime) -> int | None:
    if not at:
        return None
    try:
        then = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0, int((now - then).total_seconds()))


def node_rows(db: sqlite_utils.Database, tree: Tree, code: str, now: dt.datetime,
              online_s: int) -> list[dict[str, Any]]:  # fmt: skip
    """Every enrolled center in the subtree with its replication and key status."""
    cond, params = _range(code, tree)
    nodes = hubdb.rows(
        db,
        "SELECT code, name, status, key_id, last_contact, newest_at, ack_seq, "
        "reported_backlog, last_error, revoked_at FROM nodes WHERE "
        + cond.format(col="code") + " ORDER BY code",
        params,
    )  # fmt: skip
    alerts: dict[str, dict[str, int]] = {}
    for r in db.execute(
        "SELECT node, kind, count(*) FROM alerts WHERE resolved = 0 AND "
        + cond.format(col="node") + " GROUP BY node, kind",
        params,
    ).fetchall():  # fmt: skip
        alerts.setdefault(r[0], {})[r[1]] = int(r[2])
    out = []
    for n in nodes:
        d = tree.division(n["code"], n["name"])
        lag = _seconds_since(n["last_contact"], now)
        if n["status"] != "active":
            state = "revoked"
        elif lag is None:
            state = "never"
        elif lag <= online_s:
            state = "online"
        else:
            state = "offline"
        a = alerts.get(n["code"], {})
        out.append({
            "code": n["code"], "name": d.name if d.level != "unknown" else (n["name"] or n["code"]),
            "level": d.level, "known": tree.known(n["code"]), "parent": d.parent,
            "state": state, "last_contact": n["last_contact"], "lag_s": lag,
            "newest_at": n["newest_at"], "behind_s": _seconds_since(n["newest_at"], now),
            "records": n["ack_seq"], "backlog": n["reported_backlog"],
            "key_status": "active" if n["status"] == "active" else "revoked",
            "key_id": n["key_id"], "alerts": a, "open_alerts": sum(a.values()),
            "last_error": n["last_error"],
        })  # fmt: skip
    return out


def status_summary(tree: Tree, code: str, nodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Centers of a subtree: how many exist, are enrolled, online; lag, backlog, alerts."""
    counts = tree.count_under(code) if tree.known(code) else {}
    states = {"online": 0, "offline": 0, "never": 0, "revoked": 0}
    alerts: dict[str, int] = {}
    lags = [n["lag_s"] for n in nodes if n["lag_s"] is not None and n["state"] != "revoked"]
    behind = [n["behind_s"] for n in nodes if n["behind_s"] is not None]
    for n in nodes:
        states[n["state"]] += 1
        for k, v in n["alerts"].items():
            alerts[k] = alerts.get(k, 0) + v
    known = sum(1 for n in nodes if n["known"])
    divisions = sum(counts.values())
    severe = sum(alerts.get(k, 0) for k in SEVERE_ALERTS) + states["revoked"]
    return {
        "divisions": divisions, "by_level": counts, "enrolled": len(nodes),
        "not_enrolled": max(0, divisions - known), "unknown_codes": len(nodes) - known,
        **states, "max_lag_s": max(lags) if lags else None,
        "max_behind_s": max(behind) if behind else None,
        "backlog": sum(int(n["backlog"] or 0) for n in nodes),
        "alerts": alerts, "open_alerts": sum(alerts.values()),
        "nodes_with_alerts": sum(1 for n in nodes if n["open_alerts"]),
        "health": _health(len(nodes), states, severe, sum(alerts.values())),
    }  # fmt: skip


def _health(enrolled: int, states: Mapping[str, int], severe: int, alerts: int) -> str:
    """green: all online, no alert; amber: some offline or an alert; red: a fork, rollback or
    revoked key, or most centers offline; grey: no center enrolled."""
    if not enrolled:
        return "grey"
    down = states["offline"] + states["never"]
    if severe or down * 2 > enrolled:
        return "red"
    if down or alerts:
        return "amber"
    return "green"


def attention(nodes: Sequence[Mapping[str, Any]], limit: int = 12) -> list[dict[str, Any]]:
    """Centers to look at first: alerts, revoked keys, offline, largest lag."""
    rank = {"revoked": 0, "offline": 2, "never": 3, "online": 4}

    def key(n: Mapping[str, Any]) -> tuple[int, int, str]:
        r = 1 if n["open_alerts"] else rank[n["state"]]
        return (r, -(n["lag_s"] or 0), n["code"])

    bad = [n for n in nodes if n["state"] != "online" or n["open_alerts"]]
    return [dict(n) for n in sorted(bad, key=key)[:limit]]


def alert_rows(db: sqlite_utils.Database, tree: Tree, code: str, limit: int = 500,
               state: str = "open") -> list[dict[str, Any]]:  # fmt: skip
    cond, params = _range(code, tree)
    sql = ("SELECT id, node, kind, message, at, last_at, count, resolved FROM alerts WHERE "
           + cond.format(col="node"))  # fmt: skip
    if state == "open":
        sql += " AND resolved = 0"
    elif state == "resolved":
        sql += " AND resolved = 1"
    rows = hubdb.rows(db, sql + " ORDER BY last_at DESC, id DESC LIMIT ?", [*params, limit])
    for r in rows:
        r["resolved"] = bool(r["resolved"])
    return rows


# --------------------------------------------------------------------------- children


def children(db: sqlite_utils.Database, tree: Tree, code: str, p: Period, today: dt.date,
             nodes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    """One row per child division (and the center at ``code`` itself, ``own``): status and
    figures of its subtree."""
    kids = tree.children(code, [n["code"] for n in nodes])
    by_node = {n["code"]: n for n in nodes}
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, int]] = [(code, 1)] if code in by_node else []
    keys += [(k, 0) for k in kids]
    if not keys:
        return rows
    sums: dict[tuple[str, int], dict[str, Any]] = {}
    opens: dict[tuple[str, int], dict[str, Any]] = {}
    for chunk in _chunks(keys, 400):
        where = " OR ".join("(area = ? AND self = ?)" for _ in chunk)
        flat = [x for k in chunk for x in k]
        for r in hubdb.rows(
            db,
            f"SELECT area, self, {_SUMS} FROM rollup_day WHERE ({where}) AND day BETWEEN ? AND ? "
            "GROUP BY area, self",
            [*flat, p.start.isoformat(), p.end.isoformat()],
        ):
            sums[(r.pop("area"), r.pop("self"))] = r
        for r in hubdb.rows(
            db,
            "SELECT area, self, SUM(n) AS in_review, SUM(CASE WHEN deadline < ? THEN n ELSE 0 "
            f"END) AS overdue FROM rollup_open WHERE ({where}) GROUP BY area, self",
            [today.isoformat(), *flat],
        ):
            opens[(r.pop("area"), r.pop("self"))] = r
    for k, own in keys:
        under = [by_node[k]] if own else [n for n in nodes if _under(tree, n["code"], k)]
        d = tree.division(k, by_node[k]["name"] if k in by_node else "")
        f = derive({**sums.get((k, own), {}), **opens.get((k, own), {})})
        st = status_summary(tree, k, under) if not own else status_summary(tree, "", under)
        if own:
            st["divisions"] = 1
            st["not_enrolled"] = 0
        rows.append({"code": k, "name": d.name, "level": d.level, "known": tree.known(k),
                     "own": bool(own), "has_children": bool(tree.kids.get(k)),
                     "status": st, **f})  # fmt: skip
    return rows


def _under(tree: Tree, node: str, code: str) -> bool:
    return node.startswith(code) if tree.known(code) else node == code


def _chunks(seq: Sequence[Any], n: int) -> list[Sequence[Any]]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]


# --------------------------------------------------------------------------- CSV


COLUMNS: dict[str, list[str]] = {
    "children": ["code", "name", "level", "health", "divisions", "enrolled", "online",
                 "offline", "max_lag_s", "backlog", "open_alerts", "tickets_issued",
                 "tickets_called", "tickets_no_show", "avg_wait_s", "avg_service_s",
                 "cases_received", "cases_accepted", "in_review", "cases_completed", "overdue",
                 "cases_late", "cases_delivered", "cases_one_visit", "one_visit_share",
                 "rating_5", "rating_4", "rating_3", "rating_2", "rating_1", "satisfaction",
                 "followups_opened", "followups_closed", "complaints"],
    "departments": ["code", "name", "tickets_issued", "tickets_called", "tickets_no_show",
                    "avg_wait_s", "avg_service_s", "cases_received", "cases_accepted",
                    "in_review", "cases_completed", "overdue", "cases_late", "cases_delivered",
                    "cases_one_visit", "one_visit_share", "rating_5", "rating_4", "rating_3",
                    "rating_2", "rating_1", "satisfaction", "followups_opened",
                    "followups_closed", "complaints"],
    "series": ["day", "tickets_issued", "tickets_called", "tickets_no_show", "avg_wait_s",
               "avg_service_s", "cases_received", "cases_accepted", "cases_completed",
               "cases_late", "cases_delivered", "cases_one_visit", "rating_5", "rating_4",
               "rating_3", "rating_2", "rating_1", "followups_opened", "followups_closed",
               "complaints"],
    "nodes": ["code", "name", "level", "known", "state", "last_contact", "lag_s", "newest_at",
              "behind_s", "records", "backlog", "key_status", "key_id", "open_alerts",
              "last_error"],
    "alerts": ["id", "node", "kind", "message", "at", "last_at", "count", "resolved"],
}  # fmt: skip
COLUMNS["items"] = ["code", "name", "dept", "dept_name", *COLUMNS["departments"][2:]]
#: CSV headers.
COLUMN_NAMES = {
    "code": lazy_gettext("区划代码"),
    "name": lazy_gettext("名称"),
    "level": lazy_gettext("层级"),
    "health": lazy_gettext("运行状态"),
    "divisions": lazy_gettext("中心数"),
    "enrolled": lazy_gettext("已接入"),
    "online": lazy_gettext("在线"),
    "offline": lazy_gettext("离线"),
    "max_lag_s": lazy_gettext("最大延迟(秒)"),
    "backlog": lazy_gettext("积压"),
    "open_alerts": lazy_gettext("告警"),
    "tickets_issued": lazy_gettext("取号"),
    "tickets_called": lazy_gettext("叫号"),
    "tickets_no_show": lazy_gettext("过号"),
    "avg_wait_s": lazy_gettext("平均等候(秒)"),
    "avg_service_s": lazy_gettext("平均办理(秒)"),
    "cases_received": lazy_gettext("受理"),
    "cases_accepted": lazy_gettext("正式受理"),
    "in_review": lazy_gettext("在办"),
    "cases_completed": lazy_gettext("办结"),
    "overdue": lazy_gettext("超期在办"),
    "cases_late": lazy_pgettext("column", "超期办结"),
    "cases_delivered": lazy_gettext("出件"),
    "cases_one_visit": lazy_pgettext("column", "最多跑一次"),
    "one_visit_share": lazy_gettext("最多跑一次占比"),
    "rating_5": lazy_gettext("非常满意"),
    "rating_4": lazy_gettext("满意"),
    "rating_3": lazy_gettext("基本满意"),
    "rating_2": lazy_gettext("不满意"),
    "rating_1": lazy_gettext("非常不满意"),
    "satisfaction": lazy_gettext("满意率"),
    "followups_opened": lazy_gettext("差评回访"),
    "followups_closed": lazy_gettext("已整改"),
    "complaints": lazy_gettext("投诉"),
    "day": lazy_gettext("日期"),
    "known": lazy_gettext("区划已知"),
    "state": lazy_pgettext("column", "状态"),
    "last_contact": lazy_gettext("最近联系"),
    "lag_s": lazy_gettext("延迟(秒)"),
    "newest_at": lazy_gettext("最新记录时间"),
    "behind_s": lazy_gettext("最新记录距今(秒)"),
    "records": lazy_gettext("记录数"),
    "key_status": lazy_gettext("密钥"),
    "key_id": lazy_gettext("密钥ID"),
    "last_error": lazy_gettext("最近错误"),
    "id": lazy_gettext("编号"),
    "node": lazy_gettext("节点"),
    "kind": lazy_gettext("类型"),
    "message": lazy_gettext("内容"),
    "at": lazy_gettext("首次时间"),
    "last_at": lazy_gettext("最近时间"),
    "count": lazy_gettext("次数"),
    "resolved": lazy_gettext("已处理"),
    "dept": lazy_gettext("部门代码"),
    "dept_name": lazy_gettext("部门"),
}


def csv_bytes(table: str, rows: Sequence[Mapping[str, Any]], lang: str) -> bytes:
    """UTF-8 with a byte order mark (Excel opens Chinese correctly), headers in ``lang``."""
    cols = COLUMNS[table]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([COLUMN_NAMES[c].text(lang) for c in cols])
    for r in rows:
        flat = dict(r)
        st = r.get("status")
        if isinstance(st, Mapping):
            flat.update({k: st.get(k) for k in ("health", "divisions", "enrolled", "online",
                                                 "offline", "max_lag_s", "backlog",
                                                 "open_alerts")})  # fmt: skip
        w.writerow([_csv_value(flat.get(c)) for c in cols])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    return v
