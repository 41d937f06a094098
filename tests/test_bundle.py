"""The node's key bundle (node/bundle.py): ``onestop node keys export|import``."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from bench import rpo
from node import bundle
from tests import test_litestream
from tests.conftest import run_cli
from tests.test_litestream import Procs, log_size, replica_log_size, wait_for

# The fixture shared with the continuity tests: processes ended by pid.
procs = test_litestream.procs

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    p = tmp_path / "passphrase"
    p.write_text(PASSPHRASE + "\n")
    p.chmod(0o600)
    return p


def export(data: Path, out: Path, passfile: Path, *extra: str) -> int:
    return run_cli("node", "keys", "export", "--data", str(data), "--out", str(out),
                   "--passphrase-file", str(passfile), *extra)  # fmt: skip


def import_(data: Path, path: Path, passfile: Path) -> int:
    return run_cli("node", "keys", "import", "--data", str(data), "--bundle", str(path),
                   "--passphrase-file", str(passfile))  # fmt: skip


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_round_trip_and_recovery_key_removed(
    node_dir: Path, tmp_path: Path, passfile: Path, capsys: Any, monkeypatch: Any
) -> None:
    # A rotated key is kept as node-<id>.key/.pub: the bundle carries it too.
    assert run_cli("node", "rotate-key", "--data", str(node_dir)) == 0
    shutil.copy(node_dir / "node.pub", node_dir / "hub.pub")  # stands in for the hub's keys
    shutil.copy(node_dir / "recovery.pub", node_dir / "hub-seal.pub")
    before = {p.name: (p.read_bytes(), mode(p)) for p in node_dir.iterdir()
              if bundle.FILES.fullmatch(p.name)}  # fmt: skip
    assert {"recovery.key", "secret.key", "node.toml", "hub.pub", "hub-seal.pub"} <= set(before)
    assert len([n for n in before if n.startswith("node-")]) == 2
    capsys.readouterr()
    out = tmp_path / "keys.bundle"
    assert export(node_dir, out, passfile) == 0
    said = capsys.readouterr().out
    assert "removed" in said and "recovery.key" in said
    assert mode(out) == 0o600
    assert not (node_dir / "recovery.key").exists()
    assert (node_dir / "recovery.pub").exists() and (node_dir / "node.key").exists()
    text = out.read_text()
    assert "BEGIN" not in text and PASSPHRASE not in text
    doc = json.loads(text)
    assert doc["format"] == "onestop-node-keys" and doc["node"] == "370102001"
    assert doc["kdf"]["name"] == "scrypt" and doc["cipher"] == "AES-256-GCM"

    back = tmp_path / "back"
    assert import_(back, out, passfile) == 0
    got = {p.name: (p.read_bytes(), mode(p)) for p in back.iterdir()}
    assert got == before
    assert mode(back / "secret.key") == mode(back / "recovery.key") == 0o600
    # Not again over the same files, and never into a node's directory.
    assert import_(back, out, passfile) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert import_(node_dir, tmp_path / "keys.bundle", passfile) == 1
    assert "node.db" in capsys.readouterr().err
    # The bundle opens in code too; ONESTOP_BUNDLE_PASSPHRASE is the other way to give it.
    opened = bundle.open_bundle(out.read_bytes(), PASSPHRASE.encode())
    assert opened.code == "370102001" and opened.level == "township"
    # A second export: no recovery key on the node any more, the bundle says so.
    monkeypatch.setenv(bundle.PASSPHRASE_ENV, PASSPHRASE)
    assert run_cli("node", "keys", "export", "--data", str(node_dir), "--out",
                   str(tmp_path / "again.bundle")) == 0  # fmt: skip
    assert "holds no recovery key" in capsys.readouterr().out
    assert (
        "recovery.key"
        not in bundle.open_bundle(
            (tmp_path / "again.bundle").read_bytes(), PASSPHRASE.encode()
        ).files
    )


def test_keep_recovery_key(node_dir: Path, tmp_path: Path, passfile: Path) -> None:
    assert export(node_dir, tmp_path / "b", passfile, "--keep-recovery-key") == 0
    assert (node_dir / "recovery.key").exists()


def test_wrong_passphrase_and_damaged_files(
    node_dir: Path, tmp_path: Path, passfile: Path, capsys: Any
) -> None:
    out = tmp_path / "keys.bundle"
    assert export(node_dir, out, passfile) == 0
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    capsys.readouterr()
    assert import_(tmp_path / "a", out, wrong) == 1
    err = capsys.readouterr().err
    assert "wrong passphrase" in err and "hint:" in err
    assert not (tmp_path / "a").exists()
    # One byte of the ciphertext changed, or of the clear header (authenticated too).
    doc = json.loads(out.read_text())
    flipped = doc["ciphertext"][:10] + ("A" if doc["ciphertext"][10] != "A" else "B")
    damaged = tmp_path / "damaged"
    damaged.write_text(json.dumps({**doc, "ciphertext": flipped + doc["ciphertext"][11:]}))
    assert import_(tmp_path / "b", damaged, passfile) == 1
    assert "damaged" in capsys.readouterr().err
    renamed = tmp_path / "renamed"
    renamed.write_text(json.dumps({**doc, "created_at": "2020-01-01T00:00:00Z"}))
    assert import_(tmp_path / "c", renamed, passfile) == 1
    assert "damaged" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.write_text("hello")
    assert import_(tmp_path / "d", junk, passfile) == 1
    assert "not a onestop key bundle" in capsys.readouterr().err
    greedy = tmp_path / "greedy"
    greedy.write_text(json.dumps({**doc, "kdf": {**doc["kdf"], "n": 2**30}}))
    assert import_(tmp_path / "e", greedy, passfile) == 1
    assert "out of range" in capsys.readouterr().err


def test_refuses_overwrite_and_weak_passphrases(
    node_dir: Path, tmp_path: Path, passfile: Path, capsys: Any, monkeypatch: Any
) -> None:
    out = tmp_path / "keys.bundle"
    out.write_text("something precious")
    assert export(node_dir, out, passfile) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert out.read_text() == "something precious"
    assert (node_dir / "recovery.key").exists()
    short = tmp_path / "short"
    short.write_text("eleven char\n")
    assert export(node_dir, tmp_path / "new", short, "--keep-recovery-key") == 1
    assert "at least 12" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert export(node_dir, tmp_path / "new", empty) == 1
    assert "empty" in capsys.readouterr().err
    monkeypatch.delenv(bundle.PASSPHRASE_ENV, raising=False)
    assert run_cli("node", "keys", "export", "--data", str(node_dir), "--out",
                   str(tmp_path / "new")) == 1  # fmt: skip
    assert bundle.PASSPHRASE_ENV in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and (node_dir / "recovery.key").exists()


def test_a_lost_node_comes_back_from_its_bundle_and_replica(
    tmp_path: Path,
    passfile: Path,
    procs: Procs,
) -> None:
    """The data directory is lost; the bundle (kept elsewhere) and the replica restore it."""
    data = tmp_path / "center"
    assert run_cli("node", "init", "--data", str(data), "--code", "370102001", "--name",
                   "解放路街道便民服务中心", "--level", "township") == 0  # fmt: skip
    ls = procs.start("litestream", "node", "replicate", "--data", str(data))
    rpo.wait_replicating(ls, tmp_path / "litestream.log")
    for n in (1, 2):
        assert run_cli("node", "window", "add", "--data", str(data), "--number", str(n),
                       "--queues", "*") == 0  # fmt: skip
    size = log_size(data)
    wait_for("the replica to hold the log", lambda: replica_log_size(data, tmp_path) == size)
    procs.kill9(ls)
    kept = tmp_path / "safe" / "center.bundle"
    kept.parent.mkdir()
    assert export(data, kept, passfile) == 0
    shutil.rmtree(data)

    back = tmp_path / "center-again"
    assert import_(back, kept, passfile) == 0
    assert run_cli("node", "replica-config", "--data", str(back), "--replica-path",
                   str(tmp_path / "replica")) == 0  # fmt: skip
    assert run_cli("node", "restore", "--data", str(back), "--no-hub") == 0
    assert log_size(back) == size + 1  # and the signed node.restored
    assert run_cli("verify", "--data", str(back)) == 0
    # The same key signs on: the next event continues the log.
    assert run_cli("node", "window", "add", "--data", str(back), "--number", "3",
                   "--queues", "*") == 0  # fmt: skip
    assert log_size(back) == size + 2
    assert run_cli("verify", "--data", str(back)) == 0
