"""JSON request bodies parsed with bounds: what ``json.loads`` would turn into a 500 is a 422.

``json.loads`` accepts, or fails deep inside, on inputs an attacker can send cheaply:

- nesting tens of thousands deep (``RecursionError``), or deeper than any request needs;
- integers of thousands of digits (``ValueError`` past Python's 4,300-digit limit, slow
  below it);
- ``NaN``, ``Infinity`` and ``1e400`` (not JSON; a float that is no number);
- lone surrogates such as ``"\\ud800"`` (a ``str`` that cannot be encoded as UTF-8, so it fails
  when stored or logged).

:func:`parse` refuses each with :class:`onestop.errors.Invalid` naming the place (``body``, or
the path inside it such as ``body.items[2]``) and saying why.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from onestop.errors import Invalid
from onestop.i18n import LazyText, lazy_gettext

#: The deepest nesting of arrays and objects a request may have (the deepest the services
#: need is about 8: a push's batch, record, body, items).
MAX_DEPTH = 64
#: The most digits an integer may have (an int64 has 19).
MAX_DIGITS = 64

# An escaped UTF-16 surrogate: only these can produce a string that is not valid Unicode
# (raw bytes must be UTF-8, which has no surrogates).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _Refused(ValueError):
    def __init__(self, message: LazyText) -> None:
        super().__init__(str(message))
        self.message = message


def _constant(name: str) -> Any:
    raise _Refused(lazy_gettext("{v} 不是 JSON 数字", v=name))


def _float(text: str) -> float:
    if len(text) > 2 * MAX_DIGITS:
        raise _Refused(lazy_gettext("数字超过 {n} 个字符", n=2 * MAX_DIGITS))
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(lazy_gettext("数字 {v} 超出范围", v=text[:40]))
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(lazy_gettext("整数超过 {n} 位", n=MAX_DIGITS))
    return int(text)


def _too_deep(depth: int) -> LazyText:
    return lazy_gettext("嵌套超过 {n} 层", n=depth)


def _where(root: str, path: list[str | int]) -> str:
    out = root
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _check(value: Any, root: str, max_depth: int, strings: bool) -> None:
    """Depth (iteratively, no recursion) and, when ``strings``, every key and string's
    encodability."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict | list):
            if len(path) >= max_depth:
                raise Invalid(_too_deep(max_depth), field=root)
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, v in items:
                if strings and isinstance(k, str):
                    _encodable(k, root, path)
                stack.append((v, [*path, k]))
        elif strings and isinstance(node, str):
            _encodable(node, root, path[:-1], path[-1] if path else None)


def _encodable(text: str, root: str, path: list[str | int], key: str | int | None = None) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        where = _where(root, path if key is None else [*path, key])
        raise Invalid(
            lazy_gettext("含有单独的 UTF-16 代理项，不是有效的 Unicode 文本"), field=where
        ) from None


def parse(raw: bytes | str, root: str = "body", max_depth: int = MAX_DEPTH) -> Any:
    """``raw`` as JSON, bounded as the module says, or :class:`Invalid` naming ``root``."""
    try:
        data = json.loads(raw, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except _Refused as exc:
        raise Invalid(exc.message, field=root) from None
    except RecursionError:
        raise Invalid(_too_deep(max_depth), field=root) from None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise Invalid(lazy_gettext("请求正文不是有效的 JSON"), field=root) from None
    encoded = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    _check(data, root, max_depth, strings=bool(_SURROGATE_ESCAPE.search(encoded)))
    return data
