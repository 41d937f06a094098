"""Event bodies against ``schemas/events/<kind>.schema.json``, and the generic event shape.

The schemas declare JSON Schema draft 2020-12, and jsonschema's Draft 2020-12 validator is
what decides.  It walks a schema keyword by keyword for every body (about 0.1 ms per event,
more than the signature check), so each kind's schema is also compiled once, by
fastjsonschema, into a yes/no check of a few microseconds: a body it calls valid is valid;
a body it refuses goes through jsonschema, which decides and words the error (its path and
message name the field).  ``tests/test_hub_fastpaths.py`` checks both agree on generated
valid and invalid bodies.

fastjsonschema implements drafts 04, 06 and 07 (a 2020-12 schema gets its draft-07 code), so
a schema is compiled only when draft 07 means the same as 2020-12 for every keyword in it
(:data:`_SAME`, :data:`_ANNOTATIONS`), after three rewrites that keep 2020-12's meaning:

- ``$ref`` to another schema of the ``schemas`` package (``urn:onestop:schemas:catalog#/...``)
  is pointed at a copy of that schema under the root's ``$defs``: fastjsonschema resolves a
  ``$ref`` only within the document it compiles (it cannot join a fragment to a ``urn:``);
- ``$ref`` next to other keywords moves into an ``allOf``: draft 07 ignores the siblings of
  a ``$ref``, 2020-12 applies them;
- a ``pattern``'s ``$`` becomes ``(?=\\n?\\Z)``, what ``$`` means to ``re.search``
  (jsonschema): the end, or before a final newline; fastjsonschema would turn it into
  ``\\Z`` and refuse a string ending in a newline.

Anything else gets no fast check and is left to jsonschema alone: the keywords new in 2019-09
or 2020-12 (``prefixItems``, ``$dynamicRef``, ``$dynamicAnchor``, ``$anchor``,
``unevaluatedProperties``, ``unevaluatedItems``, ``dependentRequired``, ``dependentSchemas``,
``minContains``, ``maxContains``), ``items`` as an array (draft 07's tuple form), the
keywords draft 07 asserts and 2020-12 only annotates (``contentEncoding``,
``contentMediaType``) and any other; ``format`` is an annotation in both (no format checker).
The event schemas use none of these today.  fastjsonschema's ``array`` also admits tuples,
which JSON bodies never hold.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from referencing import Registry

import schemas

CASE_OPENED = "case.opened"
SEALED_FIELD = "id_sealed"

_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_ENTITY = re.compile(r"^[a-z][a-z0-9_.-]*$")
MAX_ENTITY_ID = 200

_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Check = Callable[[Any], bool]


# --------------------------------------------------------------------------- per kind


@functools.cache
def event_schema(kind: str) -> dict[str, Any] | None:
    """``schemas/events/<kind>.schema.json``, checked against its meta-schema; None if none."""
    if not _KIND.match(kind):
        return None
    entry = resources.files("schemas").joinpath("events", f"{kind}.schema.json")
    if not entry.is_file():
        return None
    schema: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


def _registry() -> Registry | None:
    """The ``schemas`` package's schemas by ``$id``, for ``$ref`` between files."""
    try:
        return schemas._registry()
    except Exception:  # noqa: BLE001 - $refs to other schemas are optional
        return None


@functools.cache
def event_validator(kind: str) -> Draft202012Validator | None:
    """jsonschema's validator of the kind's schema (it decides and words errors), or None."""
    schema = event_schema(kind)
    if schema is None:
        return None
    registry = _registry()
    if registry is None:
        return Draft202012Validator(schema)
    return Draft202012Validator(schema, registry=registry)


@functools.cache
def event_check(kind: str) -> Check | None:
    """The kind's fast yes/no check (True: valid; False: ask :func:`event_validator` why), or
    None when the kind has no schema or its schema is left to jsonschema."""
    schema = event_schema(kind)
    return None if schema is None else compile_check(schema, _registry())


def compile_check(schema: Any, registry: Registry | None = None) -> Check | None:
    """``schema`` (draft 2020-12) compiled by fastjsonschema into a yes/no check, or None when
    draft 07 would mean something else for it (see the module's docstring)."""
    try:
        bundled = _Bundle(registry).root(schema)
        validate = fastjsonschema.compile(  # the messages come from jsonschema: no details
            bundled, use_default=False, use_formats=False, detailed_exceptions=False
        )
    except (_Unsupported, ValueError, TypeError, KeyError, re.error):  # ValueError: a bad schema
        return None
    invalid = fastjsonschema.JsonSchemaException

    def check(x: Any) -> bool:
        try:
            validate(x)
        except invalid:
            return False
        return True

    return check


# --------------------------------------------------------------------------- an event


def _schema_target(schema: Any, event: Mapping[str, Any]) -> Any:
    """Schemas describe the body; one whose properties name ``kind`` and ``body`` the event.

    ``id_sealed`` (the sync protocol's sealed ID number on ``case.opened``) is checked by the
    hub itself, so it is left out unless the event schema declares it.
    """
    props = schema.get("properties") if isinstance(schema, dict) else None
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
            return f"{SEALED_FIELD} must be a non-empty string (sync.sealing.seal)"
    schema = event_schema(kind)
    if schema is None:
        return None
    quick = event_check(kind)
    if quick is not None and quick(_schema_target(schema, event)):
        return None  # valid: jsonschema would find nothing either
    validator = event_validator(kind)
    if validator is None:
        return None
    target = _schema_target(validator.schema, event)
    errors = sorted(validator.iter_errors(target), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(body)"
    return f"{kind} schema: {where}: {first.message}"


# --------------------------------------------------------------------------- for fastjsonschema

# Keywords fastjsonschema's draft-07 code asserts as draft 2020-12 does.
_SAME = frozenset({
    "type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "items", "required",
    "properties", "additionalProperties", "allOf", "anyOf", "oneOf", "not", "$ref", "$defs",
})  # fmt: skip
# Keywords that assert nothing in either (format: no format checker, and use_formats=False).
_ANNOTATIONS = frozenset({
    "$comment", "title", "description", "examples", "default", "deprecated", "readOnly",
    "writeOnly", "format",
})  # fmt: skip
_ONE = ("items", "additionalProperties", "not")  # a subschema
_MANY = ("allOf", "anyOf", "oneOf")  # a list of subschemas
_NAMED = ("properties", "$defs")  # subschemas by name


class _Unsupported(Exception):
    """Draft 07 would read this schema otherwise than 2020-12: no fast check."""


class _Bundle:
    """One document for fastjsonschema: the schema, rewritten (module docstring), with every
    other schema it refers to copied under its ``$defs`` (``bundled-0``, ...)."""

    def __init__(self, registry: Registry | None) -> None:
        self.registry = registry
        self.slots: dict[str, str] = {}  # $id of a referenced schema -> its key in $defs
        self.copies: dict[str, Any] = {}

    def root(self, schema: Any) -> Any:
        out = self.document(schema, "")
        if self.copies:
            defs = out.setdefault("$defs", {})
            if set(defs) & set(self.copies):
                raise _Unsupported("$defs")
            defs.update(self.copies)
        return out

    def document(self, schema: Any, prefix: str) -> Any:
        if isinstance(schema, dict):
            if schema.get("$schema", _DIALECT) != _DIALECT:
                raise _Unsupported("$schema")
            schema = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
        return self.node(schema, prefix)

    def node(self, schema: Any, prefix: str) -> Any:
        """``prefix``: where the document holding ``schema`` sits in the bundle ("" or
        ``/$defs/<slot>``), for its ``#/...`` references."""
        if isinstance(schema, bool):
            return schema
        if not isinstance(schema, dict):
            raise _Unsupported(type(schema).__name__)
        unknown = set(schema) - _SAME - _ANNOTATIONS
        if unknown:  # $schema or $id here: an embedded resource with a base URI of its own
            raise _Unsupported(", ".join(sorted(unknown)))
        out: dict[str, Any] = {}
        for k, v in schema.items():
            if k in _ONE:
                if k == "items" and not isinstance(v, (dict, bool)):
                    raise _Unsupported("items")  # draft 07's tuple form; 2020-12: prefixItems
                out[k] = self.node(v, prefix)
            elif k in _MANY:
                if not isinstance(v, list):
                    raise _Unsupported(k)
                out[k] = [self.node(s, prefix) for s in v]
            elif k in _NAMED:
                if not isinstance(v, dict):
                    raise _Unsupported(k)
                out[k] = {name: self.node(s, prefix) for name, s in v.items()}
            elif k == "pattern":
                out[k] = _search_pattern(v)
            elif k == "$ref":
                out[k] = self.ref(v, prefix)
            else:
                out[k] = v
        if "$ref" in out and set(out) - _ANNOTATIONS - {"$ref", "$defs"}:
            # 2020-12 applies a $ref's siblings, draft 07 ignores them: the $ref goes last
            # into allOf, so pointers to the node and its other parts still hold.
            out["allOf"] = [*out.get("allOf", []), {"$ref": out.pop("$ref")}]
        return out

    def ref(self, ref: Any, prefix: str) -> str:
        if not isinstance(ref, str):
            raise _Unsupported("$ref")
        uri, _, fragment = ref.partition("#")
        if fragment and not fragment.startswith("/"):
            raise _Unsupported("$ref to an anchor")
        if not uri:
            return "#" + prefix + fragment
        slot = self.slots.get(uri)
        if slot is None:
            if self.registry is None:
                raise _Unsupported(f"$ref {ref}")
            try:
                contents = self.registry.contents(uri)
            except Exception:  # noqa: BLE001 - not one of ours (referencing's lookup errors)
                raise _Unsupported(f"$ref {ref}") from None
            slot = self.slots[uri] = f"bundled-{len(self.slots)}"
            self.copies[slot] = self.document(contents, f"/$defs/{slot}")
        return f"#/$defs/{slot}{fragment}"


_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]*[mx]")


def _search_pattern(pattern: Any) -> str:
    """A pattern that, once fastjsonschema has turned each ``$`` into ``\\Z``, matches what
    ``re.search(pattern, ...)`` matches: ``$`` outside a set becomes ``(?=\\n?\\Z)`` (the end,
    or before a final newline), ``$`` inside a set an escaped ``\\$``."""
    if not isinstance(pattern, str):
        raise _Unsupported("pattern")
    re.compile(pattern)  # re.error: not a pattern
    if _INLINE_FLAGS.search(pattern):  # multi-line or verbose: another meaning of $
        raise _Unsupported("pattern flags")
    out: list[str] = []
    i, n, in_set = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_set:
            if c == "]":
                in_set = False
            out.append("\\$" if c == "$" else c)
        elif c == "[":
            in_set = True
            out.append(c)
            # "^" and a "]" right after the opening bracket belong to the set.
            if i + 1 < n and pattern[i + 1] == "^":
                out.append("^")
                i += 1
            if i + 1 < n and pattern[i + 1] == "]":
                out.append("]")
                i += 1
        else:
            out.append("(?=\\n?\\Z)" if c == "$" else c)
        i += 1
    return "".join(out)
