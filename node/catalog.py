"""The service catalog: departments, functional areas and service items.

A catalog is one JSON file (``schemas/catalog.schema.json``).  :func:`load_catalog` parses it
and checks the schema and the cross-references; :func:`import_catalog` writes it into the
node database in one transaction and keeps one ticket queue per area and per department.

Queue prefixes (the letters of a ticket number, ``A001``) are stable: a queue keeps its
prefix across imports, new queues take the next unused letters (``A`` .. ``Z``, ``AA``,
``AB`` ...), and queues whose area or department left the catalog are deactivated, never
deleted, so old tickets still point at them and their prefix is never reused.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils
from jsonschema.exceptions import ValidationError

import schemas
from node import db as nodedb
from node import events

KINDS = ("licensing", "consultation", "acceptance", "handling", "complaint")
PUBLIC_SERVICE_KINDS = ("consultation", "acceptance", "handling", "complaint")
ROOT = "$"  # the path of errors about the whole document


class CatalogError(ValueError):
    """A catalog is unusable; ``path`` locates the offending value (``items[3].kind``).

    ``errors`` holds every problem found as ``(path, message)`` pairs; the first one is
    ``path``/``message``.
    """

    def __init__(
        self, path: str, message: str, errors: Sequence[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        self.errors: list[tuple[str, str]] = list(errors) if errors else [(path, message)]


def seed_path() -> Path:
    """The catalog shipped with onestop (a curated Shandong-modelled sample)."""
    return Path(__file__).resolve().parent / "seed" / "catalog.json"


# --------------------------------------------------------------------------- loading


def load_catalog(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Parse and fully validate a catalog; return a normalised copy.

    ``source`` is a dict, a path to a JSON file, or a ``str`` holding either JSON text
    (starting with ``{``) or a path.  Raises :class:`CatalogError` on the first problem
    (all problems are in ``.errors``).
    """
    if isinstance(source, dict):
        data: Any = copy.deepcopy(source)
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        data = _parse_json(source)
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(ROOT, f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CatalogError(ROOT, f"{path} is not UTF-8 text") from None
        data = _parse_json(text)

    found = [_describe(e) for e in schemas.validator("catalog").iter_errors(data)]
    if found:
        found.sort(key=lambda pm: _path_key(pm[0]))
        errors = [(_fmt_path(parts), message) for parts, message in found]
        raise CatalogError(errors[0][0], errors[0][1], errors)

    errors = list(_cross_check(data))
    if errors:
        raise CatalogError(errors[0][0], errors[0][1], errors)
    return _normalise(data)


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        raise CatalogError(ROOT, f"duplicate key {exc.args[0]!r} in a JSON object") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(
            ROOT, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def _fmt_path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or ROOT


def _path_key(parts: Sequence[str | int]) -> tuple[tuple[int, int, str], ...]:
    """Sort key putting errors in a stable order (array entries by index)."""
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in parts)


_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError) -> tuple[list[str | int], str]:
    """Turn a jsonschema error into (path parts, message) naming the exact field."""
    parts: list[str | int] = list(error.absolute_path)
    instance = error.instance
    kind = error.validator
    value: Any = error.validator_value
    schema: Any = error.schema
    if kind == "required" and isinstance(instance, dict):
        missing = [k for k in value if k not in instance]
        if missing:
            return [*parts, missing[0]], "required field is missing"
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = set(schema.get("properties", {})) if isinstance(schema, dict) else set()
        extra = sorted(k for k in instance if k not in allowed)
        if extra:
            return (
                [*parts, extra[0]],
                f"unknown field (allowed: {', '.join(sorted(allowed))})",
            )
    if kind == "type":
        expected = value
        if isinstance(expected, list):
            expected = " or ".join(expected)
        got = _JSON_TYPES.get(type(instance), type(instance).__name__)
        return parts, f"must be {expected}, got {got} {_show(instance)}"
    if kind == "enum":
        options = ", ".join(str(v) for v in value)
        return parts, f"must be one of {options}, got {_show(instance)}"
    if kind == "pattern":
        return (
            parts,
            f"{_show(instance)} is not a valid code (must match {value})",
        )
    if kind == "minimum":
        return parts, f"must be >= {value}, got {_show(instance)}"
    if kind == "minItems":
        n = value
        return parts, f"needs at least {n} entr{'y' if n == 1 else 'ies'}"
    if kind == "minLength":
        return parts, "must not be empty"
    if kind == "maxLength":
        return parts, f"is longer than {value} characters"
    return parts, error.message


def _cross_check(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Checks the schema cannot express: unique codes and references that resolve."""
    first_seen: dict[str, str] = {}
    for section, label in (("departments", "department"), ("areas", "area")):
        first_seen = {}
        for i, entry in enumerate(data[section]):
            code = entry["code"]
            where = f"{section}[{i}].code"
            if code in first_seen:
                yield where, f"duplicate {label} code {code!r} (first at {first_seen[code]})"
            else:
                first_seen[code] = where
    departments = {d["code"] for d in data["departments"]}
    areas = {a["code"] for a in data["areas"]}

    first_seen = {}
    for i, item in enumerate(data["items"]):
        base = f"items[{i}]"
        code = item["code"]
        if code in first_seen:
            yield f"{base}.code", f"duplicate item code {code!r} (first at {first_seen[code]})"
        else:
            first_seen[code] = f"{base}.code"
        if item["area"] not in areas:
            yield f"{base}.area", f"unknown area {item['area']!r}"
        seen_depts: set[str] = set()
        for j, dept in enumerate(item["departments"]):
            if dept not in departments:
                yield f"{base}.departments[{j}]", f"unknown department {dept!r}"
            elif dept in seen_depts:
                yield f"{base}.departments[{j}]", f"department {dept!r} is listed twice"
            seen_depts.add(dept)
        seen_materials: set[str] = set()
        for j, material in enumerate(item["materials"]):
            if material["code"] in seen_materials:
                yield (
                    f"{base}.materials[{j}].code",
                    f"duplicate material code {material['code']!r} in this item",
                )
            seen_materials.add(material["code"])
        if item["promised_days"] > item["statutory_days"]:
            yield (
                f"{base}.promised_days",
                f"promised {item['promised_days']} days exceeds the statutory "
                f"{item['statutory_days']} days",
            )


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Integral floats (``20.0``) become ints so the database holds clean integers."""
    for item in data["items"]:
        item["promised_days"] = int(item["promised_days"])
        item["statutory_days"] = int(item["statutory_days"])
    return data


# --------------------------------------------------------------------------- importing


def prefix_letters(n: int) -> str:
    """The n-th queue prefix (0-based): A .. Z, AA .. AZ, BA .. ZZ, AAA ..."""
    if n < 0:
        raise ValueError("n must be >= 0")
    out = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(ord("A") + rem) + out
    return out


def _free_prefixes(used: set[str]) -> Iterator[str]:
    n = 0
    while True:
        candidate = prefix_letters(n)
        n += 1
        if candidate not in used:
            used.add(candidate)
            yield candidate


def import_catalog(db: sqlite_utils.Database, catalog: dict[str, Any]) -> dict[str, Any]:
    """Write a catalog into the node database in one transaction.

    Upserts departments, areas and items; keeps one queue per area (``area:<code>``) and per
    department (``dept:<code>``), reusing existing prefixes and deactivating queues whose
    area or department is gone; appends one ``catalog.imported`` event.  Departments, areas
    and items missing from the catalog are left in place (tickets and cases may point at
    them); ``stale_items`` counts such items.  Returns counts.
    """
    catalog = load_catalog(catalog)  # never trust a dict that may have been edited since
    version = catalog["version"]
    departments = catalog["departments"]
    areas = catalog["areas"]
    items = catalog["items"]

    with nodedb.tx(db) as conn:
        for sort, a in enumerate(areas):
            conn.execute(
                "INSERT INTO areas (code, name_zh, name_en, sort) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
                "name_en = excluded.name_en, sort = excluded.sort",
                [a["code"], a["name_zh"], a["name_en"], sort],
            )
        for sort, d in enumerate(departments):
            conn.execute(
                "INSERT INTO departments (code, name_zh, name_en, sort) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
                "name_en = excluded.name_en, sort = excluded.sort",
                [d["code"], d["name_zh"], d["name_en"], sort],
            )
        for sort, it in enumerate(items):
            conn.execute(
                "INSERT INTO items (code, name_zh, name_en, kind, area, departments, materials,"
                " promised_days, statutory_days, sort) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, "
                "name_en = excluded.name_en, kind = excluded.kind, area = excluded.area, "
                "departments = excluded.departments, materials = excluded.materials, "
                "promised_days = excluded.promised_days, "
                "statutory_days = excluded.statutory_days, sort = excluded.sort",
                [
                    it["code"],
                    it["name_zh"],
                    it["name_en"],
                    it["kind"],
                    it["area"],
                    json.dumps(it["departments"], ensure_ascii=False),
                    json.dumps(it["materials"], ensure_ascii=False),
                    it["promised_days"],
                    it["statutory_days"],
                    sort,
                ],
            )
        queues = _sync_queues(conn, areas, departments)

        item_codes = {it["code"] for it in items}
        stale_items = sum(
            1 for (code,) in conn.execute("SELECT code FROM items") if code not in item_codes
        )
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('catalog_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [version],
        )
        events.append(
            conn,
            "catalog.imported",
            "catalog",
            version,
            {
                "version": version,
                "items": len(items),
                "departments": len(departments),
                "areas": len(areas),
            },
        )

    return {
        "version": version,
        "departments": len(departments),
        "areas": len(areas),
        "items": len(items),
        "stale_items": stale_items,
        **queues,
    }


def _sync_queues(
    conn: sqlite3.Connection, areas: list[dict[str, Any]], departments: list[dict[str, Any]]
) -> dict[str, int]:
    existing = {
        row[0]: {"prefix": row[1], "active": row[2]}
        for row in conn.execute("SELECT code, prefix, active FROM queues")
    }
    used = {q["prefix"] for q in existing.values()}
    free = _free_prefixes(used)
    wanted: list[tuple[str, str, dict[str, Any]]] = [
        *((f"area:{a['code']}", "area", a) for a in areas),
        *((f"dept:{d['code']}", "department", d) for d in departments),
    ]
    created = reactivated = 0
    for sort, (code, kind, ref) in enumerate(wanted):
        old = existing.get(code)
        if old is None:
            conn.execute(
                "INSERT INTO queues (code, kind, ref, prefix, name_zh, name_en, sort, active) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                [code, kind, ref["code"], next(free), ref["name_zh"], ref["name_en"], sort],
            )
            created += 1
        else:
            if not old["active"]:
                reactivated += 1
            conn.execute(
                "UPDATE queues SET kind = ?, ref = ?, name_zh = ?, name_en = ?, sort = ?, "
                "active = 1 WHERE code = ?",
                [kind, ref["code"], ref["name_zh"], ref["name_en"], sort, code],
            )
    keep = {code for code, _, _ in wanted}
    deactivated = 0
    for code, old in existing.items():
        if code not in keep and old["active"] and code.startswith(("area:", "dept:")):
            conn.execute("UPDATE queues SET active = 0 WHERE code = ?", [code])
            deactivated += 1
    return {
        "queues": len(wanted),
        "queues_created": created,
        "queues_reactivated": reactivated,
        "queues_deactivated": deactivated,
    }
