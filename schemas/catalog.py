"""The service catalog document: departments, functional areas and service items.

A catalog is one JSON file (``schemas/catalog.schema.json``) shared by nodes (which import it)
and the hub (which signs and publishes versions of it).  :func:`load_catalog` parses it and
checks the schema and the cross-references; :func:`seed_path` is the catalog shipped with
onestop (``schemas/seed/catalog.json``, a curated Shandong-modelled sample).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError

import schemas

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
