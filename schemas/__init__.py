"""JSON Schemas (draft 2020-12) shipped with onestop: ``schemas/<name>.schema.json``.

:func:`load` returns a schema as a dict; :func:`validator` returns a ready
:class:`jsonschema.Draft202012Validator`.  Every schema in this package is registered by its
``$id``, so one schema may ``$ref`` another (``{"$ref": "urn:onestop:schemas:catalog"}``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SUFFIX = ".schema.json"


def names() -> list[str]:
    """The names of every schema shipped in this package, sorted."""
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(_SUFFIX)
    )


@functools.cache
def _read(name: str) -> dict[str, Any]:
    if not _NAME.match(name):
        raise ValueError(f"bad schema name {name!r}")
    entry = resources.files(__name__).joinpath(f"{name}{_SUFFIX}")
    if not entry.is_file():
        raise FileNotFoundError(f"no schema named {name!r} (known: {', '.join(names())})")
    data = json.loads(entry.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"schema {name!r} is not a JSON object")
    return data


def load(name: str) -> dict[str, Any]:
    """The schema ``schemas/<name>.schema.json`` as a dict (read once; a copy each call)."""
    return copy.deepcopy(_read(name))


@functools.cache
def _registry() -> Registry:
    registry: Registry = Registry()
    for name in names():
        schema = _read(name)
        if "$id" in schema:
            resource = Resource.from_contents(schema, default_specification=DRAFT202012)
            registry = registry.with_resource(schema["$id"], resource)
    return registry


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A checked, cached validator for ``schemas/<name>.schema.json``."""
    schema = _read(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())
