"""docs/architecture.md stays true: its layer diagram names exactly the packages of the tree,
every file it names exists, and the layers it draws are the import-linter contracts."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
TOP = ("onestop", "node", "hub", "sync", "schemas")


def _block(heading: str) -> str:
    section = DOC.split(f"## {heading}\n", 1)[1]
    return section.split("```", 2)[1]


def packages() -> set[str]:
    out = set()
    for top in TOP:
        for init in (ROOT / top).rglob("__init__.py"):
            out.add(init.parent.relative_to(ROOT).as_posix() + "/")
    return out


def test_the_layer_diagram_names_every_package_and_no_other() -> None:
    drawn = set(re.findall(r"│ +((?:[a-z_]+/)+)", _block("Layers")))
    assert drawn == packages()


def test_every_path_the_document_names_exists() -> None:
    folders = r"(?:onestop|node|hub|sync|schemas|ansible|bench|etc|data|docs|tests)/"
    named = set(re.findall(rf"(?<![\w/])({folders}(?:[a-z_]+/)*(?:[a-z_-]+\.[a-z]+)?)", DOC))
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing
    # Files named in a folder's row of the table live in that folder.
    for folder, cell in re.findall(r"^\| `([a-z_/]+)/` \| (.*) \|$", DOC, re.M):
        for name in re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.(?:py|json))`", cell):
            where = ROOT if name.split("/")[0] in TOP else ROOT / folder
            assert (where / name).exists() or any(where.rglob(name)), f"{folder}/ names {name}"


def test_the_layers_drawn_are_the_ones_import_linter_enforces() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    [layers] = [c for c in cfg["importlinter"]["contracts"] if c["type"] == "layers"]
    order = [re.split(r"\s*[|:]\s*", layer)[0] for layer in layers["layers"]]
    block = _block("Layers")
    positions = [block.index(f"│ {name.replace('.', '/')}/") for name in order]
    assert positions == sorted(positions), order
    r = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT,
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout


def test_no_import_inside_a_function_unless_a_comment_says_why() -> None:
    found = []
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for fn in ast.walk(ast.parse(source)):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        if "#" not in lines[node.lineno - 1]:
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
