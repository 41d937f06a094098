"""Node settings: validation names the field; every setting is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from node import config as cfgm
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "field,value",
    [
        ("code", "abc"),
        ("level", "village"),
        ("name", " "),
        ("port", 70000),
        ("default_lang", "fr"),
        ("elderly_age", 10),
        ("recall_limit", -1),
        ("default_service_minutes", 0),
        ("ticket_digits", 9),
        ("hub_url", "ftp://x"),
        ("timezone", "Mars/Olympus"),
        ("sync_interval_seconds", 0),
        ("keep_overnight_queues", "dept:edu, edu"),
    ],
)
def test_validate_names_the_field(tmp_path: Path, field: str, value: object) -> None:
    good = {"code": "370102001", "name": "x", "level": "township"}
    cfg = cfgm.NodeConfig(data_dir=tmp_path, **{**good, field: value})  # type: ignore[arg-type]
    with pytest.raises(cfgm.ConfigError) as exc:
        cfg.validate()
    assert exc.value.field == field


def test_load_rejects_unknown_and_mistyped_settings(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'code = "370102001"\nname = "x"\nlevel = "township"\ncolour = "red"\n'
    )
    with pytest.raises(cfgm.ConfigError) as exc:
        cfgm.load(tmp_path)
    assert exc.value.field == "colour"
    (tmp_path / "node.toml").write_text(
        'code = "370102001"\nname = "x"\nlevel = "township"\nport = "80"\n'
    )
    with pytest.raises(cfgm.ConfigError) as exc:
        cfgm.load(tmp_path)
    assert exc.value.field == "port"


def test_missing_config_says_the_next_command(tmp_path: Path) -> None:
    with pytest.raises(cfgm.ConfigError) as exc:
        cfgm.load(tmp_path / "none")
    assert "onestop node init" in str(exc.value)


def test_sample_config_documents_every_setting() -> None:
    sample = (ROOT / "etc" / "node.toml").read_text()
    keys = set(re.findall(r"^(\w+) =", sample, re.M))
    fields = {f.name for f in dataclasses.fields(cfgm.NodeConfig)} - {"data_dir"}
    assert keys == fields
    for key in fields:  # each key has a comment line just above it (or a group comment)
        assert re.search(rf"#.*\n(\w+ = .*\n)*{key} =", sample), key


def test_sample_config_loads(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text((ROOT / "etc" / "node.toml").read_text())
    assert cfgm.load(tmp_path).code == "370102001"


@pytest.mark.parametrize("service", ["node", "hub"])
def test_a_broken_settings_file_names_the_file_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], service: str
) -> None:
    (tmp_path / f"{service}.toml").write_text('name = "x\nport = 80\n', encoding="utf-8")
    assert run_cli(service, "serve", "--data", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {service}.toml: not valid TOML"), err
    assert "Traceback" not in err
