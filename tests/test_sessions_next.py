"""Where a login may send the browser next: same-site paths only (no open redirect)."""

from __future__ import annotations

import pytest

from onestop.sessions import safe_next


@pytest.mark.parametrize(
    "value", ["/window/1", "/admin?tab=users", "/status/370102001-20261203-0001", "/"]
)
def test_same_site_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example/",
        "/\t/evil.example/",  # a browser drops the tab: //evil.example/
        "/\n/evil.example/",
        "/\r\n/evil.example",
        "/\\evil.example",  # a browser reads \\ as /
        "\\\\evil.example",
        "/ /evil.example",
        "https://evil.example/",
        "evil.example",
        "/\x00/evil",
        "",
        None,
    ],
)
def test_anything_that_can_leave_the_site_is_refused(value: str | None) -> None:
    assert safe_next(value) is None


async def test_login_form_never_redirects_off_site(client: object) -> None:
    from tests.test_pages import csrf_of

    token = await csrf_of(client)
    r = await client.post(  # type: ignore[attr-defined]
        "/login",
        data={"username": "admin", "password": "admin-pass-1", "csrf_token": token,
              "next": "/\t/evil.example/"},
        allow_redirects=False,
    )  # fmt: skip
    assert r.status == 302
    assert r.headers["Location"] == "/admin"
