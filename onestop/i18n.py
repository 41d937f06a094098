"""One gettext message catalog for the node and the hub: pages, page scripts, CSV headers,
SMS texts and error messages, in zh-CN (the default) and English.

The msgid of a message is its zh-CN text, marked where it is used::

    _("自助取号", lang)                      # Python, translated now
    pgettext("button", "叫号", lang)         # the same Chinese, another English word
    lazy_gettext("{n}号窗口", n=3)           # a table entry or an error raised before the
                                             # language is known; translated by .text(lang)
    {{ _("自助取号") }}                      # Jinja templates (the page's ``lang``)
    _("正在取号，请稍候…")                   # page scripts: OS._ / the hub's _ (see
                                             # :func:`script_messages`)

Placeholders are ``{name}`` (``str.format``) everywhere.  The catalogs are
``onestop/locale/{zh_CN,en}/LC_MESSAGES/messages.po``, read at first use (no compile step);
``make messages`` extracts the marked strings with Babel (mapping in ``babel.cfg``) and merges
them into both catalogs (docs/i18n.md).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

LANGS = ("zh", "en")
#: Page language -> catalog locale.
LOCALES = {"zh": "zh_CN", "en": "en"}
DEFAULT_LANG = "zh"
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
#: Keywords beyond Babel's defaults (``_``, ``gettext``, ``pgettext`` ...).
KEYWORDS = {"lazy_gettext": None, "lazy_pgettext": ((1, "c"), 2)}
#: What the page scripts call: ``_(msgid, vars)`` and ``pgettext(context, msgid, vars)``.
SCRIPT_KEYWORDS = {"_": None, "pgettext": ((1, "c"), 2)}
#: Separator of context and msgid in a .mo file and in the scripts' message table.
CONTEXT_SEP = "\x04"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def catalog(lang: str) -> Catalog:
    """The catalog of ``lang`` as read from its .po file."""
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=LOCALES[lang], domain=DOMAIN)


@functools.cache
def translations(lang: str) -> Translations:
    """``gettext``/``pgettext`` of ``lang``: the .po compiled in memory."""
    buf = io.BytesIO()
    write_mo(buf, catalog(lang))
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def _lang(lang: str | None) -> str:
    return lang if lang in LOCALES else DEFAULT_LANG


def _format(text: str, fmt: dict[str, Any]) -> str:
    return text.format(**fmt) if fmt else text


def gettext(message: str, lang: str | None = DEFAULT_LANG, **fmt: Any) -> str:
    """``message`` (a zh-CN msgid) in ``lang``, with ``{name}`` placeholders filled."""
    return _format(translations(_lang(lang)).gettext(message), fmt)


_ = gettext


def pgettext(context: str, message: str, lang: str | None = DEFAULT_LANG, **fmt: Any) -> str:
    """Like :func:`gettext` for a msgid that needs a context to tell its English apart."""
    return _format(str(translations(_lang(lang)).pgettext(context, message)), fmt)


class LazyText:
    """A message whose language is not known yet: a table entry built at import time, or the
    text of an error raised deep in the code.  ``text(lang)`` translates it."""

    __slots__ = ("msgid", "context", "fmt")

    def __init__(self, msgid: str, context: str | None = None, **fmt: Any) -> None:
        self.msgid = msgid
        self.context = context
        self.fmt = fmt

    def text(self, lang: str | None = DEFAULT_LANG, **fmt: Any) -> str:
        args = {**self.fmt, **fmt}
        if self.context is None:
            return gettext(self.msgid, lang, **args)
        return pgettext(self.context, self.msgid, lang, **args)

    def __str__(self) -> str:
        return self.text(DEFAULT_LANG)

    def __repr__(self) -> str:
        return f"LazyText({self.msgid!r}, context={self.context!r}, fmt={self.fmt!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyText) and (self.msgid, self.context, self.fmt) == (
            other.msgid,
            other.context,
            other.fmt,
        )

    def __hash__(self) -> int:
        return hash((self.msgid, self.context))


def lazy_gettext(message: str, **fmt: Any) -> LazyText:
    return LazyText(message, **fmt)


def lazy_pgettext(context: str, message: str, **fmt: Any) -> LazyText:
    return LazyText(message, context, **fmt)


def text(message: str | LazyText, lang: str | None = DEFAULT_LANG) -> str:
    """A :class:`LazyText` in ``lang``; a plain string (a name from data) unchanged."""
    return message.text(lang) if isinstance(message, LazyText) else message


# -- Jinja --------------------------------------------------------------------------------------


@jinja2.pass_context
def _jinja_gettext(ctx: Any, message: str, **fmt: Any) -> str:
    return gettext(message, ctx.get("lang"), **fmt)


@jinja2.pass_context
def _jinja_pgettext(ctx: Any, context: str, message: str, **fmt: Any) -> str:
    return pgettext(context, message, ctx.get("lang"), **fmt)


@jinja2.pass_context
def _jinja_text(ctx: Any, message: str | LazyText | None) -> str:
    return "" if message is None else text(message, ctx.get("lang"))


def install_jinja(env: jinja2.Environment) -> None:
    """``_()`` and ``pgettext()`` in templates (the language is the context's ``lang``), and
    the ``text`` filter for a :class:`LazyText` handed in from Python."""
    env.globals["_"] = env.globals["gettext"] = _jinja_gettext
    env.globals["pgettext"] = _jinja_pgettext
    env.filters["text"] = _jinja_text


# -- page scripts -------------------------------------------------------------------------------


@functools.cache
def _script_msgids(path: Path) -> tuple[tuple[str | None, str], ...]:
    found: list[tuple[str | None, str]] = []
    with path.open("rb") as f:
        for _lineno, message, _comments, context in extract(
            "javascript", f, keywords=SCRIPT_KEYWORDS
        ):
            if isinstance(message, str) and (context, message) not in found:
                found.append((context, message))
    return tuple(found)


def script_messages(lang: str, scripts: Iterable[Path]) -> dict[str, str]:
    """The messages the page scripts call ``_()``/``pgettext()`` with, in ``lang``: embedded
    in the page as ``{msgid: text}`` (``context + "\\x04" + msgid`` for a context)."""
    out: dict[str, str] = {}
    for path in scripts:
        for context, msgid in _script_msgids(path):
            if context is None:
                out[msgid] = gettext(msgid, lang)
            else:
                out[context + CONTEXT_SEP + msgid] = pgettext(context, msgid, lang)
    return out


# -- maintenance ----------------------------------------------------------------------------


def fill_source_catalog() -> int:
    """Give each new message of the zh_CN catalog its msgid as text (the msgid is the zh-CN
    text); returns how many.  ``make messages`` runs it after ``pybabel update``."""
    path = po_path("zh")
    with path.open("rb") as f:
        cat = read_po(f, locale=LOCALES["zh"], domain=DOMAIN)
    filled = 0
    for message in cat:
        if message.id and not message.string:
            message.string = message.id
            filled += 1
    if filled:
        with path.open("wb") as f:
            write_po(f, cat, width=0, ignore_obsolete=True)
    return filled


if __name__ == "__main__":
    n = fill_source_catalog()
    untranslated = [m.id for m in catalog("en") if m.id and not m.string]
    print(f"zh_CN: {n} new message(s) filled; en: {len(untranslated)} to translate")
    for msgid in untranslated:
        print(f"  {msgid}")
