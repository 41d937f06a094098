"""The division tree the dashboards navigate: province → cities → counties → townships.

Loaded from the Shandong division data (:mod:`onestop.divisions`, checked against its schema).
A node's code is its division's code, so every enrolled center sits at its division; a node
whose code is not in the data is *unknown*: it is flagged, and placed under the longest
division code its code starts with (or listed at the root when there is none).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from onestop import divisions as divm

PREFIX_LENGTHS = (2, 4, 6, 9, 12)


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str
    parent: str


class Tree:
    def __init__(self, rows: Iterable[dict[str, str]]) -> None:
        self.divisions: dict[str, Division] = {}
        self.kids: dict[str, list[str]] = {}
        root = ""
        for r in rows:
            d = Division(r["code"], r["name"], r["level"], r["parent_code"])
            self.divisions[d.code] = d
            self.kids.setdefault(d.parent, []).append(d.code)
            if not d.parent:
                root = d.code
        self.root = root

    def known(self, code: str) -> bool:
        return code in self.divisions

    def place(self, code: str) -> str | None:
        """The division an unknown code sits under (longest known prefix), else None."""
        best = None
        for n in PREFIX_LENGTHS:
            if n < len(code) and code[:n] in self.divisions:
                best = code[:n]
        return best

    def parent_of(self, code: str) -> str:
        if code in self.divisions:
            return self.divisions[code].parent
        return self.place(code) or (self.root if code != self.root else "")

    def division(self, code: str, name: str = "") -> Division:
        d = self.divisions.get(code)
        if d is not None:
            return d
        return Division(code, name or code, "unknown", self.parent_of(code))

    def path(self, code: str, name: str = "") -> list[Division]:
        """The divisions from the root down to ``code`` (breadcrumb)."""
        out = [self.division(code, name)]
        seen = {code}
        parent = out[0].parent
        while parent and parent not in seen:
            seen.add(parent)
            out.append(self.division(parent))
            parent = out[-1].parent
        return list(reversed(out))

    def children(self, code: str, node_codes: Iterable[str] = ()) -> list[str]:
        """Child divisions of ``code``, then unknown node codes placed directly under it."""
        out = list(self.kids.get(code, []))
        for n in sorted(node_codes):
            if n not in self.divisions and n != code and self.parent_of(n) == code:
                out.append(n)
        return out

    def in_scope(self, scope: str, code: str) -> bool:
        """May a user with ``scope`` read division ``code``?  The root scope reads all."""
        return scope == self.root or code.startswith(scope)

    def count_under(self, code: str) -> dict[str, int]:
        """Divisions (service centers) under ``code`` by level, itself included."""
        out: dict[str, int] = {}
        stack = [code]
        while stack:
            c = stack.pop()
            d = self.divisions.get(c)
            if d is not None:
                out[d.level] = out.get(d.level, 0) + 1
            stack.extend(self.kids.get(c, []))
        return out


@functools.cache
def get() -> Tree:
    return Tree(divm.load())
