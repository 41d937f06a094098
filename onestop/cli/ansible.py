"""``onestop ansible inventory``: the Ansible inventory of every service center.

Built from the division data (:mod:`onestop.divisions`): one host per center named ``c`` +
its division code (``c370102001``), with ``onestop_node_code``, ``onestop_node_name``,
``onestop_node_level`` and ``onestop_node_parent``; groups per level (``province``, ``city``,
``county``, ``township``, all under ``nodes``), per city (``city_3701``: the city's center and
its county groups) and per county (``county_370102``: the county's center and its townships);
and the ``hub`` group.  ``--under CODE`` keeps one subtree.

``ansible/inventory/generate.py`` runs the same code; called by Ansible with ``--list`` it is
a dynamic inventory (settings from ``ONESTOP_INVENTORY_UNDER``, ``ONESTOP_HUB_URL`` ...).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from onestop import divisions
from onestop.errors import CliError

LEVELS = divisions.LEVELS
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def host_name(code: str) -> str:
    return f"c{code}"


def build(
    rows: list[dict[str, str]],
    *,
    under: Sequence[str] = (),
    levels: Sequence[str] = (),
    hub_host: str = "hub01",
    hub_url: str = "",
    domain: str = "",
) -> dict[str, Any]:
    """The inventory as Ansible's YAML inventory structure (``{"all": {...}}``)."""
    if under:
        keep: dict[str, dict[str, str]] = {}
        for code in under:
            for r in divisions.subtree(code, rows):
                keep[r["code"]] = r
        selected = [r for r in rows if r["code"] in keep]
    else:
        selected = list(rows)
    if levels:
        selected = [r for r in selected if r["level"] in levels]

    level_groups: dict[str, dict[str, Any]] = {lvl: {} for lvl in LEVELS}
    cities: dict[str, dict[str, Any]] = {}
    counties: dict[str, dict[str, Any]] = {}
    index = divisions.by_code(rows)

    def city_group(code: str) -> dict[str, Any]:
        return cities.setdefault(f"city_{code}", {"hosts": {}, "children": {}})

    def county_group(code: str) -> dict[str, Any]:
        g = counties.setdefault(f"county_{code}", {"hosts": {}})
        city = index[code]["parent_code"]
        city_group(city)["children"][f"county_{code}"] = {}
        return g

    for r in selected:
        name = host_name(r["code"])
        hv: dict[str, Any] = {
            "onestop_node_code": r["code"],
            "onestop_node_name": r["name"],
            "onestop_node_level": r["level"],
            "onestop_node_parent": r["parent_code"],
        }
        if domain:
            hv["ansible_host"] = f"{name}.{domain}"
        level_groups[r["level"]][name] = hv
        if r["level"] == "city":
            city_group(r["code"])["hosts"][name] = {}
        elif r["level"] == "county":
            county_group(r["code"])["hosts"][name] = {}
        elif r["level"] == "township":
            county_group(r["parent_code"])["hosts"][name] = {}

    hub_vars: dict[str, Any] = {}
    if domain and "." not in hub_host:
        hub_vars["ansible_host"] = f"{hub_host}.{domain}"
    children: dict[str, Any] = {
        "hub": {"hosts": {hub_host: hub_vars}},
        "nodes": {
            "children": {lvl: {"hosts": level_groups[lvl]} for lvl in LEVELS if level_groups[lvl]}
        },
    }
    for gname in sorted(cities):
        g = cities[gname]
        entry: dict[str, Any] = {}
        if g["hosts"]:
            entry["hosts"] = g["hosts"]
        if g["children"]:
            entry["children"] = dict(sorted(g["children"].items()))
        children[gname] = entry
    for gname in sorted(counties):
        children[gname] = {"hosts": counties[gname]["hosts"]}
    all_vars: dict[str, Any] = {}
    if hub_url:
        all_vars["onestop_hub_url"] = hub_url
    out: dict[str, Any] = {"all": {}}
    if all_vars:
        out["all"]["vars"] = all_vars
    out["all"]["children"] = children
    return out


def dynamic(inv: dict[str, Any]) -> dict[str, Any]:
    """The same inventory in Ansible's dynamic inventory (``--list``) JSON shape."""
    out: dict[str, Any] = {"_meta": {"hostvars": {}}}
    hostvars: dict[str, dict[str, Any]] = out["_meta"]["hostvars"]

    def walk(name: str, g: dict[str, Any]) -> None:
        entry = out.setdefault(name, {})
        hosts = g.get("hosts") or {}
        if hosts:
            entry["hosts"] = list(hosts)
            for h, v in hosts.items():
                hostvars.setdefault(h, {}).update(v or {})
        if g.get("vars"):
            entry["vars"] = g["vars"]
        kids = g.get("children") or {}
        if kids:
            entry["children"] = list(kids)
            for k, sub in kids.items():
                walk(k, sub or {})

    walk("all", inv["all"])
    return out


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED and not s.isdigit():
        return s
    return json.dumps(s, ensure_ascii=False)


def to_yaml(data: dict[str, Any], indent: int = 0) -> str:
    """Block-style YAML for nested dicts of scalars (all an inventory needs)."""
    lines: list[str] = []
    pad = "  " * indent
    for k, v in data.items():
        key = _scalar(k)
        if isinstance(v, dict):
            if v:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(v, indent + 1).rstrip("\n"))
            else:
                lines.append(f"{pad}{key}: {{}}")
        else:
            lines.append(f"{pad}{key}: {_scalar(v)}")
    return "\n".join(lines) + "\n"


def render(inv: dict[str, Any], source: str) -> str:
    head = (
        "---\n"
        "# onestop inventory: one host per service center, generated from the division data\n"
        f"# ({source}) by `onestop ansible inventory`; regenerate rather than edit.\n"
    )
    return head + to_yaml(inv)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--under",
        action="append",
        default=[],
        metavar="CODE",
        help="only this division and everything under it (repeatable), e.g. 3701",
    )
    p.add_argument(
        "--level",
        action="append",
        default=[],
        choices=LEVELS,
        help="only centers of this level (repeatable)",
    )
    p.add_argument("--hub-host", default="hub01", help="inventory name of the hub host (hub01)")
    p.add_argument("--hub-url", default="", help="URL nodes push to (sets onestop_hub_url)")
    p.add_argument(
        "--domain",
        default="",
        help="set ansible_host to <host>.<domain>, e.g. c370102001.zwfw.example",
    )
    p.add_argument("--divisions", default="", help="division CSV (default: the shipped data)")
    p.add_argument(
        "--format",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml (inventory file) or json (dynamic inventory --list shape)",
    )
    p.add_argument("--output", "-o", default="-", help="file to write (default stdout)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    a = sub.add_parser("ansible", help="Ansible rollout helpers")
    asub = a.add_subparsers(dest="ansible_command", metavar="COMMAND")
    p = asub.add_parser("inventory", help="write the inventory of every center (YAML)")
    _add_options(p)
    p.set_defaults(func=cmd_inventory)


def _generate(args: argparse.Namespace) -> str:

    if args.hub_host and not _HOSTNAME.match(args.hub_host):
        raise CliError(f"--hub-host: not a host name: {args.hub_host!r}")
    try:
        rows = divisions.load(args.divisions or None)
        inv = build(
            rows,
            under=args.under,
            levels=args.level,
            hub_host=args.hub_host,
            hub_url=args.hub_url,
            domain=args.domain,
        )
    except divisions.DivisionError as exc:
        raise CliError(str(exc)) from None
    if args.format == "json":
        return json.dumps(dynamic(inv), ensure_ascii=False, indent=1) + "\n"
    source = Path(args.divisions).name if args.divisions else divisions.CSV_NAME
    return render(inv, source)


def cmd_inventory(args: argparse.Namespace) -> int:
    text = _generate(args)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        n = text.count("onestop_node_code")
        print(f"wrote {args.output}: {n} centers", file=sys.stderr)
    return 0


def generate_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ansible/inventory/generate.py`` (also a dynamic inventory script)."""

    p = argparse.ArgumentParser(
        prog="generate.py",
        description="Ansible inventory of every onestop service center, from the division data.",
    )
    _add_options(p)
    p.add_argument(
        "--list",
        action="store_true",
        help="dynamic inventory mode: JSON of everything (options from ONESTOP_* env)",
    )
    p.add_argument("--host", default=None, help="dynamic inventory mode: vars of one host")
    args = p.parse_args(argv)
    if args.list or args.host is not None:
        env = os.environ
        args.under = [c for c in env.get("ONESTOP_INVENTORY_UNDER", "").split(",") if c]
        args.level = [c for c in env.get("ONESTOP_INVENTORY_LEVELS", "").split(",") if c]
        args.hub_host = env.get("ONESTOP_INVENTORY_HUB_HOST", "hub01")
        args.hub_url = env.get("ONESTOP_HUB_URL", "")
        args.domain = env.get("ONESTOP_INVENTORY_DOMAIN", "")
        args.format = "json"
    try:
        text = _generate(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.host is not None:
        hv = json.loads(text)["_meta"]["hostvars"].get(args.host, {})
        text = json.dumps(hv, ensure_ascii=False) + "\n"
    if args.output == "-" or args.list or args.host is not None:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0
