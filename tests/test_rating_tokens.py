"""A case is rated with its rating code from the result SMS, not with the phone's last four
digits (ten thousand guesses); the status lookup's lock holds per case number and per client
whatever else is flooded in; phone digits are ASCII digits or a field error, never a 500."""

from __future__ import annotations

import re

from node.cases.api import STATUS_GUARD
from node.cases.status_guard import CASE_TRIES, CLIENT_TRIES, WINDOW_SECONDS, StatusGuard
from tests import test_cases_common as common
from tests.test_cases_common import SCHOOL_MATERIALS, Env

env = common.env
clock = common.clock

CODE_IN_SMS = re.compile(r"评价码([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})")


async def ready_case(e: Env) -> str:
    """A case approved by both departments with its result ready (the SMS queued)."""
    t = await e.ticket()
    no = str((await e.intake(t))["case_no"])
    await e.finish()
    await e.edu.ok("POST", f"/api/v1/cases/{no}/reviews/edu", {"decision": "approve"})
    await e.civil.ok("POST", f"/api/v1/cases/{no}/reviews/civil", {"decision": "approve"})
    await e.clerk.ok("POST", f"/api/v1/cases/{no}/result")
    return no


def ratings_count(e: Env) -> int:
    return int(e.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])


async def test_the_phone_digits_rate_nothing(env: Env) -> None:
    e = env
    no = await ready_case(e)
    for last4 in ("8000", "0000", "８０００", "٨٠٠٠"):
        got, err = await e.public.post(
            "/api/v1/ratings", {"case_no": no, "phone_last4": last4, "level": 1}
        )
        assert got == 422, err
        assert err["field"] == "phone_last4"
        assert "rating_token" in err["message"] and "rating_token" in err["hint"]
    # Not even beside a right code: a client still sending the digits hears why.
    got, err = await e.public.post(
        "/api/v1/ratings",
        {"case_no": no, "phone_last4": "8000", "rating_token": e.rating_code(no), "level": 5},
    )
    assert got == 422 and err["field"] == "phone_last4"
    got, err = await e.public.post("/api/v1/ratings", {"case_no": no, "level": 5})
    assert got == 422 and err["field"] == "rating_token" and "result SMS" in err["hint"]
    assert ratings_count(e) == 0


async def test_the_result_sms_carries_the_code_that_rates_the_case(env: Env) -> None:
    e = env
    no = await ready_case(e)
    sms = (await e.admin.ok("GET", "/api/v1/sms"))["sms"]
    text = next(m["text"] for m in sms if m["template"] == "result_ready")
    found = CODE_IN_SMS.search(text)
    assert found, text
    code = found.group(1)
    assert code == e.rating_code(no)

    other = await ready_case(e)
    wrong = [e.rating_code(other), "AAAA-AAAA-AAAA"]
    for token in wrong:  # another case's code, a made-up one: the same 404
        got, err = await e.public.post(
            "/api/v1/ratings", {"case_no": no, "rating_token": token, "level": 1}
        )
        assert got == 404 and err["field"] == "rating_token", err
    for token in ("ABC", "0000-0000-0000", "ＡＢＣＤ-ＥＦＧＨ-ＪＫＬＭ", "A" * 400):
        got, err = await e.public.post(
            "/api/v1/ratings", {"case_no": no, "rating_token": token, "level": 1}
        )
        assert got == 422 and err["field"] == "rating_token", (token, err)
    got, err = await e.public.post(
        "/api/v1/ratings", {"case_no": "370102001-20260928-9999", "rating_token": code, "level": 1}
    )
    assert got == 404 and err["field"] == "rating_token"
    assert ratings_count(e) == 0

    # As typed: any case, with or without the dashes.
    typed = code.replace("-", "").lower()
    r = await e.public.ok(
        "POST", "/api/v1/ratings", {"case_no": no, "rating_token": typed, "level": 4}, 201
    )
    assert r["rating"]["case_no"] == no and r["rating"]["level"] == 4
    got, err = await e.public.post(
        "/api/v1/ratings", {"case_no": no, "rating_token": code, "level": 4}
    )
    assert got == 409 and err["field"] == "case_no"


async def test_status_lookup_takes_ascii_digits_only(env: Env) -> None:
    e = env
    t = await e.ticket(phone="13912345678")
    no = (await e.intake(t, received=SCHOOL_MATERIALS[:4]))["case_no"]
    for last4 in ("５６７８", "٥٦٧٨", "5678\n", "56 78"):
        got, err = await e.public.get(f"/api/v1/cases/{no}/status", params={"phone_last4": last4})
        assert got == 422 and err["field"] == "phone_last4", (last4, err)
    for last4 in ("５６７８", "٥٦٧٨", "56 78"):  # the page trims what the form sends
        r = await e.public.session.get(
            e.public.base + f"/status/{no}", params={"phone_last4": last4}
        )
        assert r.status == 422 and "<form" in await r.text()
    assert (await e.public.get(f"/api/v1/cases/{no}/status?phone_last4=5678"))[0] == 200


async def lookups(e: Env, case_no: str, last4: str, n: int) -> list[int]:
    out = []
    for _ in range(n):
        got, _body = await e.public.get(f"/api/v1/cases/{case_no}/status?phone_last4={last4}")
        out.append(got)
    return out


async def test_a_flood_of_made_up_numbers_does_not_lift_a_lock(env: Env) -> None:
    e = env
    t = await e.ticket(phone="13912345678")
    no = (await e.intake(t, received=SCHOOL_MATERIALS[:4]))["case_no"]
    assert await lookups(e, no, "0000", CASE_TRIES) == [404] * CASE_TRIES
    got, err = await e.public.get(f"/api/v1/cases/{no}/status?phone_last4=5678")
    assert got == 429 and err["field"] == "phone_last4"
    # Many addresses, one wrong try each at a made-up number: more keys than any cap.
    guard = e.client.app[STATUS_GUARD]
    for i in range(10_400):
        guard.fail(f"370102001-20260928-{i:05d}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    got, err = await e.public.get(f"/api/v1/cases/{no}/status?phone_last4=5678")
    assert got == 429 and err["field"] == "phone_last4"


async def test_one_client_guessing_many_numbers_is_locked(env: Env) -> None:
    e = env
    t = await e.ticket(phone="13912345678")
    no = (await e.intake(t, received=SCHOOL_MATERIALS[:4]))["case_no"]
    statuses = []
    for i in range(CLIENT_TRIES):
        got, _body = await e.public.get(f"/api/v1/cases/370102001-20260928-{i:04d}/status"
                                        "?phone_last4=1234")  # fmt: skip
        statuses.append(got)
    assert statuses == [404] * CLIENT_TRIES
    got, err = await e.public.get(f"/api/v1/cases/{no}/status?phone_last4=5678")
    assert got == 429 and err["field"] == "case_no"


class Timer:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def locked(guard: StatusGuard, case_no: str, client: str = "10.0.0.9") -> bool:
    try:
        guard.check(case_no, client)
    except Exception as exc:
        assert getattr(exc, "status", None) == 429
        return True
    return False


def test_each_lock_lasts_its_own_window() -> None:
    timer = Timer()
    guard = StatusGuard(timer=timer, maxsize=50)
    a, b = "370102001-20260928-0001", "370102001-20260928-0002"
    for _ in range(CASE_TRIES):
        guard.fail(a, "10.0.0.1")
    timer.t += WINDOW_SECONDS * 2 / 3
    for _ in range(CASE_TRIES):
        guard.fail(b, "10.0.0.2")
    assert locked(guard, a) and locked(guard, b)
    # More made-up numbers than the caches hold, one try each: the locks stay.
    for i in range(500):
        guard.fail(f"370102001-20260928-9{i:03d}", f"10.1.{i // 256}.{i % 256}")
    assert locked(guard, a) and locked(guard, b)
    assert not locked(guard, "370102001-20260928-9000")
    timer.t += WINDOW_SECONDS / 3 + 1  # a's window is over, b's is not
    assert not locked(guard, a) and locked(guard, b)
    timer.t += WINDOW_SECONDS
    assert not locked(guard, b)


def test_the_guard_counts_a_client_across_numbers() -> None:
    guard = StatusGuard(timer=Timer(), client_tries=3)
    for i in range(3):
        assert not locked(guard, f"n{i}", "10.0.0.5")
        guard.fail(f"n{i}", "10.0.0.5")
    assert locked(guard, "n-other", "10.0.0.5")
    assert not locked(guard, "n-other", "10.0.0.6")
