"""The API's settings, from MARKETDASH_API_* environment variables (docs/api.md lists them)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketdash.core.addresses import parse_networks


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETDASH_API_", extra="ignore")

    postgres_dsn: str = "postgresql://marketdash_api@127.0.0.1:5432/bloomberg_config"
    pool_min_size: int = Field(default=4, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    # How long a request waits for a connection before it is answered 503.
    pool_timeout_seconds: float = Field(default=10.0, gt=0)

    # The read cache's entries are re-read at least this often, even with no change announced: the bound on
    # staleness after a write that fires no trigger (read_cache.py).
    read_cache_max_age_seconds: float = Field(default=30.0, gt=0)

    # HS256 key; required to serve. 32 bytes at least: shorter HMAC keys are brute-forceable offline from
    # any one token.
    jwt_secret: SecretStr | None = None
    jwt_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    jwt_issuer: str = "marketdash-api"

    # argon2id cost: the default is RFC 9106's low-memory profile (64 MiB, 3 passes). Stored hashes carry
    # their own parameters, and are re-hashed at the next login after a change.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=64)
    argon2_parallelism: int = Field(default=4, ge=1, le=8)
    # Password checks at once per process; each holds argon2_memory_kib while it runs.
    argon2_max_concurrent: int = Field(default=2, ge=1)

    # Larger request bodies are refused (413) before they are read; the largest legitimate one is a
    # layout (panels_config up to 256 KiB of JSON). nginx's API location has the same cap.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Token buckets: N requests per minute, bursts up to N. Per process (see docs/api.md).
    rate_limit_user_per_minute: int = Field(default=120, ge=1)
    rate_limit_ip_per_minute: int = Field(default=600, ge=1)
    rate_limit_login_per_minute: int = Field(default=10, ge=1)
    # Failed password checks per account (logins and password changes), whatever the address: more than
    # one address may make (the per-address login limit), so that one address cannot lock a member out.
    rate_limit_login_per_username_per_minute: int = Field(default=30, ge=1)

    # Networks a member's webhook may point at besides public addresses (CIDR list, JSON); the alert
    # engine's MARKETDASH_ALERTS_WEBHOOK_ALLOWED_NETWORKS must say the same.
    webhook_allowed_networks: list[str] = []

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    # Peers whose X-Forwarded-For is believed (nginx on the host): the per-IP limit needs the real client.
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "INFO"

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    def require_jwt_secret(self) -> str:
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        if len(secret.encode()) < 32:
            raise ValueError(
                "MARKETDASH_API_JWT_SECRET must be set to at least 32 bytes (e.g. openssl rand -hex 32)"
            )
        return secret
