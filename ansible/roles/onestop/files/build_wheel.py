#!/usr/bin/env python3
"""Build the onestop wheel on the controller, once per state of the sources.

Prints one JSON object: ``{"changed", "path", "name", "sha256", "fingerprint"}``.  The wheel
is kept in ``CACHE/<fingerprint>/``; the fingerprint hashes pyproject.toml, README.md and every
file of the packages the wheel holds, so unchanged sources never build twice.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path


def fingerprint(src: Path) -> str:
    conf = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
    packages = conf["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    files = [src / "pyproject.toml", src / "README.md"]
    for pkg in packages:
        files += sorted(
            p
            for p in (src / pkg).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
    h = hashlib.sha256()
    for f in files:
        if f.exists():
            h.update(str(f.relative_to(src)).encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--src", required=True, help="the onestop source tree (holds pyproject.toml)")
    p.add_argument("--cache", required=True, help="where built wheels are kept")
    args = p.parse_args()
    src, cache = Path(args.src).resolve(), Path(args.cache).resolve()
    fp = fingerprint(src)
    out = cache / fp
    wheels = sorted(out.glob("onestop-*.whl")) if out.is_dir() else []
    changed = False
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{fp}-", dir=cache))
        try:
            # With the build backend at hand, build offline; else pip fetches it.
            offline = importlib.util.find_spec("hatchling") is not None
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                *(["--no-build-isolation"] if offline else []),
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
                "-w",
                str(tmp),
                str(src),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stdout + done.stderr)
                return done.returncode
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        wheels = sorted(out.glob("onestop-*.whl"))
        changed = True
    if len(wheels) != 1:
        sys.stderr.write(f"expected one onestop wheel in {out}, found {len(wheels)}\n")
        return 1
    wheel = wheels[0]
    print(
        json.dumps(
            {
                "changed": changed,
                "path": str(wheel),
                "name": wheel.name,
                "sha256": sha256(wheel),
                "fingerprint": fp,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
