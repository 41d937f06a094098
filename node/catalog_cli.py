"""``onestop node catalog ...``: check a service catalog file or import it into a node.

``node/cli.py`` calls :func:`register_catalog` with the subparsers of ``onestop node``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from node import db as nodedb
from node.catalog import import_catalog
from schemas.catalog import CatalogError, load_catalog, seed_path

MAX_ERRORS_SHOWN = 20


def register_catalog(node_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``catalog import FILE --data DIR`` and ``catalog check FILE``."""
    parser = node_subparsers.add_parser(
        "catalog",
        help="service catalog: departments, areas and service items",
        description="Check a service catalog file or import it into a node database.",
    )
    parser.set_defaults(func=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="catalog_command", metavar="ACTION")

    imp = actions.add_parser(
        "import",
        help="validate FILE and import it into the node in DIR",
        description=(
            "Validate the catalog FILE, then upsert its departments, areas and items into "
            "DIR/node.db in one transaction and keep one queue per area and department. "
            f"The shipped sample catalog is {seed_path().name} in schemas/seed."
        ),
    )
    imp.add_argument("file", metavar="FILE", help="catalog JSON file")
    imp.add_argument("--data", required=True, metavar="DIR", help="node data directory")
    imp.set_defaults(func=cmd_import)

    check = actions.add_parser("check", help="validate FILE without touching any database")
    check.add_argument("file", metavar="FILE", help="catalog JSON file")
    check.set_defaults(func=cmd_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _print_errors(exc: CatalogError) -> None:
    for path, message in exc.errors[:MAX_ERRORS_SHOWN]:
        print(f"error: {path}: {message}", file=sys.stderr)
    more = len(exc.errors) - MAX_ERRORS_SHOWN
    if more > 0:
        print(f"error: ... and {more} more", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        catalog = load_catalog(Path(args.file))
    except CatalogError as exc:
        _print_errors(exc)
        return 1
    print(
        f"catalog {catalog['version']} is valid: {len(catalog['items'])} items, "
        f"{len(catalog['departments'])} departments, {len(catalog['areas'])} areas"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    try:
        catalog = load_catalog(Path(args.file))
    except CatalogError as exc:
        _print_errors(exc)
        return 1
    data_dir = Path(args.data)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = nodedb.connect(data_dir / "node.db")
    try:
        nodedb.migrate(db)
        counts = import_catalog(db, catalog)
    except CatalogError as exc:  # cannot happen after load_catalog, but never half-import
        _print_errors(exc)
        return 1
    finally:
        db.conn.close()
    print(
        f"catalog {counts['version']} imported: {counts['items']} items, "
        f"{counts['departments']} departments, {counts['areas']} areas"
    )
    print(
        f"queues: {counts['queues']} active ({counts['queues_created']} new, "
        f"{counts['queues_reactivated']} reactivated, "
        f"{counts['queues_deactivated']} deactivated)"
    )
    if counts["stale_items"]:
        print(f"note: {counts['stale_items']} items in the database are not in this catalog")
    return 0
