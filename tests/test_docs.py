"""Every CLI command is documented (sqlite-utils' test_docs.py rule), and the docs exist."""

from __future__ import annotations

import argparse
from pathlib import Path

from onestop.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def commands(parser: argparse.ArgumentParser, prefix: str = "onestop") -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}"
                nested = commands(sub, path)
                out.extend(nested or [path])
    return out


def test_every_command_is_in_the_cli_reference() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    cmds = commands(build_parser())
    assert len(cmds) >= 7
    missing = [c for c in cmds if f"`{c} " not in doc and f"`{c}`" not in doc]
    assert not missing, f"undocumented commands: {missing}"


def test_every_option_is_in_the_cli_reference() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()

    def walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, str]]:
        out = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out += walk(sub, f"{path} {name}")
            else:
                out += [
                    (path, o) for o in action.option_strings if o.startswith("--") and o != "--help"
                ]
        return out

    missing = [(p, o) for p, o in walk(build_parser(), "onestop") if o not in doc]
    assert not missing, f"undocumented options: {missing}"


def test_readme_quick_start_has_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_architecture_names_existing_folders() -> None:
    arch = (ROOT / "docs" / "architecture.md").read_text()
    for folder in ("node/", "hub/", "sync/", "schemas/", "ansible/", "bench/"):
        assert folder in arch
        assert (ROOT / folder).is_dir()
