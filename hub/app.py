"""The hub's aiohttp application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from hub import auth, identity, rollups, staff, views
from hub import db as hubdb
from hub import tree as treem
from hub.config import HubConfig
from hub.keys import CLOCK, CONFIG, DB, IDENTITY, WORKER
from hub.metrics import setup_metrics
from hub.routes import setup_routes
from hub.worker import IngestWorker
from onestop import bodies, sessions
from onestop.clock import Now, system_now
from onestop.errors import error_middleware
from onestop.logs import setup_access_log
from sync.requests import ReplayCache

TEMPLATES = Path(__file__).parent / "templates"


def create_app(config: HubConfig, now: Now = system_now) -> web.Application:
    max_body = config.max_body_mb * 1024**2  # as sent and as inflated (onestop/bodies.py)
    app = web.Application(middlewares=[error_middleware, bodies.encoded_bodies],
                          client_max_size=max_body, handler_args=bodies.HANDLER_ARGS)  # fmt: skip
    app[bodies.MAX_BODY] = max_body
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
    # Staff sessions server-side in DATA/sessions.db, and the login throttle.
    sessions.setup(app, config.data_dir, cookie_name=staff.COOKIE,
                   max_age=config.session_max_age)  # fmt: skip
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
