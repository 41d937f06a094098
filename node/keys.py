"""Typed application keys for the node's state (``web.AppKey``)."""

from __future__ import annotations

import sqlite_utils
from aiohttp import web

from node.config import NodeConfig
from node.display import Board
from node.pii import Pii
from node.speech_audio import Renderer
from onestop.clock import Now

CONFIG = web.AppKey("config", NodeConfig)
DB = web.AppKey("db", sqlite_utils.Database)
PII = web.AppKey("pii", Pii)
BOARD = web.AppKey("board", Board)
CLOCK: web.AppKey[Now] = web.AppKey("clock")
SPEECH = web.AppKey("speech", Renderer)
