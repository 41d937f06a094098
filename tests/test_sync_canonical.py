"""The fast canonical JSON path agrees with rfc8785, and records are hashed, signed and verified
exactly as the plain RFC 8785 definition says (sync.canonical, sync.chain)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any

import pytest
import rfc8785

from sync import canonical as canonm
from sync.canonical import b64encode, canonical
from sync.chain import (
    GENESIS,
    RECORD_SIG_CONTEXT,
    RecordError,
    make_record,
    record_bytes,
    record_hash,
    verify_record,
    verify_signatures,
)
from sync.keys import Ed25519PrivateKey

ALPHABETS = (
    "abcxyzABCXYZ0189 _-.:/@",
    "".join(map(chr, range(0x20))) + '\x7f"\\/',  # control characters, quote, backslash
    "中文办件编码申请人材料窗口受理告知承诺：，。、“”（）【】",
    "\u00e9\u00ff\u0100\u0301\u200b\u2028\u2029\ufeff\ue000\uf8ff\ufffd\ufffe\uffff",
    "\U0001f600\U0001f680\U0001f1e8\U00010000\U0010ffff\U0002a6a5",  # astral: surrogate pairs
)
LONE_SURROGATES = "\ud800\udbff\udc00\udfff"
BIG = 2**53


def _text(r: random.Random, n: int = 10, surrogates: bool = False) -> str:
    pools = ALPHABETS + ((LONE_SURROGATES,) if surrogates else ())
    return "".join(r.choice(r.choice(pools)) for _ in range(r.randint(0, n)))


def _int(r: random.Random) -> int:
    return r.choice([0, 1, -1, r.randint(-10**6, 10**6), r.randint(-BIG, BIG), BIG - 1,
                     -(BIG - 1), BIG, -BIG, BIG + 1, 2**64, -(2**70)])  # fmt: skip


def _value(r: random.Random, depth: int = 0) -> Any:
    c = r.random()
    if depth > 4 or c < 0.5:
        k = r.randint(0, 9)
        if k < 4:
            return _text(r, 14, surrogates=r.random() < 0.03)
        if k < 6:
            return _int(r)
        if k == 6:
            return r.choice([True, False, None])
        if k == 7 and r.random() < 0.3:
            return r.choice([0.5, 1.0, -0.0, 1e21, 1e-7, 123.456, float(r.randint(-99, 99))])
        return _text(r, 4)
    if c < 0.75:
        return [_value(r, depth + 1) for _ in range(r.randint(0, 5))]
    return {_key(r): _value(r, depth + 1) for _ in range(r.randint(0, 6))}


def _key(r: random.Random) -> str:
    if r.random() < 0.1:
        return r.choice(["a", "b", "\U0001f600", "\uffff", "\ue000x", "\U00010000", "é", ""])
    return _text(r, 6, surrogates=r.random() < 0.02)


def _both(value: Any) -> tuple[Any, Any]:
    """(result or exception type) of rfc8785 and of sync.canonical.canonical."""
    out: list[Any] = []
    for fn in (rfc8785.dumps, canonical):
        try:
            out.append(fn(value))
        except Exception as e:  # noqa: BLE001 - compare which error each raises
            out.append(type(e))
    return out[0], out[1]


EDGE_CASES: list[Any] = [
    {}, [], "", 0, -0, True, False, None, "\x00", "\x1f\x7f", "\u2028\u2029", "a\"b\\c/d",
    "\b\f\n\r\t", "中文", "\U0001f600", {"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "a": 4},
    {"\U00010000": 1, "\uff61": 2}, {"b": 1, "a": {"d": [1, 2, {"c": None}], "c": "x"}},
    BIG - 1, -(BIG - 1), BIG, -BIG, [BIG], {"n": 2**64}, 1.0, [0.5], {"f": -0.0}, 1e21,
    (1, 2), ["x", (3,)], {"t": ("a",)}, "\ud800", {"\ud800": 1}, ["ok", "\udfff"], {1: 2},
    {"a": float("nan")}, {"a": float("inf")}, {"é": 1, "e": 2, "z": 3, "É": 4},
    {"": 0, " ": 1, "\x00": 2}, [[[[[[[[[[[]]]]]]]]]]],
]  # fmt: skip


@pytest.mark.parametrize("value", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_canonical_edge_cases_match_rfc8785(value: Any) -> None:
    expected, got = _both(value)
    assert got == expected


@pytest.mark.parametrize("seed", range(6))
def test_canonical_matches_rfc8785_on_random_values(seed: int) -> None:
    r = random.Random(seed)
    fast = 0
    for _ in range(1500):
        value = _value(r)
        expected, got = _both(value)
        assert got == expected, value
        fast += canonm.is_plain(value)
    assert fast > 500  # the fast path was exercised, not only the fallback


def test_fast_path_preconditions() -> None:
    plain = {"中文": ["a\n", 1, -(BIG - 1), True, None, {"k": BIG - 1}], "\ufffd": ""}
    assert canonm.is_plain(plain)
    for not_plain in ({"x": 1.0}, [BIG], {"n": -BIG}, {"\U0001f600": 1}, ("a",), {1: "a"},
                      [{"deep": [0.5]}], {"s": type("S", (str,), {})("x")}):  # fmt: skip
        assert not canonm.is_plain(not_plain), not_plain
    cycle: list[Any] = []
    cycle.append(cycle)
    assert not canonm.is_plain(cycle)  # given up on, left to rfc8785


def test_case_bodies_take_the_fast_path() -> None:
    from bench.records import case_events

    for ev in case_events("370102001", 60):
        assert canonm.is_plain(ev["body"])
        assert canonical(ev["body"]) == rfc8785.dumps(ev["body"])


def _event(r: random.Random) -> dict[str, Any]:
    return {"at": _text(r, 8), "kind": _text(r, 8), "entity": _text(r, 6),
            "entity_id": _text(r, 6), "body": {_key(r): _value(r, 1) for _ in range(5)}}  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_record_bytes_is_the_canonical_record(seed: int) -> None:
    r = random.Random(100 + seed)
    for _ in range(600):
        ev = _event(r)
        node, seq, prev = _text(r, 9), r.choice([1, 7, BIG - 1, BIG, r.randint(1, 10**9)]), GENESIS
        whole: dict[str, Any] = {"node": node, "seq": seq, "prev": prev, "event": ev}
        try:
            expected = rfc8785.dumps(whole)
        except Exception as e:  # noqa: BLE001
            with pytest.raises(type(e)):
                record_bytes(node, seq, prev, ev)
            continue
        raw, body = record_bytes(node, seq, prev, ev)
        assert raw == expected
        assert body is None or body == rfc8785.dumps(ev["body"])
        assert record_hash(node, seq, prev, ev) == hashlib.sha256(expected).hexdigest()
    # Not the five string fields: the general path, same bytes.
    odd: dict[str, Any] = {"at": "x", "kind": "k", "entity": "e", "entity_id": 5, "body": {}}
    assert record_bytes("n", 1, GENESIS, odd)[0] == rfc8785.dumps(
        {"node": "n", "seq": 1, "prev": GENESIS, "event": odd}
    )


def test_make_record_hash_sig_and_verify_match_the_definition() -> None:
    from bench.records import case_events

    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    head = GENESIS
    r = random.Random(5)
    events = list(case_events("370102001", 30))
    for i, ev in enumerate(events, start=1):
        if i % 3 == 0:  # odd but JSON-able bodies: floats, tuples, astral keys, control chars
            ev = dict(ev, body={"f": 1.5, "t": (1, "\x01"), "\U0001f600": _text(r), "z": [0.0]})
        rec = make_record("370102001", dict(ev, seq=i), head, key)
        # The definition: SHA-256 of RFC 8785 of {node, seq, prev, event} as parsed back.
        parsed = json.loads(json.dumps(rec, ensure_ascii=False))
        definition = rfc8785.dumps({k: parsed[k] for k in ("node", "seq", "prev", "event")})
        assert rec["hash"] == hashlib.sha256(definition).hexdigest()
        pub.verify(base64.b64decode(rec["sig"]), RECORD_SIG_CONTEXT + bytes.fromhex(rec["hash"]))
        body = verify_record(parsed, pub, head, node="370102001", expected_seq=i)
        assert body == rfc8785.dumps(parsed["event"]["body"])
        head = rec["hash"]


def test_make_record_still_refuses_what_json_cannot_carry() -> None:
    key = Ed25519PrivateKey.generate()
    base = {"seq": 1, "at": "t", "kind": "k", "entity": "e", "entity_id": "1"}
    for body in ({"n": float("nan")}, {"n": 2**60}, {1: "x"}, {"s": "\ud800"}):
        with pytest.raises(RecordError) as e:
            make_record("n", dict(base, body=body), GENESIS, key)
        assert e.value.reason == "bad_shape"
    with pytest.raises(ValueError):
        make_record("n", dict(base, seq=2**60, body={}), GENESIS, key)
    # 1e20 is canonical as "100000000000000000000", which parses back as an integer beyond
    # 2**53: the record could never be verified, so it is refused (as it always was).
    with pytest.raises(ValueError):
        make_record("n", dict(base, body={"f": 1e20}), GENESIS, key)
    rec = make_record("n", dict(base, body={"f": 5.0, "g": 0.25}), GENESIS, key)
    assert rec["event"]["body"] == {"f": 5, "g": 0.25}
    verify_record(json.loads(json.dumps(rec)), key.public_key(), GENESIS)


def test_signature_results_from_elsewhere() -> None:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    rec = make_record("n", {"seq": 1, "at": "t", "kind": "k", "entity": "e", "entity_id": "1",
                            "body": {"a": 1}}, GENESIS, key)  # fmt: skip
    seen: list[tuple[str, str]] = []

    def results(answer: bool | None) -> Any:
        def look(k: Any, sig: str, h: str) -> bool | None:
            seen.append((sig, h))
            return answer

        return look

    verify_record(rec, pub, GENESIS, signatures=results(True))
    verify_record(rec, pub, GENESIS, signatures=results(None))  # not checked ahead: here
    assert seen == [(rec["sig"], rec["hash"])] * 2
    with pytest.raises(RecordError) as e:
        verify_record(rec, pub, GENESIS, signatures=results(False))
    assert e.value.reason == "bad_signature"
    forged = dict(rec, sig=b64encode(bytes(64)))
    with pytest.raises(RecordError):
        verify_record(forged, pub, GENESIS, signatures=results(None))


def test_verify_signatures() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    h = hashlib.sha256(b"x").hexdigest()
    sig = b64encode(key.sign(RECORD_SIG_CONTEXT + bytes.fromhex(h)))
    other = hashlib.sha256(b"y").hexdigest()
    items = [
        (raw, sig, h),
        (raw, sig, other),  # another hash
        (Ed25519PrivateKey.generate().public_key().public_bytes_raw(), sig, h),  # another key
        (raw, sig[:-4] + "AAA=", h),  # altered signature
        (raw, "not base64!", h),
        (raw, sig, "zz"),  # not hex
        (b"short", sig, h),  # not a key
    ]
    assert verify_signatures(items) == [True, False, False, False, False, False, False]
