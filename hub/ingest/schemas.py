"""Event bodies against ``schemas/events/<kind>.schema.json``, and the generic event shape."""

from __future__ import annotations

import datetime as dt
import functools
import json
import numbers
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

CASE_OPENED = "case.opened"
SEALED_FIELD = "id_sealed"

_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_ENTITY = re.compile(r"^[a-z][a-z0-9_.-]*$")
MAX_ENTITY_ID = 200


@functools.cache
def event_validator(kind: str) -> Draft202012Validator | None:
    """The validator of ``schemas/events/<kind>.schema.json``, or None when there is none."""
    if not _KIND.match(kind):
        return None
    entry = resources.files("schemas").joinpath("events", f"{kind}.schema.json")
    if not entry.is_file():
        return None
    schema = json.loads(entry.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    try:
        import schemas

        registry = schemas._registry()
    except Exception:  # noqa: BLE001 - $refs to other schemas are optional
        return Draft202012Validator(schema)
    return Draft202012Validator(schema, registry=registry)


def _schema_target(validator: Draft202012Validator, event: Mapping[str, Any]) -> Any:
    """Schemas describe the body; one whose properties name ``kind`` and ``body`` the event.

    ``id_sealed`` (the sync protocol's sealed ID number on ``case.opened``) is checked by the
    hub itself, so it is left out unless the event schema declares it.
    """
    props = validator.schema.get("properties") if isinstance(validator.schema, dict) else None
    props = props if isinstance(props, dict) else {}
    if "kind" in props and "body" in props:
        return dict(event)
    body = event["body"]
    if event["kind"] == CASE_OPENED and SEALED_FIELD in body and SEALED_FIELD not in props:
        return {k: v for k, v in body.items() if k != SEALED_FIELD}
    return body


def event_problem(event: Mapping[str, Any]) -> str | None:
    """Why an event fails its schema (or the generic event shape), or None if it is fine."""
    kind, entity, entity_id, at = event["kind"], event["entity"], event["entity_id"], event["at"]
    if not _KIND.match(kind):
        return f"kind {kind!r} is not a dotted lower-case name"
    if not _ENTITY.match(entity):
        return f"entity {entity!r} is not a lower-case name"
    if not entity_id or len(entity_id) > MAX_ENTITY_ID:
        return f"entity_id must be 1-{MAX_ENTITY_ID} characters"
    try:
        t = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return f"at {at!r} is not an RFC 3339 time"
    if t.tzinfo is None:
        return f"at {at!r} has no time zone"
    if kind == CASE_OPENED and SEALED_FIELD in event["body"]:
        sealed = event["body"][SEALED_FIELD]
        if not isinstance(sealed, str) or not sealed:
            return f"{SEALED_FIELD} must be a non-empty string (hub.sealing.seal)"
    validator = event_validator(kind)
    if validator is None:
        return None
    target = _schema_target(validator, event)
    quick = event_check(kind)
    if quick is not None and quick(target):
        return None  # valid: the full validator would find nothing either
    errors = sorted(validator.iter_errors(target), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(body)"
    return f"{kind} schema: {where}: {first.message}"


# A compiled yes/no form of the event schemas.  jsonschema walks a schema keyword by keyword
# for every instance (about 0.1 ms per event body, more than the signature check); the event
# schemas use a handful of keywords, compiled here into nested closures with jsonschema's own
# semantics (its Draft 2020-12 type checker, re.search for patterns, its ``equal`` for enum).
# A schema with any other keyword is not compiled (None: jsonschema decides).  The closures
# only say "valid"; a body they call invalid goes through jsonschema, which words the error
# (tests/test_hub_fastpaths.py checks both agree on many generated bodies).
_Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "title", "description", "examples", "default",
    "deprecated", "readOnly", "writeOnly", "format",  # format: not asserted (no format_checker)
})  # fmt: skip
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Unsupported(Exception):
    pass


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, numbers.Number)


_TYPES: dict[str, _Check] = {
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: not isinstance(x, bool) and (
        isinstance(x, int) or (isinstance(x, float) and x.is_integer())),
    "number": _is_number,
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, dict),
}  # fmt: skip


def _enum_check(members: list[Any]) -> _Check:
    if all(type(m) is str for m in members):
        allowed = frozenset(members)
        return lambda x: isinstance(x, str) and x in allowed
    try:
        from jsonschema._utils import equal
    except ImportError:  # pragma: no cover - jsonschema moved it: let jsonschema decide
        raise _Unsupported("enum") from None
    return lambda x: any(equal(m, x) for m in members)


_KEYWORDS = frozenset({
    "type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "minItems",
    "items", "required", "properties", "additionalProperties", "oneOf",
})  # fmt: skip


def _compile(schema: Any) -> _Check:
    """A yes/no check with jsonschema's semantics, or :class:`_Unsupported`.

    Keywords apply as in jsonschema: each to the instance types it is about (``pattern`` and
    the lengths to strings, ``minimum``/``maximum`` to numbers, ``items``/``minItems`` to
    arrays, ``required``/``properties``/``additionalProperties`` to objects), ``type``,
    ``enum`` and ``oneOf`` to any instance."""
    if schema is True:
        return lambda x: True
    if schema is False:
        return lambda x: False
    if not isinstance(schema, dict):
        raise _Unsupported(type(schema).__name__)
    unknown = set(schema) - _ANNOTATIONS - _KEYWORDS
    if unknown:
        raise _Unsupported(", ".join(sorted(unknown)))
    if schema.get("$schema", _DIALECT) != _DIALECT:
        raise _Unsupported("$schema")
    type_ok: _Check | None = None
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        tests = tuple(_TYPES[n] for n in names)
        type_ok = tests[0] if len(tests) == 1 else (lambda x: any(t(x) for t in tests))
    enum_ok = _enum_check(list(schema["enum"])) if "enum" in schema else None
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    min_items = schema.get("minItems")
    items = _compile(schema["items"]) if "items" in schema else None
    required = tuple(schema.get("required", ()))
    props = {k: _compile(v) for k, v in schema.get("properties", {}).items()}
    extra = _compile(schema["additionalProperties"]) if "additionalProperties" in schema else None
    one_of = tuple(_compile(s) for s in schema["oneOf"]) if "oneOf" in schema else None
    has_str = search is not None or min_len is not None or max_len is not None
    has_num = minimum is not None or maximum is not None
    has_arr = min_items is not None or items is not None
    has_obj = bool(required or props or extra is not None)

    def check(x: Any) -> bool:
        if type_ok is not None and not type_ok(x):
            return False
        if enum_ok is not None and not enum_ok(x):
            return False
        if isinstance(x, str):
            if has_str:
                if search is not None and search(x) is None:
                    return False
                if min_len is not None and len(x) < min_len:
                    return False
                if max_len is not None and len(x) > max_len:
                    return False
        elif isinstance(x, dict):
            if has_obj:
                for k in required:
                    if k not in x:
                        return False
                for k, v in x.items():
                    sub = props.get(k)
                    if sub is None:
                        if extra is not None and not extra(v):
                            return False
                    elif not sub(v):
                        return False
        elif isinstance(x, list):
            if has_arr:
                if min_items is not None and len(x) < min_items:
                    return False
                if items is not None:
                    for v in x:
                        if not items(v):
                            return False
        elif has_num and _is_number(x):
            if minimum is not None and x < minimum:
                return False
            if maximum is not None and x > maximum:
                return False
        if one_of is not None:
            return sum(1 for s in one_of if s(x)) == 1
        return True

    return check


@functools.cache
def event_check(kind: str) -> _Check | None:
    """The compiled yes/no form of ``event_validator(kind)``'s schema, or None (no schema, or
    a keyword it does not compile): True means valid, False "ask jsonschema why"."""
    validator = event_validator(kind)
    if validator is None:
        return None
    try:
        return _compile(validator.schema)
    except (_Unsupported, KeyError, TypeError, re.error):
        return None
