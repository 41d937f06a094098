"""OpenAPI 3.1 documents generated from an application's route table and request models.

Each JSON API handler carries its own small description::

    @operation("Issue a queue ticket (kiosk)", tag="kiosk", public=True, ok=201,
               body=TicketRequest, returns=IssuedTicket, errors=(422,))
    async def create_ticket(request): ...
        data = await requests.body(request, TicketRequest)

:func:`document` walks ``app.router`` and builds the document from those descriptions and the
pydantic models (``model_json_schema(ref_template="#/components/schemas/{model}")``); a route
under the API prefix without a description is an error, and :mod:`onestop.requests` refuses a
handler that parses a model its route does not document, so code and document cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": "#/components/schemas/Error"}

F = TypeVar("F", bound=Callable[..., Any])
Schema = dict[str, Any]


class FieldProblem(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    """The one error shape of every onestop service (:mod:`onestop.errors`)."""

    model_config = ConfigDict(extra="forbid")

    ok: Literal[False]
    status: int
    error: str
    message: str
    field: str | None
    errors: list[FieldProblem]
    hint: str | None


@dataclass(frozen=True)
class Op:
    """What the document says about one route; see :func:`operation`."""

    summary: str
    tag: str
    public: bool = False
    security: list[dict[str, list[str]]] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    ok: int = 200
    returns: type[BaseModel] | Schema | None = None
    content: dict[str, Any] | None = None
    request_content: dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    responses: dict[str, Any] = field(default_factory=dict)
    description: str | None = None


def operation(summary: str, *, tag: str, **kw: Any) -> Callable[[F], F]:
    """Describe a JSON API handler for the OpenAPI document (fields of :class:`Op`).

    ``public``: no login (``security`` overrides); ``body``/``query``/``path``: the models
    the handler parses with :mod:`onestop.requests`; ``returns``: the OK body (a model or a
    JSON schema); ``content``: the OK response's content when it is not JSON; ``errors``: the
    error statuses it answers (401 and 403 are added for staff routes).
    """
    op = Op(summary, tag, **kw)

    def mark(fn: F) -> F:
        fn.__openapi__ = op  # type: ignore[attr-defined]
        return fn

    return mark


def describe(fn: F, summary: str, *, tag: str, **kw: Any) -> F:
    """:func:`operation` for a handler made at run time (one per table, say)."""
    return operation(summary, tag=tag, **kw)(fn)


# -- building the document ---------------------------------------------------------------------

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}
        self.owners: dict[str, object] = {}

    def add(self, name: str, schema: Schema, owner: object) -> None:
        known = self.schemas.get(name)
        if known is not None and known != schema:
            raise ValueError(
                f"two different schemas are both named {name} ({self.owners[name]!r} and {owner!r})"
            )
        self.schemas[name] = schema
        self.owners[name] = owner

    def model(
        self, model: type[BaseModel], mode: Literal["validation", "serialization"] = "validation"
    ) -> Schema:
        """A ``$ref`` to ``model`` (added with the models it uses)."""
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self.add(name, sub, model)
        self.add(model.__name__, schema, model)
        return {"$ref": REF.format(model=model.__name__)}

    def schema(self, value: type[BaseModel] | Schema | None) -> Schema:
        if value is None:
            return {"type": "object"}
        if isinstance(value, dict):
            return value
        return self.model(value, "serialization")


def _no_null(prop: Schema) -> Schema:
    """A parameter's schema without the ``null`` an optional field adds."""
    prop = {k: v for k, v in prop.items() if k != "title"}
    if prop.get("default", 0) is None:
        del prop["default"]
    options = prop.get("anyOf")
    if options:
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            del prop["anyOf"]
            prop = {**kept[0], **prop}
        else:
            prop["anyOf"] = kept
    return prop


def _params(model: type[BaseModel], where: str, comps: _Components) -> list[Schema]:
    schema = model.model_json_schema(ref_template=REF)
    for name, sub in schema.pop("$defs", {}).items():
        comps.add(name, sub, model)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _no_null(prop)
        param: Schema = {"name": name, "in": where, "required": where == "path" or name in required}
        desc = prop.pop("description", None)
        if desc:
            param["description"] = desc
        param["schema"] = prop
        out.append(param)
    return out


def _operation(
    op: Op, path: str, comps: _Components, *, staff_security: list[Any], error_text: dict[int, str]
) -> Schema:
    names = _PARAM.findall(path)
    params: list[Schema] = []
    if op.path is not None:
        params = _params(op.path, "path", comps)
        got = [p["name"] for p in params]
        if sorted(got) != sorted(names):
            raise ValueError(f"{path}: path model {op.path.__name__} has {got}, not {names}")
    else:
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in names]  # fmt: skip
    if op.query is not None:
        params += _params(op.query, "query", comps)
    content = op.content or {"application/json": {"schema": comps.schema(op.returns)}}
    codes = list(op.errors)
    if not op.public:
        codes += [401, 403]
    responses: dict[str, Any] = {str(op.ok): {"description": "OK", "content": content}}
    for c in sorted(set(codes)):
        responses[str(c)] = {
            "description": error_text[c],
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    responses.update(op.responses)
    out: Schema = {"summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    if params:
        out["parameters"] = params
    if op.request_content is not None:
        out["requestBody"] = {"required": True, "content": op.request_content}
    elif op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": comps.model(op.body)}},
        }
    if op.security is not None:
        out["security"] = op.security
    else:
        out["security"] = [] if op.public else staff_security
    out["responses"] = responses
    return out


def routes(app: web.Application, prefix: str = "/api/v1") -> Iterable[tuple[str, str, Any]]:
    """``(path, method, handler)`` of every route under ``prefix`` (HEAD left out)."""
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith(prefix) and route.method != "HEAD":
            yield path, route.method, route.handler


def document(
    app: web.Application,
    *,
    title: str,
    version: str,
    description: str,
    security_schemes: dict[str, Any],
    staff_security: list[Any],
    error_text: dict[int, str],
    prefix: str = "/api/v1",
) -> Schema:
    """The OpenAPI 3.1 document of ``app``'s routes under ``prefix``."""
    comps = _Components()
    comps.model(Error, "serialization")
    paths: dict[str, Any] = {}
    for path, method, handler in sorted(routes(app, prefix), key=lambda r: (r[0], r[1])):
        op = getattr(handler, "__openapi__", None)
        if op is None:
            raise LookupError(f"{method} {path} has no @operation description")
        paths.setdefault(path, {})[method.lower()] = _operation(
            op, path, comps, staff_security=staff_security, error_text=error_text
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "securitySchemes": security_schemes,
            "schemas": dict(sorted(comps.schemas.items())),
        },
    }
