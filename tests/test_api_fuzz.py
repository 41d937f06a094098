"""Fuzz the node's and the hub's OpenAPI documents against real servers on 127.0.0.1.

schemathesis generates requests from each document (valid ones, then invalid ones), once
anonymous and once logged in as each role (with the session's CSRF token); no answer may be a
500, every status code must be one the document lists for that operation, every error must
have the one error shape (onestop.openapi.Error), and answers that succeed must match the
response schema the document shows.  Bounded: a few examples per operation, derandomized, so a
run takes seconds and repeats exactly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import ValidationError
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from onestop.openapi import Error
from tests.conftest import ADMIN, CLERK
from tests.test_cases_common import REVIEWER_EDU
from tests.test_hub_support import HUB_ADMIN, HUB_NOW, add_hub_user, init_hub

EXAMPLES = 5  # per operation and generation mode
SKIP = {
    ("POST", "/api/v1/logout"),  # would end the fuzzing session
    ("GET", "/api/v1/display/stream"),  # server-sent events never end
}


class ThreadServer:
    """An aiohttp app served on 127.0.0.1 by an event loop in a thread of its own."""

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None
        self.url = asyncio.run_coroutine_threadsafe(self._start(make_app), self.loop).result(60)

    async def _start(self, make_app: Callable[[], web.Application]) -> str:
        self.runner = web.AppRunner(make_app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def logged_in(url: str, user: tuple[str, str]) -> tuple[requests.Session, dict[str, str]]:
    session = requests.Session()
    r = session.post(url + "/api/v1/login", json={"username": user[0], "password": user[1]},
                     timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    return session, {"X-CSRF-Token": r.json()["csrf_token"]}


def problem(response: requests.Response) -> str | None:
    """What is wrong with one answer, if anything."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{status} is not JSON: {response.text[:200]}"
    try:
        Error.model_validate(body)
    except ValidationError as exc:
        return f"{status} lacks the error shape: {exc.errors(include_url=False)[:2]} {body}"
    if body["status"] != status:
        return f"{status} says status {body['status']}"
    return None


def negatable(op: dict[str, Any]) -> bool:
    """Whether an operation has an input that can be invalid (any text is a valid string path
    parameter, so an operation with only those has no invalid request to make)."""
    if "requestBody" in op:
        return True
    return any(p["in"] != "path" or p["schema"] != {"type": "string"}
               for p in op.get("parameters", []))  # fmt: skip


def fuzz(url: str, session: requests.Session, headers: dict[str, str]) -> tuple[int, list[str]]:
    """Run every operation of ``url``'s document; returns (requests sent, problems found)."""
    spec = session.get(url + "/api/v1/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    found: list[str] = []
    sent = 0
    cookies = session.cookies.get_dict()
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue
        modes = [GenerationMode.POSITIVE]
        if negatable(spec["paths"][op.path][op.method.lower()]):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            strategy = op.as_strategy(generation_mode=mode, headers=headers, cookies=cookies)

            @given(case=strategy)
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def run(case: Any) -> None:
                nonlocal sent
                response = case.call(base_url=url, session=session, headers=headers, timeout=30)
                sent += 1
                bad = problem(response)
                if bad is None:  # the status code is one the document lists
                    try:
                        case.validate_response(response, checks=[status_code_conformance])
                    except Exception as exc:  # noqa: BLE001 - reported with the request
                        bad = f"undocumented status: {str(exc)[:200]}"
                if bad is None and response.status_code < 400:
                    try:  # the answer matches the response schema the document shows
                        case.validate_response(response, checks=[response_schema_conformance])
                    except Exception as exc:  # noqa: BLE001 - reported with the request
                        bad = f"{response.status_code} does not match its schema: {exc}"
                if bad:
                    found.append(f"{case.method} {case.formatted_path} "
                                 f"query={case.query} body={case.body!r:.200}: {bad}")  # fmt: skip

            run()
    return sent, found


def anonymous(url: str) -> tuple[requests.Session, dict[str, str]]:
    return requests.Session(), {}


@pytest.fixture
def node_server(node_dir: Path) -> Iterator[ThreadServer]:
    from node import config as cfgm
    from node.app import create_app

    cfg = cfgm.load(node_dir)
    srv = ThreadServer(lambda: create_app(cfg))
    session, headers = logged_in(srv.url, ADMIN)
    r = session.post(srv.url + "/api/v1/users", headers=headers, timeout=30,
                     json={"username": REVIEWER_EDU[0], "password": REVIEWER_EDU[1],
                           "role": "reviewer", "department": "edu"})  # fmt: skip
    assert r.status_code == 201, r.text
    yield srv
    srv.stop()


HUB_OFFICIAL = ("cityofficial", "hub-official-pass-1")


@pytest.fixture
def hub_server(tmp_path: Path) -> Iterator[ThreadServer]:
    from hub import config as hubcfg
    from hub.app import create_app

    data = tmp_path / "hub"
    init_hub(data)
    add_hub_user(data, *HUB_ADMIN, "admin", "37")
    add_hub_user(data, *HUB_OFFICIAL, "official", "3702")
    cfg = hubcfg.load(data)
    srv = ThreadServer(lambda: create_app(cfg, now=lambda: HUB_NOW))
    yield srv
    srv.stop()


@pytest.mark.parametrize("role", ["anonymous", "admin", "window", "reviewer"])
def test_fuzz_node_api(node_server: ThreadServer, role: str) -> None:
    users = {"admin": ADMIN, "window": CLERK, "reviewer": REVIEWER_EDU}
    url = node_server.url
    session, headers = anonymous(url) if role == "anonymous" else logged_in(url, users[role])
    sent, found = fuzz(url, session, headers)
    assert sent > 200
    assert not found, "\n".join(found)


@pytest.mark.parametrize("role", ["anonymous", "admin", "official"])
def test_fuzz_hub_api(hub_server: ThreadServer, role: str) -> None:
    users = {"admin": HUB_ADMIN, "official": HUB_OFFICIAL}
    url = hub_server.url
    session, headers = anonymous(url) if role == "anonymous" else logged_in(url, users[role])
    sent, found = fuzz(url, session, headers)
    assert sent > 80
    assert not found, "\n".join(found)
