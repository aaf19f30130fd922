"""The outside world of the alert engine, at the protocol level: an SMTP server (aiosmtpd), and an HTTP
receiver that answers as a webhook endpoint or as the Telegram Bot API's sendMessage, with scripted
statuses. All on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from marketdash_testing.servers import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.inbox = _Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages


@dataclass
class HttpReceiver:
    """Records every POST; answers the next scripted status, else 200 (Telegram's `{"ok": true}`), after
    `delay_s`; a scripted status carries `headers` (e.g. Retry-After)."""

    port: int = field(default_factory=free_port)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Unix time each of `received` arrived.
    arrived_at: list[float] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    answered: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    # POSTs being answered now.
    handling: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.handling += 1
        try:
            await asyncio.sleep(self.delay_s)
            scripted = bool(self.statuses)
            status = self.statuses.popleft() if scripted else 200
            self.answered.append(status)
            if status == 200:
                self.received.append((request.path, json.loads(await request.read())))
                self.arrived_at.append(time.time())
            headers = self.headers if scripted else {}
            return web.json_response({"ok": status == 200, "result": {}}, status=status, headers=headers)
        finally:
            self.handling -= 1

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
