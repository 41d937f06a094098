"""Request models shared by the node's and the hub's APIs (see :mod:`onestop.requests`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from onestop.requests import Model

Lang = Literal["zh", "en"]


class LoginRequest(Model):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


#: An integer SQLite can store (larger ones would fail deep in a query, not as a 422).
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]

#: A calendar date far enough from the ends of the calendar that date arithmetic (periods,
#: working days, deadlines) cannot overflow.
Day = Annotated[dt.date, Field(ge=dt.date(1900, 1, 1), le=dt.date(9999, 1, 1))]
