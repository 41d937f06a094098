"""Realistic case events (办件) for the replication and hub benchmarks.

Every body follows its event schema (``schemas/events/<kind>.schema.json``, which the hub
enforces) and is what the node's case code writes: case numbers, item and material codes
from the shipped catalog, masked ID and phone numbers and keyed hashes only, one-time notices
(一次性告知) listing materials by their Chinese and English names, and the clerk's or
department's free text (which names the item in Chinese).  Each body's canonical JSON is
600-800 bytes, like a case event with its materials list.  Deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

BODY_MIN, BODY_MAX = 600, 800

# (kind, entity) in the order a case produces them, repeated.
CASE_KINDS = (
    ("case.opened", "case"),
    ("case.notice_issued", "case"),
    ("case.supplement_requested", "case"),
    ("review.decided", "review_task"),
    ("case.rejected", "case"),
    ("rating.given", "rating"),
)
REGIONS = ("370102", "370103", "370104", "370105", "370112", "370211", "370302", "370602")
MOBILE_PREFIXES = ("138", "139", "150", "152", "186", "187", "135", "177")
TEXTS = (
    "申请人已签署告知承诺书，容缺材料约定于承诺期限内补齐；窗口已一次性告知所需材料、办理时限及"
    "补正方式，申请人当场确认并签字，联系电话138****5678。",
    "经审查，申请材料中部分内容与原件不一致，请申请人携带原件及加盖公章的复印件到综合受理窗口补正，"
    "补正期间办理时限暂停计算，补齐后恢复计时。",
    "部门审查意见：现场核查符合条件，材料内容真实有效，同意办理；请窗口按统一出件流程通知申请人领取"
    "办理结果，或按申请人选择邮政寄递。",
    "不予许可理由：申请事项不符合法定条件，依据相关法律法规规定作出不予许可决定，申请人如对本决定"
    "不服，可依法申请行政复议或者提起行政诉讼。",
    "窗口工作人员态度热情，一次性讲清楚需要带的材料，跑一次就办完了，排队时间也比以前短了很多，点赞。",
)
LEVELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


@lru_cache(maxsize=1)
def catalog_items() -> list[dict[str, Any]]:
    """Items of the shipped catalog (code, names, departments, materials, promised days)."""
    from schemas import catalog

    data = json.loads(catalog.seed_path().read_text(encoding="utf-8"))
    items = [it for it in data["items"] if it.get("materials")]
    if not items:  # pragma: no cover - the seed always has items
        raise RuntimeError("the seed catalog has no items with materials")
    return items


def canonical_size(body: dict[str, Any]) -> int:
    """Bytes of the body's canonical JSON (sorted keys, no spaces, UTF-8)."""
    return len(
        json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    )


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _fill(body: dict[str, Any], field: str, text: str, target: int) -> None:
    """Set body[field] to as much of ``text`` (repeated) as keeps the body <= target bytes."""
    body[field] = ""
    base = canonical_size(body)
    out = []
    size = base
    for ch in text + "".join(TEXTS) + text:
        size += len(ch.encode("utf-8"))
        if size > target:
            break
        out.append(ch)
    body[field] = "".join(out)


def case_body(
    rng: random.Random, node: str, case_seq: int, kind: str, day: dt.date
) -> dict[str, Any]:
    """The body of one case event of ``kind``; canonical JSON of BODY_MIN..BODY_MAX bytes."""
    target = rng.randrange(BODY_MIN + 20, BODY_MAX - 10)
    case_no = f"{node}-{day:%Y%m%d}-{case_seq % 1_000_000:04d}"
    item = rng.choice(catalog_items())
    depts = list(item["departments"])
    mats = list(item["materials"])
    text = f"关于“{item['name_zh']}”事项：" + rng.choice(TEXTS)
    window = 1 + case_seq % 8
    body: dict[str, Any]
    if kind == "case.opened":
        # A combined case (一件事一次办) of several items, grown until it reaches the target.
        items: list[str] = [item["code"]]
        received: list[str] = []
        missing: list[str] = []
        for m in mats:
            (missing if rng.random() < 0.1 else received).append(m["code"])
        body = {
            "case_no": case_no,
            "kind": item["kind"],
            "items": items,
            "departments": depts,
            "id_masked": f"{rng.choice(REGIONS)}********{rng.randrange(1000):03d}"
            f"{rng.choice('0123456789X')}",
            "id_hash": _hex(f"id-{node}-{case_seq}"),
            "phone_masked": f"{rng.choice(MOBILE_PREFIXES)}****{rng.randrange(10_000):04d}",
            "ticket_no": f"{'ABCDE'[case_seq % 5]}{case_seq % 400 + 1:03d}",
            "preapplication_id": None,
            "received": received,
            "missing": missing,
            "by": f"window{window}",
        }
        pool = [it for it in catalog_items() if it["kind"] == item["kind"]] or catalog_items()
        for attempt in range(200):
            if canonical_size(body) >= BODY_MIN:
                break
            extra = rng.choice(pool if attempt < 50 else catalog_items())
            if extra["code"] not in items:
                items.append(extra["code"])
                for d in extra["departments"]:
                    if d not in depts:
                        depts.append(d)
                received += [m["code"] for m in extra["materials"] if m["code"] not in received]
        while canonical_size(body) > BODY_MAX and len(received) > 1:
            received.pop()
        while canonical_size(body) > BODY_MAX and len(items) > 1:
            items.pop()
    elif kind == "case.notice_issued":
        missing_objs = [
            {k: m[k] for k in ("code", "name_zh", "name_en", "critical")} for m in mats[:2]
        ]
        body = {
            "case_no": case_no,
            "reason": "intake",
            "accepted": bool(rng.random() < 0.6),
            "missing": missing_objs,
            "catch_up_date": (day + dt.timedelta(days=10)).isoformat(),
        }
        _fill(body, "note", text, target)
    elif kind == "case.supplement_requested":
        body = {
            "case_no": case_no,
            "department": depts[0],
            "materials": [m["code"] for m in mats[:3]],
            "paused_date": day.isoformat(),
        }
        _fill(body, "reason", text + "需补正材料：" + "、".join(m["name_zh"] for m in mats), target)
    elif kind == "review.decided":
        body = {
            "case_no": case_no,
            "task_id": case_seq * 2 + 1,
            "department": depts[0],
            "decision": "approve" if rng.random() < 0.9 else "supplement",
            "by": f"{depts[0]}-reviewer{1 + case_seq % 3}",
        }
        _fill(body, "reason", text, target)
    elif kind == "case.rejected":
        body = {
            "case_no": case_no,
            "department": depts[0],
            "decided_date": day.isoformat(),
            "on_time": bool(rng.random() < 0.95),
        }
        _fill(body, "reason", f"关于“{item['name_zh']}”事项：" + TEXTS[3] + TEXTS[1], target)
    elif kind == "rating.given":
        level = rng.choice((5, 5, 5, 5, 4, 4, 3, 2, 1))
        body = {
            "rating_id": case_seq,
            "case_no": case_no,
            "ticket_no": None,
            "level": level,
            "level_name": LEVELS[level],
        }
        _fill(body, "comment", f"办理“{item['name_zh']}”：" + TEXTS[4] + TEXTS[0], target)
    else:
        raise ValueError(f"no body recipe for {kind}")
    return body


def case_events(
    node: str, count: int, start_seq: int = 1, seed: int = 7, start: dt.datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``count`` events (``seq``, ``at``, ``kind``, ``entity``, ``entity_id``, ``body``)."""
    rng = random.Random(f"{seed}-{node}-{start_seq}")
    t = start or dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC)
    for i in range(count):
        seq = start_seq + i
        kind, entity = CASE_KINDS[seq % len(CASE_KINDS)]
        case_seq = seq // len(CASE_KINDS) + 1
        at = t + dt.timedelta(seconds=7 * i)
        body = case_body(rng, node, case_seq, kind, (at + dt.timedelta(hours=8)).date())
        entity_id = {
            "case": body["case_no"],
            "review_task": str(body.get("task_id")),
            "rating": str(body.get("rating_id")),
        }[entity]
        yield {
            "seq": seq,
            "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "kind": kind,
            "entity": entity,
            "entity_id": entity_id,
            "body": body,
        }


def signed_records(
    node: str, key: Any, count: int, start_seq: int = 1, prev: str | None = None, seed: int = 7
) -> list[dict[str, Any]]:
    """``count`` records signed with ``key`` by :func:`sync.chain.make_record`, chained."""
    from sync.chain import GENESIS, make_record

    head = prev or GENESIS
    out = []
    for ev in case_events(node, count, start_seq, seed):
        rec = make_record(node, ev, head, key)
        head = rec["hash"]
        out.append(rec)
    return out
