"""Typed application keys for the hub's state (``web.AppKey``)."""

from __future__ import annotations

import sqlite_utils
from aiohttp import web

from hub.config import HubConfig
from hub.identity import HubIdentity
from hub.worker import IngestWorker
from onestop.clock import Now

CONFIG = web.AppKey("config", HubConfig)
DB = web.AppKey("db", sqlite_utils.Database)  # reads on the event loop
IDENTITY = web.AppKey("identity", HubIdentity)
CLOCK: web.AppKey[Now] = web.AppKey("clock")
WORKER = web.AppKey("worker", IngestWorker)  # ingest writes on their own thread and connection
