"""The node's aiohttp application."""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from node import db as dbm
from node import pii as piim
from node import views, windows
from node.config import NodeConfig
from node.daybreak import DAY_CLOSE, DayCloseHolder, day_close_ctx
from node.display import Board
from node.keys import BOARD, CLOCK, CONFIG, DB, PII, SPEECH
from node.metrics import setup_metrics
from node.replication.service import push_ctx
from node.routes import setup_routes
from node.signer import open_node_db
from node.speech_audio import Renderer
from onestop import bodies, sessions
from onestop.clock import Now, system_now
from onestop.errors import error_middleware
from onestop.logs import setup_access_log

TEMPLATES = Path(__file__).parent / "templates"


def create_app(config: NodeConfig, now: Now = system_now) -> web.Application:
    max_body = 20 * 1024**2  # as sent and as inflated (onestop/bodies.py)
    app = web.Application(middlewares=[error_middleware, bodies.encoded_bodies],
                          client_max_size=max_body, handler_args=bodies.HANDLER_ARGS)  # fmt: skip
    app[bodies.MAX_BODY] = max_body
    app[CONFIG] = config
    app[CLOCK] = now
    app[BOARD] = Board(state=functools.partial(_board_state, app))
    app[SPEECH] = Renderer.find()  # spoken calls for boards without a voice (espeak-ng)
    db = open_node_db(config)  # connect, migrate, attach the node's signing key
    app[DB] = db
    app[PII] = piim.load(config.data_dir)
    # Staff sessions server-side in DATA/sessions.db (not a projection of the log), and
    # the login throttle (onestop/sessions.py).
    sessions.setup(app, config.data_dir, cookie_name="onestop_session",
                   max_age=config.session_max_age)  # fmt: skip
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        context_processors=[aiohttp_jinja2.request_processor],
    )
    views.setup_jinja(env)
    setup_routes(app)  # pages, the queue API, the case part, replication, OpenAPI
    setup_access_log(app)  # one log line per request, with its request id
    setup_metrics(app)  # GET /metrics
    # Background jobs, started in this order and stopped in reverse: WAL checkpoints and the
    # database, the day's close (a catch-up now, then a cron job at local midnight:
    # node/daybreak.py), then the push service (both stop before the database closes).
    app[DAY_CLOSE] = DayCloseHolder()
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_streams)
    app.cleanup_ctx.append(day_close_ctx)
    app.cleanup_ctx.append(push_ctx)
    return app


def _board_state(app: web.Application) -> dict[str, Any]:
    return windows.board_state(app[DB], app[CONFIG], app[CLOCK])


async def _close_streams(app: web.Application) -> None:
    # Display boards hold an event stream open: end them before the server waits for its
    # requests to finish, or a stop waits for the shutdown timeout.
    app[BOARD].close_all()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    # WAL checkpoints (copy + fsync) on a thread of their own, not inside a request's COMMIT.
    checkpointer = dbm.Checkpointer(app[DB], app[CONFIG].db_path)
    checkpointer.start()
    # Everything loaded so far (modules, templates, the catalog) lives as long as the
    # process: keep it out of the cyclic GC, whose full collections would otherwise walk
    # it all (tens of milliseconds on the event loop) every few thousand requests.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # collectable again (several apps in one process: the tests)
        app[BOARD].close_all()
        checkpointer.stop()
        app[DB].conn.close()
