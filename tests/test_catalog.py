"""The service catalog: schema, cross-reference checks, import, queues and the CLI."""

from __future__ import annotations

import argparse
import copy
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

import schemas
from node import db as nodedb
from node import events
from node.catalog import import_catalog, prefix_letters
from node.catalog_cli import register_catalog
from schemas.catalog import KINDS, CatalogError, load_catalog, seed_path


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return load_catalog(seed_path())


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = nodedb.connect(tmp_path / "node.db")
    nodedb.migrate(database)
    yield database
    database.conn.close()


def run_cli(argv: list[str]) -> int:
    """Run ``onestop node <argv>`` through a parser wired the way node/cli.py wires it."""
    parser = argparse.ArgumentParser(prog="onestop node")
    register_catalog(parser.add_subparsers(dest="node_command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def snapshot(database: sqlite_utils.Database) -> dict[str, list[tuple[Any, ...]]]:
    tables = [
        r[0]
        for r in database.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
    ]
    return {
        t: sorted(tuple(r) for r in database.execute(f'SELECT * FROM "{t}"').fetchall())
        for t in tables
    }


def queues(database: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in nodedb.rows(database, "SELECT * FROM queues")}


# --------------------------------------------------------------------------- the seed


def test_seed_is_valid_and_large_enough(seed: dict[str, Any]) -> None:
    assert len(seed["items"]) >= 70
    assert len(seed["departments"]) >= 20
    assert len(seed["areas"]) >= 8
    used_departments = {d for item in seed["items"] for d in item["departments"]}
    assert len(used_departments) >= 12
    assert "not the official list" in seed["source"].lower()
    assert len({i["code"] for i in seed["items"]}) == len(seed["items"])
    for item in seed["items"]:
        assert re.fullmatch(r"370000-[a-z]+-\d{3}", item["code"]), item["code"]
        assert item["code"].split("-")[1] == item["departments"][0]
        assert 2 <= len(item["materials"]) <= 6, item["code"]
        assert re.search(r"[\u4e00-\u9fff]", item["name_zh"]), item["code"]
        assert item["name_en"].isascii(), item["code"]
        assert all(m["name_en"].isascii() for m in item["materials"]), item["code"]


def test_seed_has_every_kind_and_multi_department_items(seed: dict[str, Any]) -> None:
    kinds = Counter(i["kind"] for i in seed["items"])
    assert set(kinds) == set(KINDS)
    assert kinds["licensing"] >= 70
    multi = [i for i in seed["items"] if len(i["departments"]) >= 2]
    assert len(multi) >= 5
    assert any(len(i["departments"]) == 3 for i in seed["items"])
    codes = {d["code"] for d in seed["departments"]}
    assert {"edu", "civil", "agri", "samr", "health", "hrss", "police"} <= codes


def test_seed_sino_foreign_school_termination_needs_edu_and_civil(seed: dict[str, Any]) -> None:
    item = next(i for i in seed["items"] if i["name_zh"] == "中外合作办学机构终止")
    assert item["kind"] == "licensing"
    assert item["departments"][0] == "edu"
    assert "civil" in item["departments"]
    assert any(m["critical"] for m in item["materials"])
    assert item["promised_days"] <= item["statutory_days"]


@pytest.mark.parametrize(
    "name_zh",
    [
        "民办非企业单位成立登记",
        "食品生产许可（特殊食品）",
        "建筑业企业资质核准",
        "渔业捕捞许可证核发（海洋大中型渔船）",
        "林木采伐许可证核发",
        "取水许可",
        "排污许可",
        "律师事务所设立许可",
        "人力资源服务许可",
        "12345政务服务便民热线投诉受理",
        "政务服务咨询",
    ],
)
def test_seed_has_real_items(seed: dict[str, Any], name_zh: str) -> None:
    assert any(i["name_zh"] == name_zh for i in seed["items"])


def test_schema_helpers() -> None:
    schema = schemas.load("catalog")
    assert schema["$schema"].endswith("2020-12/schema")
    schema["title"] = "changed"  # a copy: the cache is untouched
    assert schemas.load("catalog")["title"] != "changed"
    assert schemas.validator("catalog") is schemas.validator("catalog")
    assert "catalog" in schemas.names()
    with pytest.raises(FileNotFoundError):
        schemas.load("no-such-schema")
    with pytest.raises(ValueError):
        schemas.load("../catalog")


# --------------------------------------------------------------------------- bad catalogs


def _break(seed: dict[str, Any], change: Any) -> dict[str, Any]:
    bad = copy.deepcopy(seed)
    change(bad)
    return bad


def _set(path: list[Any], value: Any) -> Any:
    def change(cat: dict[str, Any]) -> None:
        target: Any = cat
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: list[Any]) -> Any:
    def change(cat: dict[str, Any]) -> None:
        target: Any = cat
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _promise_too_long(cat: dict[str, Any]) -> None:
    cat["items"][4]["promised_days"] = cat["items"][4]["statutory_days"] + 1


def _duplicate_item(cat: dict[str, Any]) -> None:
    cat["items"][7]["code"] = cat["items"][1]["code"]


def _duplicate_department(cat: dict[str, Any]) -> None:
    cat["departments"][3]["code"] = cat["departments"][0]["code"]


def _duplicate_material(cat: dict[str, Any]) -> None:
    cat["items"][2]["materials"][1]["code"] = cat["items"][2]["materials"][0]["code"]


def _unknown_department(cat: dict[str, Any]) -> None:
    cat["items"][2]["departments"] = [cat["items"][2]["departments"][0], "nosuchdept"]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (_delete(["items", 3, "name_en"]), "items[3].name_en", "required"),
        (_delete(["version"]), "version", "required"),
        (_set(["items", 5, "kind"], "permit"), "items[5].kind", "one of"),
        (_unknown_department, "items[2].departments[1]", "unknown department 'nosuchdept'"),
        (_set(["items", 9, "area"], "nowhere"), "items[9].area", "unknown area"),
        (_duplicate_item, "items[7].code", "duplicate item code"),
        (_duplicate_department, "departments[3].code", "duplicate department code"),
        (_duplicate_material, "items[2].materials[1].code", "duplicate material code"),
        (_promise_too_long, "items[4].promised_days", "exceeds the statutory"),
        (
            _set(["items", 12, "materials", 0, "critical"], "yes"),
            "items[12].materials[0].critical",
            "must be boolean",
        ),
        (
            _set(["items", 12, "materials", 0, "critical"], 1),
            "items[12].materials[0].critical",
            "must be boolean",
        ),
        (_set(["items", 0, "statutory_days"], 0), "items[0].statutory_days", ">= 1"),
        (_set(["items", 0, "promised_days"], -1), "items[0].promised_days", ">= 0"),
        (_set(["items", 0, "promised_days"], True), "items[0].promised_days", "must be integer"),
        (_set(["items", 0, "promised_days"], 2.5), "items[0].promised_days", "must be integer"),
        (_set(["items", 6, "departments"], []), "items[6].departments", "at least 1"),
        (_set(["items", 6, "colour"], "red"), "items[6].colour", "unknown field"),
        (_set(["areas", 1, "code"], "Has Spaces"), "areas[1].code", "not a valid code"),
        (_set(["departments", 2, "name_zh"], ""), "departments[2].name_zh", "empty"),
        (_set(["items"], {}), "items", "must be array"),
    ],
)
def test_bad_catalog_names_the_exact_path(
    seed: dict[str, Any], change: Any, path: str, words: str
) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(_break(seed, change))
    assert info.value.path == path
    assert words in info.value.message
    assert isinstance(info.value, ValueError)
    assert str(info.value) == f"{path}: {info.value.message}"


def test_every_problem_is_listed(seed: dict[str, Any]) -> None:
    bad = copy.deepcopy(seed)
    bad["items"][20]["kind"] = "nope"
    bad["items"][3]["materials"][1]["critical"] = "no"
    with pytest.raises(CatalogError) as info:
        load_catalog(bad)
    assert info.value.path == "items[3].materials[1].critical"  # document order
    assert [p for p, _ in info.value.errors] == [
        "items[3].materials[1].critical",
        "items[20].kind",
    ]


def test_bad_json_sources(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"^\$: not valid JSON"):
        load_catalog('{"version": ')
    with pytest.raises(CatalogError, match="duplicate key 'version'"):
        load_catalog('{"version": "1", "version": "2"}')
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.json")
    with pytest.raises(CatalogError) as info:
        load_catalog(json.dumps([1, 2]))
    assert info.value.path == "$"


def test_sources_text_path_and_dict_agree(seed: dict[str, Any]) -> None:
    text = seed_path().read_text(encoding="utf-8")
    assert load_catalog(text) == load_catalog(str(seed_path())) == load_catalog(seed) == seed


# --------------------------------------------------------------------------- import


def test_prefix_letters() -> None:
    assert [prefix_letters(n) for n in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
    ]


def test_import_creates_rows_queues_and_one_event(
    db: sqlite_utils.Database, seed: dict[str, Any]
) -> None:
    counts = import_catalog(db, seed)
    n_areas, n_depts = len(seed["areas"]), len(seed["departments"])
    assert counts["items"] == len(seed["items"])
    assert counts["departments"] == n_depts
    assert counts["areas"] == n_areas
    assert counts["queues_created"] == n_areas + n_depts
    assert db.execute("SELECT count(*) FROM items").fetchone()[0] == len(seed["items"])

    item = nodedb.one(db, "SELECT * FROM items WHERE name_zh = '中外合作办学机构终止'")
    assert item is not None
    assert json.loads(item["departments"])[:2] == ["edu", "civil"]
    assert all(isinstance(m["critical"], bool) for m in json.loads(item["materials"]))

    qs = queues(db)
    assert len(qs) == n_areas + n_depts
    prefixes = [q["prefix"] for q in qs.values()]
    assert len(set(prefixes)) == len(prefixes)
    ordered = sorted(qs.values(), key=lambda q: q["sort"])
    expected = [prefix_letters(i) for i in range(n_areas + n_depts)]
    assert [q["prefix"] for q in ordered] == expected
    assert all(q["kind"] == "area" for q in ordered[:n_areas])  # areas first: A, B, C ...
    assert qs[f"area:{seed['areas'][0]['code']}"]["prefix"] == "A"
    assert qs[f"dept:{seed['departments'][0]['code']}"]["prefix"] == prefix_letters(n_areas)
    assert any(len(p) == 2 for p in prefixes)  # more than 26 queues
    assert qs["dept:edu"]["name_zh"] == "省教育厅" and qs["dept:edu"]["ref"] == "edu"
    assert all(q["active"] == 1 for q in qs.values())

    evs = nodedb.rows(db, "SELECT * FROM events WHERE kind = 'catalog.imported'")
    assert len(evs) == 1
    assert evs[0]["entity"] == "catalog" and evs[0]["entity_id"] == seed["version"]
    body = json.loads(evs[0]["body"])
    assert {k: body[k] for k in ("version", "items", "departments", "areas")} == {
        "version": seed["version"],
        "items": len(seed["items"]),
        "departments": n_depts,
        "areas": n_areas,
    }
    # The whole document and the queues it keeps: the tables follow from the event alone.
    assert body["catalog"] == load_catalog(seed)
    assert {q["code"]: q["prefix"] for q in body["queues"]} == {
        code: q["prefix"] for code, q in qs.items()
    }
    assert body["queues_deactivated"] == []
    assert nodedb.get_meta(db, "catalog_version") == seed["version"]


def test_reimport_keeps_prefixes_and_deactivates_gone_queues(
    db: sqlite_utils.Database, seed: dict[str, Any]
) -> None:
    import_catalog(db, seed)
    before = {code: q["prefix"] for code, q in queues(db).items()}
    again = import_catalog(db, seed)
    assert again["queues_created"] == again["queues_deactivated"] == 0
    assert {code: q["prefix"] for code, q in queues(db).items()} == before

    # Drop a department (and its items) and an area; add a new department in front.
    changed = copy.deepcopy(seed)
    changed["version"] = seed["version"] + "-b"
    changed["departments"] = [
        {"code": "grain", "name_zh": "省粮食和储备局", "name_en": "Grain and Reserves Bureau"}
    ] + [d for d in changed["departments"] if d["code"] != "sport"]
    changed["items"] = [i for i in changed["items"] if "sport" not in i["departments"]]
    gone_area = "safety"
    changed["areas"] = [a for a in changed["areas"] if a["code"] != gone_area]
    changed["items"] = [i for i in changed["items"] if i["area"] != gone_area]
    counts = import_catalog(db, changed)
    assert counts["queues_created"] == 1
    assert counts["queues_deactivated"] == 2
    assert counts["stale_items"] == len(seed["items"]) - len(changed["items"])
    qs = queues(db)
    assert qs["dept:sport"]["active"] == 0 and qs[f"area:{gone_area}"]["active"] == 0
    assert qs["dept:sport"]["prefix"] == before["dept:sport"]
    assert qs["dept:grain"]["prefix"] == prefix_letters(len(before))  # never reuses
    for code, prefix in before.items():
        assert qs[code]["prefix"] == prefix

    # Bring them back: same prefixes, active again.
    counts = import_catalog(db, seed)
    assert counts["queues_reactivated"] == 2 and counts["queues_deactivated"] == 1
    qs = queues(db)
    assert qs["dept:sport"]["active"] == 1 and qs["dept:sport"]["prefix"] == before["dept:sport"]
    assert qs["dept:grain"]["active"] == 0
    assert len(nodedb.rows(db, "SELECT * FROM events WHERE kind = 'catalog.imported'")) == 4


def test_import_updates_names_in_place(db: sqlite_utils.Database, seed: dict[str, Any]) -> None:
    import_catalog(db, seed)
    changed = copy.deepcopy(seed)
    changed["departments"][0]["name_en"] = "Renamed Commission"
    changed["items"][0]["promised_days"] = 1
    import_catalog(db, changed)
    code = seed["departments"][0]["code"]
    assert nodedb.one(db, "SELECT name_en FROM departments WHERE code = ?", [code]) == {
        "name_en": "Renamed Commission"
    }
    assert queues(db)[f"dept:{code}"]["name_en"] == "Renamed Commission"
    row = nodedb.one(
        db, "SELECT promised_days FROM items WHERE code = ?", [seed["items"][0]["code"]]
    )
    assert row == {"promised_days": 1}


def test_import_is_one_transaction(
    db: sqlite_utils.Database, seed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(db)

    def boom(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(events, "append", boom)
    with pytest.raises(RuntimeError):
        import_catalog(db, seed)
    assert snapshot(db) == before


def test_import_rejects_an_invalid_dict(db: sqlite_utils.Database, seed: dict[str, Any]) -> None:
    bad = copy.deepcopy(seed)
    bad["items"][-1]["departments"] = ["ghost"]
    before = snapshot(db)
    with pytest.raises(CatalogError) as info:
        import_catalog(db, bad)
    assert info.value.path == f"items[{len(bad['items']) - 1}].departments[0]"
    assert snapshot(db) == before


# --------------------------------------------------------------------------- CLI


def full_catalog(seed: dict[str, Any]) -> dict[str, Any]:
    """A province-sized catalog: 619 licensing and 48 public-service items."""
    depts = [d["code"] for d in seed["departments"]]
    areas = [a["code"] for a in seed["areas"]]
    public = ["consultation", "acceptance", "handling", "complaint"]
    items = []
    for n in range(619 + 48):
        kind = "licensing" if n < 619 else public[n % 4]
        lead = depts[n % len(depts)]
        reviewers = [lead] + ([depts[(n + 7) % len(depts)]] if n % 3 == 0 else [])
        statutory = (20, 30, 45, 60, 10)[n % 5]
        items.append(
            {
                "code": f"370000-{lead}-{n + 1:04d}",
                "name_zh": f"示例事项{n + 1}",
                "name_en": f"Sample item {n + 1}",
                "kind": kind,
                "area": areas[n % len(areas)],
                "departments": reviewers,
                "materials": [
                    {
                        "code": f"m{j}",
                        "name_zh": f"材料{j}",
                        "name_en": f"Material {j}",
                        "critical": j == 0,
                    }
                    for j in range(2 + n % 4)
                ],
                "promised_days": statutory // 2,
                "statutory_days": statutory,
            }
        )
    assert Counter(i["kind"] for i in items)["licensing"] == 619
    return {
        "version": "2024.full",
        "source": "generated for tests",
        "departments": seed["departments"],
        "areas": seed["areas"],
        "items": items,
    }


def test_cli_imports_a_full_catalog(
    tmp_path: Path, seed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "full.json"
    file.write_text(json.dumps(full_catalog(seed), ensure_ascii=False), encoding="utf-8")
    data = tmp_path / "data"
    assert run_cli(["catalog", "import", str(file), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "667 items" in out
    assert f"{len(seed['departments'])} departments" in out

    database = nodedb.connect(data / "node.db")
    try:
        kinds = dict(database.execute("SELECT kind, count(*) FROM items GROUP BY kind").fetchall())
        assert kinds["licensing"] == 619
        assert sum(kinds.values()) == 667
        n_queues = len(seed["areas"]) + len(seed["departments"])
        assert database.execute("SELECT count(DISTINCT prefix) FROM queues").fetchone()[0] == (
            n_queues
        )
    finally:
        database.conn.close()


def test_cli_bad_file_leaves_the_database_unchanged(
    tmp_path: Path, seed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert run_cli(["catalog", "import", str(seed_path()), "--data", str(data)]) == 0
    database = nodedb.connect(data / "node.db")
    before = snapshot(database)

    bad = copy.deepcopy(seed)
    bad["version"] = "broken"
    bad["items"][40]["materials"][0]["critical"] = "yes"
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    assert run_cli(["catalog", "import", str(file), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("error: items[40].materials[0].critical: must be boolean")

    bad = copy.deepcopy(seed)
    bad["items"][-1]["promised_days"] = 999
    file.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    assert run_cli(["catalog", "import", str(file), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: items[{len(bad['items']) - 1}].promised_days: ")

    file.write_text("{not json", encoding="utf-8")
    assert run_cli(["catalog", "import", str(file), "--data", str(data)]) == 1
    assert capsys.readouterr().err.startswith("error: $: not valid JSON")

    assert snapshot(database) == before
    database.conn.close()


def test_cli_bad_file_creates_no_database(tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text('{"version": "x"}', encoding="utf-8")
    data = tmp_path / "data"
    assert run_cli(["catalog", "import", str(file), "--data", str(data)]) == 1
    assert not (data / "node.db").exists()


def test_cli_check_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["catalog", "check", str(seed_path())]) == 0
    assert "is valid" in capsys.readouterr().out
    assert run_cli(["catalog", "check", str(tmp_path / "nope.json")]) == 1
    assert capsys.readouterr().err.startswith("error: $: cannot read")
    assert run_cli(["catalog"]) == 2
