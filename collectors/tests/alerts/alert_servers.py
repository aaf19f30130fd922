"""The outside world of the alert engine, at the protocol level: an SMTP server (aiosmtpd), and an HTTP
receiver that answers as a webhook endpoint or as the Telegram Bot API's sendMessage, with scripted
statuses. All on 127.0.0.1."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from servers import free_port


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
    """Records every POST; answers the next scripted status, else 200 (Telegram's `{"ok": true}`)."""

    port: int = field(default_factory=free_port)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    answered: list[int] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        status = self.statuses.popleft() if self.statuses else 200
        self.answered.append(status)
        if status == 200:
            self.received.append((request.path, json.loads(await request.read())))
        return web.json_response({"ok": status == 200, "result": {}}, status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
