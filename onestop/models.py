"""Request models shared by the node's and the hub's APIs (see :mod:`onestop.requests`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from onestop.requests import Model

Lang = Literal["zh", "en"]


class LoginRequest(Model):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
