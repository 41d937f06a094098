"""The hub's fast paths decide exactly as the slow ones: event schemas compiled by
fastjsonschema against jsonschema, signatures checked ahead by processes against checking them
in order."""

from __future__ import annotations

import asyncio
import copy
import random
import re._constants as C
import re._parser as sre_parse
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import schemas
from bench.records import case_events
from hub import config as hubcfg
from hub import identity
from hub import worker as workerm
from hub.db import open_db
from hub.ingest import schemas as event_schemas
from hub.ingest.envelope import ingest_envelope, parse_envelope
from hub.ingest.signatures import signature_items
from sync.canonical import b64encode
from tests import test_hub_support as support
from tests.test_hub_support import TOWNSHIP, NodeLog, enroll, envelope, push_ok

hub_dir = support.hub_dir
hub_client = support.hub_client

KINDS = sorted(
    e.name.removesuffix(".schema.json")
    for e in resources.files("schemas").joinpath("events").iterdir()
    if e.name.endswith(".schema.json")
)

# ----------------------------------------------------------------------------- schemas

JUNK: list[Any] = [None, True, False, 0, 1, -1, 2, 1.0, 1.5, -0.5, 2**60, float("nan"),
                   float("inf"), "", "x", "中文", "A1", "2026-01-01", "a" * 300, [], {}, [1],
                   ["x"], {"a": 1}, [None]]  # fmt: skip
CHARS = "abcXYZ09-_*:中文办件é \n"


def _matching(pattern: str, r: random.Random) -> str:
    """A string the regex matches (mostly): walks the parsed pattern."""

    def gen(items: Any) -> str:
        out = []
        for op, av in items:
            if op is C.LITERAL:
                out.append(chr(av))
            elif op is C.NOT_LITERAL:
                out.append(r.choice([c for c in CHARS if ord(c) != av]))
            elif op is C.ANY:
                out.append(r.choice(CHARS))
            elif op is C.IN:
                out.append(in_class(av))
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
                lo, hi, sub = av
                hi = lo + 4 if hi is C.MAXREPEAT else min(hi, lo + 4)
                out.append("".join(gen(sub) for _ in range(r.randint(lo, hi))))
            elif op is C.SUBPATTERN:
                out.append(gen(av[-1]))
            elif op is C.BRANCH:
                out.append(gen(r.choice(av[1])))
            elif op is C.AT:
                pass
            else:  # pragma: no cover - a pattern construct the schemas don't use yet
                out.append(r.choice(CHARS))
        return "".join(out)

    def in_class(av: Any) -> str:
        chars: list[str] = []
        negate = False
        for op, a in av:
            if op is C.NEGATE:
                negate = True
            elif op is C.LITERAL:
                chars.append(chr(a))
            elif op is C.RANGE:
                chars += [chr(c) for c in range(a[0], min(a[1], a[0] + 200) + 1)]
            elif op is C.CATEGORY:
                chars += {C.CATEGORY_DIGIT: list("0123456789")}.get(a, ["x", "_"])
        if negate:
            return r.choice([c for c in CHARS if c not in chars] or ["\u2603"])
        return r.choice(chars)

    return gen(sre_parse.parse(pattern))


def _instance(schema: Any, r: random.Random, p_break: float) -> Any:
    """Mostly valid for ``schema``, broken here and there (wrong types, missing, extra...)."""
    if r.random() < p_break or not isinstance(schema, dict):
        return r.choice(JUNK)
    if "oneOf" in schema and r.random() < 0.8:
        return _instance(r.choice(schema["oneOf"]), r, p_break)
    if "enum" in schema:
        return r.choice(schema["enum"]) if r.random() < 0.9 else r.choice(JUNK)
    types = schema.get("type", r.choice(["string", "integer", "object", "array", "null"]))
    t = r.choice(types) if isinstance(types, list) else types
    if t == "string":
        if "pattern" in schema and r.random() < 0.9:
            s = _matching(schema["pattern"], r)
            if r.random() < 0.1:
                cut = r.randint(0, len(s))
                s = s[:cut] + r.choice(CHARS) + s[cut:]
            return s
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength", lo + 12)
        return "".join(r.choice(CHARS) for _ in range(r.randint(max(0, lo - 1), hi + 1)))
    if t in ("integer", "number"):
        lo = int(schema.get("minimum", -5))
        v = r.randint(lo - 1, int(schema.get("maximum", lo + 100)) + 1)
        x = r.random()
        return float(v) if x < 0.1 else v + 0.5 if x < 0.15 else (x < 0.165) if x < 0.18 else v
    if t == "boolean":
        return r.choice([True, False]) if r.random() < 0.95 else r.choice([0, 1])
    if t == "array":
        n = schema.get("minItems", 0)
        return [_instance(schema.get("items", True), r, p_break)
                for _ in range(r.randint(max(0, n - 1), n + 3))]  # fmt: skip
    if t == "object":
        req = set(schema.get("required", []))
        out = {k: _instance(sub, r, p_break) for k, sub in schema.get("properties", {}).items()
               if r.random() < (0.97 if k in req else 0.5)}  # fmt: skip
        if r.random() < 0.05:
            out[r.choice(["extra", "x", "中文"])] = r.choice(JUNK)
        return out
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_schema_agrees_with_jsonschema(kind: str) -> None:
    validator = event_schemas.event_validator(kind)
    check = event_schemas.event_check(kind)
    assert validator is not None and check is not None
    r = random.Random(kind)
    verdicts = {True: 0, False: 0}
    for i in range(500):
        x = _instance(validator.schema, r, p_break=(0.0, 0.0, 0.01, 0.05)[i % 4])
        assert check(x) == validator.is_valid(x), x
        verdicts[check(x)] += 1
    assert verdicts[True] >= 10 and verdicts[False] >= 50, verdicts  # both sides exercised


def test_bench_bodies_pass_and_broken_ones_get_jsonschemas_message() -> None:
    for ev in case_events(TOWNSHIP, 40):
        ev = dict(ev, entity_id=str(ev["entity_id"]))
        assert event_schemas.event_check(ev["kind"])(ev["body"])  # type: ignore[misc]
        assert event_schemas.event_problem(ev) is None
        bad = copy.deepcopy(ev)
        bad["body"]["case_no"] = "nope"
        problem = event_schemas.event_problem(bad)
        assert problem and problem.startswith(f"{ev['kind']} schema: case_no: 'nope' does not")


def test_schemas_draft_07_reads_otherwise_are_left_to_jsonschema() -> None:
    registry = schemas._registry()
    left: list[dict[str, Any]] = [
        {"prefixItems": [{"type": "string"}]},  # keywords new in 2019-09 / 2020-12
        {"type": "object", "unevaluatedProperties": False},
        {"dependentRequired": {"a": ["b"]}},
        {"$dynamicRef": "#meta"},
        {"$anchor": "x", "type": "string"},
        {"items": [{"type": "string"}]},  # draft 07's tuple form
        {"contentEncoding": "base64"},  # asserted by draft 07, an annotation in 2020-12
        {"type": "object", "patternProperties": {"^a": {}}},  # not among the keywords taken
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"properties": {"a": {"$id": "urn:x", "type": "string"}}},  # an embedded resource
        {"$ref": "urn:elsewhere#/x"},  # not a schema of the schemas package
        {"$ref": "#x"},  # an anchor
        {"type": "string", "pattern": "(?m)^a$"},  # another meaning of $
    ]
    for schema in left:
        assert event_schemas.compile_check(schema, registry) is None, schema
    taken: list[dict[str, Any]] = [
        {"type": "string", "format": 1},  # format alone is an annotation
        {"$ref": "#/$defs/x", "$defs": {"x": {}}},
        {"allOf": [{}]},
        {"$schema": "https://json-schema.org/draft/2020-12/schema"},
    ]
    for schema in taken:
        assert event_schemas.compile_check(schema, registry) is not None, schema


# A schema with what the event schemas don't use yet, each where draft 07 and 2020-12 could
# part: a $ref to another file (whose own #/$defs refs must stay in that file), a $ref with a
# sibling, ``$`` before a final newline and inside a set, format, allOf/anyOf/not.
REFS: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:onestop:schemas:events:test.refs",
    "type": "object",
    "required": ["dept", "code"],
    "additionalProperties": False,
    "properties": {
        "dept": {"$ref": "urn:onestop:schemas:catalog#/$defs/department"},
        "code": {"$ref": "#/$defs/code", "maxLength": 4},
        "price": {"type": "string", "pattern": "^[$][0-9]+$", "format": "email"},
        "n": {
            "anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}],
            "not": {"enum": [13]},
        },
        "tags": {
            "type": "array",
            "maxItems": 2,
            "items": {"allOf": [{"type": "string"}, {"minLength": 1}]},
        },
        "whole": {"$ref": "urn:onestop:schemas:catalog#/$defs/nameEn"},
    },
    "$defs": {"code": {"type": "string", "pattern": "^[a-z]+$"}},
}
REFS_VALID: dict[str, Any] = {
    "dept": {"code": "ab-1", "name_zh": "民政局", "name_en": "Civil Affairs"},
    "code": "abc", "price": "$12", "n": 3, "tags": ["x"], "whole": "x",
}  # fmt: skip
REFS_VALUES: list[Any] = [*JUNK, "ab-1", "ab", "abcde", "abc\n", "$12\n", "$12\n\n", "12",
                          "$", 13, 13.0, 0, 0.5, ["x", "y", "z"], ["", "x"], ["x", 1]]  # fmt: skip


def _mutate(x: Any, r: random.Random) -> Any:
    """A copy of ``x`` with a value here and there replaced, dropped or added."""
    if isinstance(x, dict):
        out = {k: _mutate(v, r) for k, v in x.items() if r.random() > 0.03}
        if r.random() < 0.05:
            out[r.choice(["extra", "code", "n"])] = r.choice(REFS_VALUES)
        return out
    if isinstance(x, list):
        return [_mutate(v, r) for v in x]
    return r.choice(REFS_VALUES) if r.random() < 0.15 else x


def test_refs_siblings_and_patterns_agree_with_jsonschema() -> None:
    registry = schemas._registry()
    validator = Draft202012Validator(REFS, registry=registry)
    check = event_schemas.compile_check(REFS, registry)
    assert check is not None and check(REFS_VALID) and validator.is_valid(REFS_VALID)
    r = random.Random(2020_12)
    verdicts = {True: 0, False: 0}
    for _ in range(3000):
        x = _mutate(REFS_VALID, r)
        assert check(x) == validator.is_valid(x), x
        verdicts[check(x)] += 1
    assert verdicts[True] >= 100 and verdicts[False] >= 100, verdicts
    for body, ok in [
        ({**REFS_VALID, "code": "abcde"}, False),  # the $ref's sibling applies
        ({**REFS_VALID, "price": "$12\n"}, True),  # re.search: $ before a final newline
        ({**REFS_VALID, "dept": {**REFS_VALID["dept"], "code": "Ab"}}, False),
    ]:
        assert check(body) is ok and validator.is_valid(body) is ok, body


# ----------------------------------------------------------------------------- signatures


def _hub(tmp_path: Path, log: NodeLog) -> tuple[Any, Any, Any]:
    data = tmp_path / "hub"
    support.init_hub(data)
    enroll(data, log)
    cfg = hubcfg.load(data)
    return cfg, identity.load(cfg), open_db(cfg.db_path)


def _ingest(tmp_path: Path, log: NodeLog, batch: dict[str, Any], processes: int) -> Any:
    """ingest_envelope of one signed push, with its signatures checked ahead (or not)."""
    cfg, ident, db = _hub(tmp_path / f"p{processes}", log)

    async def go() -> Any:
        worker = workerm.IngestWorker(cfg.db_path)
        worker._processes = processes
        worker.start()
        try:
            env = parse_envelope(envelope(log.code, batch))
            jobs = worker.check_signatures(signature_items(db, env))
            assert (jobs is not None) == bool(processes)
            if jobs is not None:
                for _ in range(200):  # let the processes finish, so their answers are used
                    if all(j.result is not None for j, _ in jobs._jobs):
                        break
                    worker._pool.pump()  # type: ignore[union-attr]
                    await asyncio.sleep(0.05)
                assert all(j.result is not None for j, _ in jobs._jobs)
            res = await worker.run(ingest_envelope, ident, env, authenticated=log.code,
                                   now="2026-11-29T10:00:00.000Z", signatures=jobs)  # fmt: skip
            if jobs is not None:
                jobs.cancel()
            return res, [tuple(r) for r in db.execute(
                "SELECT seq, hash, body FROM records ORDER BY seq").fetchall()]  # fmt: skip
        finally:
            worker.stop()
            db.conn.close()

    return asyncio.run(go())


def _forge(log: NodeLog, seq: int) -> None:
    """Replace record ``seq``'s signature by a valid-looking one of another key."""
    other = support.Ed25519PrivateKey.generate()
    rec = log.records[seq - 1]
    rec["sig"] = b64encode(other.sign(b"onestop-record-v1\n" + bytes.fromhex(rec["hash"])))


@pytest.mark.parametrize("forged", [None, 1, 37, 100])
def test_signatures_checked_ahead_decide_as_in_order(tmp_path: Path, forged: int | None) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(100)
    if forged:
        _forge(log, forged)
    batch = log.batch(1, 100)
    serial = _ingest(tmp_path, log, copy.deepcopy(batch), 0)
    ahead = _ingest(tmp_path, log, copy.deepcopy(batch), 1)
    strip = ("receipt",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in ahead[0]["results"]] == [
        {k: v for k, v in r.items() if k not in strip} for r in serial[0]["results"]
    ]
    assert ahead[1] == serial[1]
    res = ahead[0]["results"][0]
    if forged:
        assert res["ack_seq"] == forged - 1 and res["stored"] == forged - 1
        assert res["rejected"][0]["seq"] == forged
        assert res["rejected"][0]["reason"] == "bad_signature"
    else:
        assert res["ack_seq"] == 100 and not res["rejected"]


def test_signature_jobs_answer_only_for_the_key_checked(tmp_path: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(70)
    pool = workerm.SignaturePool(1)
    try:
        raw = log.key.public_key().public_bytes_raw()
        items = [(raw, r["sig"], r["hash"]) for r in log.records]
        jobs = workerm.SignatureJobs(pool, items)
        for _ in range(200):
            pool.pump()
            if all(j.result is not None for j, _ in jobs._jobs):
                break
            asyncio.run(asyncio.sleep(0.05))
        rec = log.records[5]
        assert jobs(log.key.public_key(), rec["sig"], rec["hash"]) is True
        other = support.Ed25519PrivateKey.generate().public_key()
        assert jobs(other, rec["sig"], rec["hash"]) is None  # not checked with that key
        assert jobs(log.key.public_key(), rec["sig"], "0" * 64) is None  # not submitted
    finally:
        pool.close()
    assert all(not p.is_alive() for p in pool._procs)


def test_small_pushes_and_no_processes_verify_in_process(tmp_path: Path,
                                                         monkeypatch: Any) -> None:  # fmt: skip
    monkeypatch.setenv(workerm.PROCESSES_ENV, "0")
    worker = workerm.IngestWorker(tmp_path / "x.db")
    worker.start()
    try:
        assert worker.check_signatures([(b"k" * 32, "s", "h")] * 1000) is None
    finally:
        worker.stop()
    monkeypatch.setenv(workerm.PROCESSES_ENV, "2")
    worker = workerm.IngestWorker(tmp_path / "x.db")
    worker.start()
    try:
        assert worker.check_signatures([(b"k" * 32, "s", "h")] * 10) is None
        assert worker._pool is None  # nothing started for a small push
    finally:
        worker.stop()


async def test_big_signed_push_over_http(hub_client: Any, hub_dir: Path) -> None:
    log = NodeLog(TOWNSHIP)
    log.extend(300)
    enroll(hub_dir, log)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(1, 150)), log)
    assert res["ack_seq"] == 150 and not res["rejected"]
    _forge(log, 220)
    [res] = await push_ok(hub_client, envelope(TOWNSHIP, log.batch(151, 300)), log)
    assert res["ack_seq"] == 219 and res["rejected"][0]["seq"] == 220
    assert res["rejected"][0]["reason"] == "bad_signature"
