"""Request and response bodies. Every limit here is published in the OpenAPI schema."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

# PostgreSQL text cannot hold NUL; refusing it here gives a 422 instead of a database error.
_NO_NUL = r"^[^\x00]*$"
# A name: no NUL, no line break, no leading or trailing blank, at least one visible character.
_NAME = r"^[^\s\x00]([^\x00\r\n]*[^\s\x00])?$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_NAME)]
Symbol = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=_NO_NUL)]
Username = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024, pattern=_NO_NUL)]
Role = Literal["admin", "member"]
UserId = Annotated[int, Field(ge=1, le=2_147_483_647)]
# Bounded so that a value always fits PostgreSQL numeric arithmetic and JSON floats; no NaN or infinity.
Amount = Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]

_MAX_PANELS_CONFIG_BYTES = 256 * 1024
_MAX_PANELS_CONFIG_DEPTH = 32


class Error(BaseModel):
    detail: str | list[dict[str, Any]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- auth and users ---------------------------------------------------------------------------------


class LoginIn(_Body):
    username: Username
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=_NO_NUL)]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth 2 token type
    expires_in: int


class UserIn(_Body):
    username: Username
    password: Password
    role: Role = "member"


class PasswordIn(_Body):
    password: Password
    current_password: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=1024, pattern=_NO_NUL),
            Field(description="Required to change one's own password"),
        ]
        | None
    ) = None


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    created_at: datetime


# --- assets -----------------------------------------------------------------------------------------


class AssetOut(BaseModel):
    symbol: str
    name: str
    asset_class: Literal["crypto", "equity", "index", "fx", "commodity"]
    aliases: list[str]
    sources: dict[str, str]


# --- watchlists ---------------------------------------------------------------------------------------

Assets = Annotated[list[Symbol], Field(max_length=200)]


def _unique(symbols: list[str]) -> list[str]:
    # Order is the user's display order; a repeated symbol adds nothing.
    return list(dict.fromkeys(symbols))


class WatchlistIn(_Body):
    name: Name
    assets: Assets = []
    active: bool = True
    user_id: UserId | None = Field(
        default=None, description="Owner; defaults to the caller (admins only may set another user)"
    )

    @field_validator("assets")
    @classmethod
    def _dedupe(cls, symbols: list[str]) -> list[str]:
        return _unique(symbols)


class WatchlistUpdate(_Body):
    name: Name | None = None
    assets: Assets | None = None
    active: bool | None = None

    @field_validator("assets")
    @classmethod
    def _dedupe(cls, symbols: list[str] | None) -> list[str] | None:
        return None if symbols is None else _unique(symbols)


class WatchlistOut(BaseModel):
    id: int
    user_id: int
    name: str
    assets: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


# --- layouts ------------------------------------------------------------------------------------------


def _depth(value: object) -> int:
    """How deeply objects and arrays nest in `value` (iterative: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _bounded_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        # Deeper documents are stored fine but fail when read back and served (a 500 on every read of
        # the owner's layouts); no layout needs more than a few levels.
        if _depth(value) > _MAX_PANELS_CONFIG_DEPTH:
            raise ValueError(f"panels_config nests deeper than {_MAX_PANELS_CONFIG_DEPTH} levels")
        text = json.dumps(value)
        if len(text) > _MAX_PANELS_CONFIG_BYTES:
            raise ValueError(f"panels_config is larger than {_MAX_PANELS_CONFIG_BYTES} bytes")
        if "\\u0000" in text:
            raise ValueError("panels_config may not contain NUL characters")
    return value


class LayoutIn(_Body):
    layout_name: Name
    panels_config: dict[str, Any] = {}
    is_default: bool = False
    user_id: UserId | None = None

    @field_validator("panels_config")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _bounded_json(value)


class LayoutUpdate(_Body):
    layout_name: Name | None = None
    panels_config: dict[str, Any] | None = None
    is_default: bool | None = None

    @field_validator("panels_config")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _bounded_json(value)


class LayoutOut(BaseModel):
    id: int
    user_id: int
    layout_name: str
    panels_config: dict[str, Any]
    is_default: bool
    created_at: datetime
    updated_at: datetime


# --- alert rules --------------------------------------------------------------------------------------

Condition = Literal["above", "below", "pct_change", "volume_spike"]
Channel = Literal["telegram", "email", "webhook"]
Target = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=_NO_NUL)]
WindowMinutes = Annotated[int, Field(ge=1, le=10080)]
CooldownSeconds = Annotated[int, Field(ge=0, le=604800)]
HysteresisPct = Annotated[
    float,
    Field(
        ge=0,
        le=50,
        allow_inf_nan=False,
        description="How far back past the threshold (percent of it) the value must go before the rule "
        "fires again; null: the engine's default (0.5)",
    ),
]

_TARGET_FORMS = {
    "telegram": (re.compile(r"^(-?\d{1,20}|@[A-Za-z0-9_]{5,32})$"), "a Telegram chat id or @channel"),
    "email": (re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), "an e-mail address"),
    "webhook": (re.compile(r"^https?://[^\s]+$"), "an http(s) URL"),
}


def _check_target(channel: str | None, target: str | None) -> None:
    if channel is None or target is None:
        return
    form, what = _TARGET_FORMS[channel]
    if not form.match(target):
        raise ValueError(f"target for channel {channel} must be {what}")


def _check_threshold(condition: str | None, threshold: float | None) -> None:
    if condition in ("pct_change", "volume_spike") and threshold is not None and threshold <= 0:
        raise ValueError(f"threshold of a {condition} rule must be positive")


class AlertRuleIn(_Body):
    asset: Symbol
    condition: Condition
    threshold: Amount
    channel: Channel
    target: Target | None = Field(
        default=None, description="Chat id, e-mail or URL; null: the channel's default"
    )
    window_minutes: WindowMinutes = 60
    cooldown_seconds: CooldownSeconds = 900
    hysteresis_pct: HysteresisPct | None = None
    active: bool = True
    user_id: UserId | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AlertRuleIn:
        check_rule(self.model_dump())
        return self


def check_rule(rule: dict[str, Any]) -> None:
    """Checks what only the whole rule can tell, also after a partial update."""
    _check_target(rule["channel"], rule["target"])
    _check_threshold(rule["condition"], rule["threshold"])


class AlertRuleUpdate(_Body):
    asset: Symbol | None = None
    condition: Condition | None = None
    threshold: Amount | None = None
    channel: Channel | None = None
    target: Target | None = None
    window_minutes: WindowMinutes | None = None
    cooldown_seconds: CooldownSeconds | None = None
    hysteresis_pct: HysteresisPct | None = None
    active: bool | None = None


class AlertRuleOut(BaseModel):
    id: int
    user_id: int
    asset: str
    condition: Condition
    threshold: float
    channel: Channel
    target: str | None
    window_minutes: int
    cooldown_seconds: int
    hysteresis_pct: float | None
    active: bool
    created_at: datetime
    updated_at: datetime


class AlertEventOut(BaseModel):
    id: int
    rule_id: int | None
    user_id: int
    asset: str
    condition: str
    threshold: float
    value: float
    channel: str
    status: str
    message: str
    triggered_at: datetime
    delivered_at: datetime | None


# --- portfolio positions --------------------------------------------------------------------------------

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Note = Annotated[str, StringConstraints(max_length=500, pattern=_NO_NUL)]
Price = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]


class PositionIn(_Body):
    asset: Symbol
    quantity: Amount
    avg_price: Price
    currency: Currency = "USD"
    opened_at: AwareDatetime | None = None
    note: Note = ""
    user_id: UserId | None = None


class PositionUpdate(_Body):
    asset: Symbol | None = None
    quantity: Amount | None = None
    avg_price: Price | None = None
    currency: Currency | None = None
    opened_at: AwareDatetime | None = None
    note: Note | None = None


class PositionOut(BaseModel):
    id: int
    user_id: int
    asset: str
    quantity: float
    avg_price: float
    currency: str
    opened_at: datetime
    note: str
    created_at: datetime
    updated_at: datetime
