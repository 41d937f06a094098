"""Parse a request's JSON body, query string or path parameters into a pydantic model.

A handler calls :func:`body`, :func:`query` or :func:`path` with the model its route documents
(see :mod:`onestop.openapi`); a bad request becomes the project's one error shape
(:mod:`onestop.errors`): 422, ``field`` the first bad field (a dotted path when nested, ``body``
when the body itself is wrong), ``errors`` every problem with its field.  Messages are English,
or Chinese when the client asks for it (``?lang=zh``, the ``lang`` cookie, ``Accept-Language``)
or the body says ``"lang": "zh"``.

Models check the shape of a request (types, required fields, choices, lengths); checks that
need the database or the clock (an open queue, an ID card's birth date, a working day) stay in
the domain functions, which receive :meth:`Body.data`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from onestop import bodies, jsonbody
from onestop.errors import Invalid, prefers_zh
from onestop.i18n import LazyText, _, lazy_gettext

M = TypeVar("M", bound=BaseModel)


class Model(BaseModel):
    """Base of every request model: unknown fields are ignored, not kept."""

    model_config = ConfigDict(extra="ignore")

    #: Field-specific messages (catalog messages) used for any error of that field but a
    #: missing one (e.g. a pattern whose generic message would say little).
    messages: ClassVar[dict[str, LazyText]] = {}

    def data(self) -> dict[str, Any]:
        """The fields the client sent, as plain values (what the domain functions take)."""
        return self.model_dump(mode="json", exclude_unset=True)


# -- messages -------------------------------------------------------------------------------

_MESSAGES: dict[str, LazyText] = {
    "missing": lazy_gettext("{f} 为必填项"),
    "string_type": lazy_gettext("{f} 必须是文本"),
    "int_type": lazy_gettext("{f} 必须是整数"),
    "int_parsing": lazy_gettext("{f} 必须是整数"),
    "int_from_float": lazy_gettext("{f} 必须是整数"),
    "float_type": lazy_gettext("{f} 必须是数字"),
    "float_parsing": lazy_gettext("{f} 必须是数字"),
    "bool_type": lazy_gettext("{f} 必须是 true 或 false"),
    "bool_parsing": lazy_gettext("{f} 必须是 true 或 false"),
    "list_type": lazy_gettext("{f} 必须是列表"),
    "dict_type": lazy_gettext("{f} 必须是对象"),
    "model_type": lazy_gettext("{f} 必须是对象"),
    "model_attributes_type": lazy_gettext("{f} 必须是对象"),
    "literal_error": lazy_gettext("{f} 必须是以下之一：{expected}"),
    "enum": lazy_gettext("{f} 必须是以下之一：{expected}"),
    "date_type": lazy_gettext("{f} 必须是日期，如 2026-10-12"),
    "date_parsing": lazy_gettext("{f} 必须是日期，如 2026-10-12"),
    "date_from_datetime_parsing": lazy_gettext("{f} 必须是日期，如 2026-10-12"),
    "date_from_datetime_inexact": lazy_gettext("{f} 必须是日期，如 2026-10-12"),
    "greater_than_equal": lazy_gettext("{f} 不能小于 {ge}"),
    "greater_than": lazy_gettext("{f} 必须大于 {gt}"),
    "less_than_equal": lazy_gettext("{f} 不能大于 {le}"),
    "less_than": lazy_gettext("{f} 必须小于 {lt}"),
    "string_too_short": lazy_gettext("{f} 至少需要 {min_length} 个字符"),
    "string_too_long": lazy_gettext("{f} 超过 {max_length} 个字符"),
    "too_short": lazy_gettext("{f} 至少需要 {min_length} 项"),
    "too_long": lazy_gettext("{f} 超过 {max_length} 项"),
    "string_pattern_mismatch": lazy_gettext("{f} 格式不正确"),
}


def _field(loc: tuple[int | str, ...], root: str) -> str:
    return ".".join(str(p) for p in loc) if loc else root


def _expected(ctx: dict[str, Any]) -> str:
    raw = str(ctx.get("expected", ""))
    return raw.replace("'", "").replace(" or ", ", ")


def message(
    err: ErrorDetails, field: str, zh: bool, overrides: dict[str, LazyText] | None = None
) -> str:
    """The message of one pydantic error, in Chinese or English."""
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    kind = err["type"]
    top = str(err["loc"][0]) if err["loc"] else ""
    lang = "zh" if zh else "en"
    if overrides and top in overrides and kind != "missing":
        return overrides[top].text(lang)
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return _("{f} 不能为空", lang, f=field)
    if kind in _MESSAGES:
        if "expected" in ctx:
            ctx["expected"] = _expected(ctx)
        try:
            return _MESSAGES[kind].text(lang, f=field, **ctx)
        except (KeyError, IndexError):
            pass
    return f"{field}: {err['msg']}"


def invalid(
    exc: ValidationError, zh: bool = False, root: str = "body", model: type[BaseModel] | None = None
) -> Invalid:
    """The project's 422 for a pydantic ValidationError: every problem with its field."""
    overrides = getattr(model, "messages", None) if model is not None else None
    en_items: list[dict[str, str]] = []
    zh_items: list[dict[str, str]] = []
    for err in exc.errors(include_url=False):
        field = _field(tuple(err["loc"]), root)
        en_items.append({"field": field, "message": message(err, field, False, overrides)})
        zh_items.append({"field": field, "message": message(err, field, True, overrides)})
    items = zh_items if zh else en_items
    first = items[0]
    return Invalid(first["message"], field=first["field"], errors=items)


def _wants_zh(request: web.Request, data: Any = None) -> bool:
    if isinstance(data, dict) and data.get("lang") in ("zh", "en"):
        return bool(data["lang"] == "zh")
    return prefers_zh(request)


def validate(request: web.Request, model: type[M], data: Any, root: str = "body") -> M:
    """``model`` from ``data`` or the 422 naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, _wants_zh(request, data), root, model) from None


# -- the three places a request carries input -----------------------------------------------


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when there is no body)."""
    if not request.can_read_body:
        return {}
    raw = await bodies.read(request)  # bounded; gzip inflated on a thread
    if not raw.strip():
        return {}
    data = jsonbody.parse(raw)  # bounded: depth, digits, finite numbers, Unicode text
    if not isinstance(data, dict):
        raise Invalid(lazy_gettext("请求正文必须是 JSON 对象"), field="body")
    return data


async def body(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model``."""
    _check_documented(request, "body", model)
    return validate(request, model, await json_object(request))


def query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``; an empty value counts as not given."""
    _check_documented(request, "query", model)
    data = {k: v for k, v in request.query.items() if v != ""}
    return validate(request, model, data, root="query")


def path(request: web.Request, model: type[M]) -> M:
    """The path parameters (``/windows/{id}``) as ``model``."""
    _check_documented(request, "path", model)
    return validate(request, model, dict(request.match_info), root="path")


def _check_documented(request: web.Request, where: str, model: type[BaseModel]) -> None:
    """A handler must parse what its route documents, so the document cannot drift."""
    route = request.match_info.route
    op = getattr(getattr(route, "handler", None), "__openapi__", None)
    if op is None:
        return
    documented = getattr(op, where)
    if documented is not model:
        raise RuntimeError(
            f"{request.method} {request.path} parses {where} as {model.__name__} but documents "
            f"{getattr(documented, '__name__', None)}"
        )


def date_field(value: Any, field: str) -> dt.date:
    """A date a domain function finds in request data (``2026-10-12``), or the 422 naming it."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise Invalid(lazy_gettext("{f} 必须是日期，如 2026-10-12", f=field), field=field)
