"""Settings, read from the environment (prefix EXCHANGE_) once, by whoever builds the app."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.deadlines.rules import Windows
from app.messages.retry import STANDARD_SCHEDULE

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./var/exchange.db"
    data_dir: Path = Path("./var")
    issuer: str = "http://127.0.0.1:8000"
    webhook_allowed_cidrs: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    embedded_worker: bool = True
    # How long a request waits for the database before it is answered 503 Busy: for a pooled
    # connection (PostgreSQL), or for another connection's lock (PostgreSQL's lock_timeout,
    # SQLite's busy timeout; workers and the command line wait as long for a lock).
    database_busy_timeout_seconds: float = Field(default=30, gt=0)
    # A PostgreSQL that stops answering (a network partition, a hung server) is given up after
    # these, and the request answered 503: to connect, and for any one statement of the API or
    # a delivery worker (the command line's own commands, such as migrations or `audit
    # verify`, let a statement take as long as it needs: database_timeouts).
    database_connect_timeout_seconds: float = Field(default=10, gt=0)
    database_command_timeout_seconds: float = Field(default=60, gt=0)

    # An external OAuth server whose access tokens are trusted too (say a prison service's own):
    # its issuer name, its JWKS as a file (no fetch at run time), and the claim naming the
    # organisation code its client acts for.
    trusted_issuer: str | None = None
    trusted_issuer_jwks: Path | None = None
    trusted_issuer_organisation_claim: str = "organisation"

    # Failed client authentications allowed per client and source within the window.
    client_auth_failure_limit: int = Field(default=5, ge=1)
    client_auth_failure_window_seconds: float = Field(default=300, gt=0)

    # Where the data keys that seal personal data at rest live (default: <data_dir>/data-keys).
    data_keys_dir: Path | None = None
    # Notice bodies and message payloads are purged this long after the notice arrived.
    retention_days: int = Field(default=90, ge=1)
    retention_purge_interval_seconds: float = Field(default=3600, gt=0)

    # After `exchange keys rotate`, the key it replaced stays in the JWKS (and verifies access
    # tokens) this long; /v1/signing-keys publishes every key ever used, for good.
    signing_key_grace_days: int = Field(default=30, ge=1)

    # The exchange log's checkpoints: their origin line and key name (default: the issuer's host
    # followed by /log), and how often one is signed: after this many new entries, or this long
    # after the last one when the log grew at all.
    log_origin: str | None = Field(default=None, min_length=1, pattern=r"^[^\s+]+$")
    checkpoint_every_entries: int = Field(default=1000, ge=1)
    checkpoint_every_seconds: float = Field(default=60, gt=0)

    policy_dir: Path = PROJECT_ROOT / "consent"
    access_token_ttl_seconds: int = Field(default=300, ge=30, le=300)
    # On PostgreSQL a new delivery wakes the workers at once (LISTEN/NOTIFY); the poll is the
    # fallback, and the only way on SQLite.
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_batch_size: int = Field(default=100, ge=1, le=500)  # claimed at most per claim
    worker_concurrency: int = Field(default=32, ge=1, le=1000)  # attempts in flight per worker
    # Attempts in flight per worker to any one subscription: a slow endpoint holds no more.
    worker_subscription_concurrency: int = Field(default=4, ge=1)
    # A whole webhook attempt, from resolving the host to the end of the response.
    webhook_timeout_seconds: float = Field(default=15, gt=0, le=60)
    # Waits between attempts, in seconds (default: the Standard Webhooks schedule).
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = tuple(
        d.total_seconds() for d in STANDARD_SCHEDULE
    )
    # At least twice a whole attempt, so a lease never runs out mid-send.
    delivery_lease_seconds: float = Field(default=60, gt=0)

    # Deadlines (app/deadlines): a disclosure is acknowledged by the end of this many working
    # days (England and Wales) after the day it was first available, and the substance misuse
    # service records an attended appointment within this many days of the release date. The
    # worker looks for deadlines passed unmet this often (an alert goes within a minute).
    receipt_working_days: int = Field(default=1, ge=0, le=20)
    engagement_days: int = Field(default=21, ge=0, le=365)
    deadline_scan_seconds: float = Field(default=1, gt=0, le=60)

    # The web console (app/console), served under /console once an OpenID Connect issuer is set:
    # people of auditor and operator organisations sign in there (authorization code with PKCE).
    # The issuer's discovery document is read at its /.well-known/openid-configuration; the
    # organisation claim names an organisation code of the exchange, the role claim the person's
    # role (shown and logged). console_url is the console's public address (its callback is
    # <console_url>/callback; default: the issuer's /console). The session cookie is signed with
    # console_session_secret (default: one made once and kept in <data_dir>/console/
    # session-secret, shared by every worker process) and lasts console_session_minutes.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_organisation_claim: str = "organisation"
    oidc_role_claim: str = "role"
    console_url: str | None = None
    console_session_secret: str | None = Field(default=None, min_length=32)
    console_session_minutes: int = Field(default=30, ge=1, le=720)
    # Where the console's front-end packages are installed (`npm ci`; default: node_modules).
    console_assets_dir: Path | None = None

    @field_validator("webhook_allowed_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(ipaddress.ip_network(p.strip()) for p in value.split(",") if p.strip())
        return value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(p) for p in value.split(",") if p.strip())
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_is_usable(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or len(value) > 50 or any(not 0 < s <= 7 * 86400 for s in value):
            raise ValueError("1 to 50 waits, each over 0 and at most 7 days (in seconds)")
        return value

    @property
    def retry_schedule(self) -> tuple[timedelta, ...]:
        return tuple(timedelta(seconds=s) for s in self.webhook_retry_schedule)

    def database_timeouts(self, *, statements: bool = True) -> dict[str, float | None]:
        """app.storage.db.make_engine's timeouts. statements=False for the command line's own
        commands (migrations, `audit verify` ...), whose statements may take as long as they
        need."""
        return {
            "busy_timeout_seconds": self.database_busy_timeout_seconds,
            "connect_timeout_seconds": self.database_connect_timeout_seconds,
            "command_timeout_seconds": self.database_command_timeout_seconds
            if statements
            else None,
        }

    @property
    def windows(self) -> Windows:
        """The deadlines' windows (app/deadlines/rules.py)."""
        return Windows(self.receipt_working_days, self.engagement_days)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def sealing_keys_dir(self) -> Path:
        return self.data_keys_dir or self.data_dir / "data-keys"

    @property
    def token_endpoint(self) -> str:
        """The audience of private_key_jwt client assertions (RFC 7523)."""
        return self.issuer.rstrip("/") + "/oauth/token"

    @property
    def console_enabled(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def console_base(self) -> str:
        """The console's public address, without a trailing slash."""
        return (self.console_url or self.issuer.rstrip("/") + "/console").rstrip("/")

    @model_validator(mode="after")
    def _trusted_issuer_is_whole(self) -> Settings:
        if self.oidc_issuer is not None and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError("oidc_issuer needs oidc_client_id and oidc_client_secret")
        if (self.trusted_issuer is None) != (self.trusted_issuer_jwks is None):
            raise ValueError("trusted_issuer and trusted_issuer_jwks go together")
        if self.trusted_issuer == self.issuer:
            raise ValueError("trusted_issuer must not be the exchange's own issuer")
        if self.delivery_lease_seconds < 2 * self.webhook_timeout_seconds:
            raise ValueError(
                "delivery_lease_seconds must be at least twice webhook_timeout_seconds"
            )
        return self
