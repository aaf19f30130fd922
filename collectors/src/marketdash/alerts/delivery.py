"""Sending an alert's message to its channel: e-mail, Telegram, webhook.

Each channel raises DeliveryError on failure, saying whether trying again can help (a server down, a
429) or not (a refused recipient, an unknown chat, an address the policy refuses): the engine retries the
first kind with back-off and fails the second at once.

Why not apprise, which covers the three: its Telegram endpoint cannot be pointed anywhere but
api.telegram.org (no self-hosted Bot API server, no local stand-in), and it opens its own connections, so
the webhook address policy could only be checked before, not on the address actually connected to (a name
that resolves to a public address when checked and a private one when used). E-mail uses the standard
library's smtplib; Telegram and webhooks are one HTTP request each, with httpx.
"""

from __future__ import annotations

import asyncio
import json
import math
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from marketdash.alerts.settings import AlertSettings
from marketdash.core.addresses import (
    AddressRefusedError,
    IPNetwork,
    parse_networks,
    parse_url,
    resolve_allowed,
)

# What is read of an answer: its status matters, its body only for the error message.
MAX_ANSWER_BYTES = 16 * 1024


class DeliveryError(RuntimeError):
    def __init__(self, message: str, *, retry: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    text: str
    # Machine-readable copy for webhooks.
    fields: dict[str, Any]


class Channel(Protocol):
    name: str

    async def send(self, target: str | None, notification: Notification) -> None: ...

    async def close(self) -> None: ...


def _target(target: str | None, default: str, what: str) -> str:
    if target:
        return target
    if default:
        return default
    raise DeliveryError(f"the rule names no {what} and no default is configured", retry=False)


class EmailChannel:
    name = "email"

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings

    async def send(self, target: str | None, notification: Notification) -> None:
        settings = self.settings
        if not settings.smtp_host or not settings.email_from:
            raise DeliveryError("e-mail is not configured (smtp_host, email_from)", retry=False)
        message = EmailMessage()
        message["From"] = settings.email_from
        message["To"] = _target(target, settings.email_default_to, "e-mail address")
        message["Subject"] = notification.title
        message.set_content(notification.text)
        await asyncio.to_thread(self._send, message)

    async def close(self) -> None:
        """Nothing kept open: one SMTP session per message."""

    def _send(self, message: EmailMessage) -> None:
        settings = self.settings
        timeout = settings.send_timeout_s
        try:
            if settings.smtp_security == "tls":
                context = ssl.create_default_context()
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
                )
            else:
                client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
            with client:
                if settings.smtp_security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if settings.smtp_user:
                    client.login(settings.smtp_user, settings.smtp_password.get_secret_value())
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", retry=False) from exc
        except smtplib.SMTPResponseException as exc:
            # 5xx is the server's final word; 4xx says "later".
            final = exc.smtp_code >= 500
            raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retry=not final) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}", retry=True) from exc


def _seconds(value: object) -> float | None:
    """A server's "retry after" in seconds; None unless a finite, non-negative number."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


async def _post(
    client: httpx.AsyncClient, url: httpx.URL | str, **kwargs: Any
) -> tuple[httpx.Response, bytes]:
    """POST and read at most MAX_ANSWER_BYTES of the answer (a receiver may send anything back)."""
    async with client.stream("POST", url, **kwargs) as response:
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= MAX_ANSWER_BYTES:
                break
    return response, body[:MAX_ANSWER_BYTES]


def _http_error(response: httpx.Response, body: bytes) -> DeliveryError:
    retry_after = _seconds(response.headers.get("Retry-After")) if response.status_code == 429 else None
    return DeliveryError(
        f"HTTP {response.status_code}: {body[:200].decode('utf-8', 'replace')}",
        retry=response.status_code == 429 or response.status_code >= 500,
        retry_after_s=retry_after,
    )


class TelegramChannel:
    name = "telegram"

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(timeout=settings.send_timeout_s, follow_redirects=False)

    async def close(self) -> None:
        await self.client.aclose()

    async def send(self, target: str | None, notification: Notification) -> None:
        token = self.settings.telegram_bot_token.get_secret_value()
        if not token:
            raise DeliveryError("Telegram is not configured (telegram_bot_token)", retry=False)
        chat = _target(target, self.settings.telegram_default_chat, "Telegram chat")
        url = f"{self.settings.telegram_api_url.rstrip('/')}/bot{token}/sendMessage"
        try:
            response, body = await _post(
                self.client,
                url,
                json={"chat_id": chat, "text": notification.text, "disable_web_page_preview": True},
            )
        except httpx.HTTPError as exc:
            # The URL holds the token: say what failed without it.
            raise DeliveryError(f"Telegram unreachable: {type(exc).__name__}", retry=True) from None
        if response.status_code == 429:
            try:
                after = _seconds(json.loads(body)["parameters"]["retry_after"])
            except (ValueError, KeyError, TypeError):
                after = None
            raise DeliveryError("Telegram: too many requests", retry=True, retry_after_s=after)
        if response.status_code != 200:
            raise _http_error(response, body)


class WebhookChannel:
    """POSTs JSON: `text` (Slack) and `content` (Discord) hold the message, the rest the event's fields."""

    name = "webhook"

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.allowed: Sequence[IPNetwork] = parse_networks(settings.webhook_allowed_networks)
        # No connection kept: requests go to pinned addresses, and a kept connection verified for one
        # name would carry the next request for another name on the same address unverified.
        self.client = httpx.AsyncClient(
            timeout=settings.send_timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def send(self, target: str | None, notification: Notification) -> None:
        text = _target(target, self.settings.webhook_default_url, "webhook URL")
        try:
            url = parse_url(text)
            addresses = await resolve_allowed(text, self.allowed)
        except AddressRefusedError as exc:
            raise DeliveryError(str(exc), retry=False) from None
        # Connect to the address just checked, not to a second resolution of the name.
        pinned = url.copy_with(host=str(addresses[0]))
        body = {"title": notification.title, "text": notification.text, "content": notification.text}
        host = url.raw_host.decode("ascii")
        try:
            response, answer = await _post(
                self.client,
                pinned,
                json=body | notification.fields,
                headers={"Host": url.netloc.decode("ascii")},
                extensions={"sni_hostname": host} if url.scheme == "https" else {},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}", retry=True) from None
        if not response.is_success:
            raise _http_error(response, answer)

    async def close(self) -> None:
        await self.client.aclose()


def build_channels(settings: AlertSettings) -> dict[str, Channel]:
    channels: list[Channel] = [EmailChannel(settings), TelegramChannel(settings), WebhookChannel(settings)]
    return {channel.name: channel for channel in channels}
