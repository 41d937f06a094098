"""Request models of the hub's JSON API (query strings; the login body is shared).

Handlers parse with :mod:`onestop.requests`; the OpenAPI document is built from these models
(:mod:`hub.openapi`).  Rules that need the clock or the configuration (a period's length, the
largest records page) stay in the handlers and :mod:`hub.dash`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from onestop.models import Day, Lang
from onestop.requests import Model

AlertState = Literal["open", "resolved", "all"]


class RecordsQuery(Model):
    after: int = Field(0, ge=0, le=2**53, description="seq to start after")
    limit: int | None = Field(None, ge=1, description="records per page (at most the hub's "
                              "max_records_page)")  # fmt: skip


class AlertsQuery(Model):
    node: str | None = Field(None, description="one node's code")
    state: AlertState = Field("open", description="open (default), resolved or all")
    limit: int = Field(200, ge=1, le=5000, description="at most this many")


class PeriodQuery(Model):
    preset: Literal["today", "7d", "30d"] | None = Field(None, description="today (default), "
                                                         "7d or 30d")  # fmt: skip
    from_: Day | None = Field(None, alias="from", description="first local date of the period")
    to: Day | None = Field(None, description="last local date of the period")
    lang: Lang | None = Field(None, description="zh (default) or en: names and CSV headers")


class TableQuery(PeriodQuery):
    format: Literal["json", "csv"] = Field("json", description="json (default) or csv (UTF-8 "
                                           "with BOM)")  # fmt: skip


class AlertsTableQuery(TableQuery):
    state: AlertState = Field("open", description="open (default), resolved or all")


class PageQuery(PeriodQuery):
    """A dashboard page's query: any other ``lang`` shows the page in Chinese."""

    lang: str | None = None  # type: ignore[assignment]


class ExportQuery(PageQuery):
    state: AlertState = "open"
