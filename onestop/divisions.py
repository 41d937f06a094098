"""Shandong's statistical divisions: one row per service center, and the tree they form.

The data is ``data/divisions/shandong_divisions.csv`` (provenance in that folder's README),
each row checked against ``data/divisions/divisions.schema.json`` and the tree rules: unique
codes, every parent exists one level up, and a child's code starts with its parent's.

Where the files are found: ``ONESTOP_DIVISIONS`` (the CSV file, or a folder holding it;
the schema is taken from beside it when present), else ``onestop/data/divisions/`` inside
the installed package, else the source tree's ``data/divisions/``.  The Ansible roles copy
the folder to every host and set ``ONESTOP_DIVISIONS`` for the services.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

__all__ = [
    "LEVELS",
    "DivisionError",
    "ancestors",
    "by_code",
    "children",
    "csv_path",
    "load",
    "schema_path",
    "subtree",
    "tree",
]

LEVELS = ("province", "city", "county", "township")
ENV = "ONESTOP_DIVISIONS"
PACKAGE_DIR = Path(__file__).resolve().parent / "data" / "divisions"
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "divisions"
CSV_NAME = "shandong_divisions.csv"
SCHEMA_NAME = "divisions.schema.json"
COLUMNS = ("code", "name", "level", "parent_code")


class DivisionError(ValueError):
    """The division data is missing or breaks its schema or the tree rules."""


def csv_path() -> Path:
    """The division CSV in use (see the module's docstring for where it is looked for)."""
    env = os.environ.get(ENV)
    if env:
        p = Path(env)
        return p / CSV_NAME if p.is_dir() else p
    for folder in (PACKAGE_DIR, DATA_DIR):
        if (folder / CSV_NAME).exists():
            return folder / CSV_NAME
    return DATA_DIR / CSV_NAME


def schema_path(csv_file: Path | None = None) -> Path:
    """The row schema: beside the CSV when it is there, else the shipped one."""
    for folder in ((csv_file or csv_path()).parent, PACKAGE_DIR, DATA_DIR):
        if (folder / SCHEMA_NAME).exists():
            return folder / SCHEMA_NAME
    raise DivisionError(f"{SCHEMA_NAME} not found (set {ENV} to the folder holding it)")


@functools.cache
def _validator(path: str) -> Draft202012Validator:
    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate(rows: Iterable[dict[str, Any]], schema: Path | None = None) -> list[dict[str, str]]:
    """Check rows against the schema and the tree rules; returns them as a list."""
    out: list[dict[str, str]] = []
    seen: dict[str, dict[str, str]] = {}
    v = _validator(str(schema or schema_path()))
    for n, row in enumerate(rows, start=2):  # line 1 is the CSV header
        errors = sorted(v.iter_errors(row), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.path) or "row"
            raise DivisionError(f"line {n} ({row.get('code', '?')}): {where}: {e.message}")
        if row["code"] in seen:
            raise DivisionError(f"line {n}: duplicate code {row['code']}")
        seen[row["code"]] = row
        out.append(dict(row))
    for row in out:
        parent = row["parent_code"]
        if not parent:
            continue
        p = seen.get(parent)
        if p is None:
            raise DivisionError(f"{row['code']}: parent {parent} does not exist")
        if LEVELS.index(p["level"]) != LEVELS.index(row["level"]) - 1:
            raise DivisionError(
                f"{row['code']} ({row['level']}): parent {parent} is a {p['level']}"
            )
        if not row["code"].startswith(parent):
            raise DivisionError(f"{row['code']}: code does not start with its parent's {parent}")
    return out


@functools.cache
def _load(path: str) -> tuple[dict[str, str], ...]:
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise DivisionError(f"{p} not found (set {ENV} to the division CSV)") from None
    with fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise DivisionError(f"{p}: columns must be {','.join(COLUMNS)}")
        return tuple(validate(reader, schema_path(p)))


def load(path: str | Path | None = None) -> list[dict[str, str]]:
    """Every division as ``{"code", "name", "level", "parent_code"}``, in file order."""
    return [dict(r) for r in _load(str(path or csv_path()))]


def by_code(rows: list[dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    return {r["code"]: r for r in (load() if rows is None else rows)}


def tree(rows: list[dict[str, str]] | None = None) -> dict[str, list[str]]:
    """``{parent code: [child codes in file order]}``; the province's parent is ``""``."""
    out: dict[str, list[str]] = {}
    for r in load() if rows is None else rows:
        out.setdefault(r["parent_code"], []).append(r["code"])
    return out


def children(code: str, rows: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    rows = load() if rows is None else rows
    index = by_code(rows)
    return [index[c] for c in tree(rows).get(code, [])]


def subtree(code: str, rows: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The division ``code`` and everything under it, depth first (parents before children)."""
    rows = load() if rows is None else rows
    index, kids = by_code(rows), tree(rows)
    if code not in index:
        raise DivisionError(f"unknown division code {code}")
    out: list[dict[str, str]] = []
    stack = [code]
    while stack:
        c = stack.pop()
        out.append(index[c])
        stack.extend(reversed(kids.get(c, [])))
    return out


def ancestors(code: str, rows: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The divisions above ``code``, nearest first (a township's county, city, province)."""
    index = by_code(rows)
    if code not in index:
        raise DivisionError(f"unknown division code {code}")
    out = []
    parent = index[code]["parent_code"]
    while parent:
        out.append(index[parent])
        parent = index[parent]["parent_code"]
    return out
