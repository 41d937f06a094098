"""The hub's aiohttp application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from hub import auth, identity, rollups, staff, views
from hub import db as hubdb
from hub import tree as treem
from hub.config import HubConfig
from hub.keys import CLOCK, CONFIG, DB, IDENTITY, WORKER
from hub.metrics import setup_metrics
from hub.routes import setup_routes
from hub.worker import IngestWorker
from onestop.clock import Now, system_now
from onestop.errors import error_middleware
from onestop.logs import setup_access_log
from sync.requests import ReplayCache

TEMPLATES = Path(__file__).parent / "templates"


def create_app(config: HubConfig, now: Now = system_now) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware], client_max_size=config.max_body_mb * 1024**2
    )
    app[CONFIG] = config
    app[CLOCK] = now
    app[auth.REPLAYS] = ReplayCache(config.request_max_skew_seconds)
    db = hubdb.open_db(config.db_path)
    app[DB] = db
    app[IDENTITY] = identity.load(config)
    app[WORKER] = IngestWorker(config.db_path)
    treem.get()  # the division data must load (and validate) before serving
    if hubdb.get_meta(db, rollups.TZ_META) is None:
        with hubdb.tx(db):
            hubdb.set_meta(db, rollups.TZ_META, config.timezone)
    setup_session(app, EncryptedCookieStorage(
        staff.session_key(app[IDENTITY].link_key), cookie_name=staff.COOKIE, httponly=True,
        samesite="Strict", max_age=config.session_max_age))  # fmt: skip
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    views.setup_jinja(env)
    setup_routes(app)
    setup_access_log(app)
    setup_metrics(app)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[WORKER].start()
    yield
    app[WORKER].stop()
    app[DB].conn.close()
