"""The hub's aiohttp application."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from hub import db as hubdb
from hub import identity
from hub.config import HubConfig
from hub.keys import CLOCK, CONFIG, DB, IDENTITY, WORKER
from hub.routes import setup_routes
from hub.worker import IngestWorker
from node.clock import Now, system_now
from onestop.errors import error_middleware


def create_app(config: HubConfig, now: Now = system_now) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware], client_max_size=config.max_body_mb * 1024**2
    )
    app[CONFIG] = config
    app[CLOCK] = now
    app[DB] = hubdb.open_db(config.db_path)
    app[IDENTITY] = identity.load(config)
    app[WORKER] = IngestWorker(config.db_path)
    setup_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[WORKER].start()
    yield
    app[WORKER].stop()
    app[DB].conn.close()
