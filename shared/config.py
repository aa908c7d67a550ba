"""Settings: one typed model per service over the part every process shares, read once at
start-up (environment variables, a `.env` file beside the process, and `<NAME>_FILE` variables
naming a file that holds the value, as Docker and Kubernetes secrets are mounted) and passed down.
`cpms run all` takes `Settings`, every service's settings in one."""
from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

S = TypeVar("S", bound="CommonSettings")


class _FileVariables(PydanticBaseSettingsSource):
    """`CPMS_ADMIN_TOKEN_FILE=/run/secrets/admin-token`: the setting is that file's content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{field.alias}_FILE") if field.alias else None
        return (Path(path).read_text().rstrip("\r\n") if path else None), field.alias or field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class CommonSettings(BaseSettings):
    """What every process needs. Environment names are in `Field(alias=...)`."""

    model_config = SettingsConfigDict(populate_by_name=True, frozen=True, env_file=".env", extra="ignore")

    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/cpms", alias="CPMS_DATABASE_URL")
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", alias="CPMS_AMQP_URL")
    amqp_prefix: str = Field("cpms", alias="CPMS_AMQP_PREFIX", pattern=r"^[A-Za-z0-9_.-]+$")
    listen_addr: str = Field(":8081", alias="CPMS_LISTEN_ADDR")
    # The listener's accept queue: a gateway that opens a connection for nearly every event
    # overflows a short one, and the kernel then drops connection attempts (retried after 1, 3, 7 s).
    # The kernel caps it at net.core.somaxconn.
    listen_backlog: int = Field(4096, alias="CPMS_LISTEN_BACKLOG", ge=1, le=65535)
    # How long an idle connection is kept: longer than a client's idle pool keeps one (Go's 90 s),
    # so the client, never the server, closes it: a request never meets a connection closing under it.
    keepalive_timeout_seconds: float = Field(120.0, alias="CPMS_KEEPALIVE_TIMEOUT_SECONDS", gt=0)
    # Worker processes of one `cpms run` (shared/workers.py): with 2 or more, the first
    # CPMS_CONSUMER_WORKERS apply the queues and the others serve HTTP behind the one port.
    workers: int = Field(1, alias="CPMS_WORKERS", ge=1, le=64)
    consumer_workers: int = Field(1, alias="CPMS_CONSUMER_WORKERS", ge=1, le=63)

    @model_validator(mode="after")
    def _some_worker_serves_http(self) -> "CommonSettings":
        if self.workers > 1 and self.consumer_workers >= self.workers:
            raise ValueError("CPMS_CONSUMER_WORKERS must be below CPMS_WORKERS: one worker at least serves HTTP")
        return self

    api_key: SecretStr = Field(SecretStr("dev"), alias="CPMS_API_KEY")
    admin_token: SecretStr = Field(SecretStr("devadmin"), alias="CPMS_ADMIN_TOKEN")

    log_level: str = Field("INFO", alias="CPMS_LOG_LEVEL")
    access_log: bool = Field(False, alias="CPMS_ACCESS_LOG")
    max_body_bytes: int = Field(1024 * 1024, alias="CPMS_MAX_BODY_BYTES", gt=0)
    publish_timeout_seconds: float = Field(2.0, alias="CPMS_PUBLISH_TIMEOUT_SECONDS", gt=0)
    db_pool_max_size: int = Field(10, alias="CPMS_DB_POOL_MAX_SIZE", ge=1)
    consumer_prefetch: int = Field(64, alias="CPMS_CONSUMER_PREFETCH", ge=1)
    consumer_batch_size: int = Field(128, alias="CPMS_CONSUMER_BATCH_SIZE", ge=1)
    consumer_linger_seconds: float = Field(0.025, alias="CPMS_CONSUMER_LINGER_SECONDS", ge=0, le=5)
    outbox_poll_seconds: float = Field(0.5, alias="CPMS_OUTBOX_POLL_SECONDS", gt=0)
    read_your_writes_timeout_seconds: float = Field(5.0, alias="CPMS_READ_YOUR_WRITES_TIMEOUT_SECONDS", ge=0)
    prune_interval_seconds: float = Field(300.0, alias="CPMS_PRUNE_INTERVAL_SECONDS", gt=0)
    prune_batch_size: int = Field(5000, alias="CPMS_PRUNE_BATCH_SIZE", ge=1, le=100_000)
    prune_pause_seconds: float = Field(0.05, alias="CPMS_PRUNE_PAUSE_SECONDS", ge=0)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileVariables(settings_cls), dotenv_settings

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: object) -> S:
        """The process's settings (environment, `.env`, `*_FILE`); with `environ`, only what it holds
        (for tests and tools). Keyword overrides, by field name, win."""
        if environ is None:
            return cls(**overrides)
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        values: dict[str, object] = {k: v for k, v in environ.items() if k in aliases and v != ""}
        values.update(overrides)
        return _only_given(cls)(**values)

    def listen_addr_of(self, service: str) -> str:
        return self.listen_addr if service == "all" else getattr(self, f"{service}_listen_addr")


@functools.cache
def _only_given(cls: type[S]) -> type[S]:
    """`cls` reading nothing but the values it is given (no environment, `.env` or files)."""

    class Given(cls):  # type: ignore[valid-type, misc]
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, **_sources):  # noqa: ANN001, ANN206
            return (init_settings,)

    Given.__name__ = Given.__qualname__ = cls.__name__
    return Given


class IngestSettings(CommonSettings):
    ingest_listen_addr: str = Field(":8091", alias="CPMS_INGEST_LISTEN_ADDR")
    auth_max_failures: int = Field(5, alias="CPMS_AUTH_MAX_FAILURES", ge=1)
    auth_failure_window_seconds: float = Field(60.0, alias="CPMS_AUTH_FAILURE_WINDOW_SECONDS", gt=0)
    # Chargers whose verified secret a process remembers (about 150 bytes each); 0 = scrypt every handshake.
    auth_remembered_chargers: int = Field(100_000, alias="CPMS_AUTH_REMEMBERED_CHARGERS", ge=0)
    archive_retention_days: float | None = Field(None, alias="CPMS_ARCHIVE_RETENTION_DAYS", gt=0)
    # How long the gateway's events may wait for others to share their envelope (docs/benchmarks.md).
    publish_linger_seconds: float = Field(0.004, alias="CPMS_PUBLISH_LINGER_SECONDS", ge=0, le=0.1)


class SessionsSettings(CommonSettings):
    sessions_listen_addr: str = Field(":8092", alias="CPMS_SESSIONS_LISTEN_ADDR")
    charger_offline_after_seconds: float = Field(900.0, alias="CPMS_CHARGER_OFFLINE_AFTER_SECONDS", gt=0)
    session_stale_after_seconds: float = Field(172800.0, alias="CPMS_SESSION_STALE_AFTER_SECONDS", gt=0)
    authorization: Literal["open", "list"] = Field("open", alias="CPMS_AUTHORIZATION")
    unauthorized_sessions: Literal["stop", "flag"] = Field("stop", alias="CPMS_UNAUTHORIZED_SESSIONS")
    sample_retention_days: float | None = Field(None, alias="CPMS_SAMPLE_RETENTION_DAYS", gt=0)
    # A going session's progress (`session.progress`) is announced at its start, then at most this often.
    session_progress_seconds: float = Field(30.0, alias="CPMS_SESSION_PROGRESS_SECONDS", ge=0)
    # Site power limits (CONTRACT section 13): how often a site's shares follow the measured power.
    load_rebalance_seconds: float = Field(60.0, alias="CPMS_LOAD_REBALANCE_SECONDS", gt=0)


class BillingSettings(CommonSettings):
    billing_listen_addr: str = Field(":8093", alias="CPMS_BILLING_LISTEN_ADDR")
    default_currency: str = Field("USD", alias="CPMS_DEFAULT_CURRENCY", pattern=r"^[A-Z]{3}$")
    max_price_per_kwh: Decimal = Field(Decimal("1000"), alias="CPMS_MAX_PRICE_PER_KWH", gt=0)


class CommandsSettings(CommonSettings):
    commands_listen_addr: str = Field(":8094", alias="CPMS_COMMANDS_LISTEN_ADDR")
    gateway_base_url: str = Field("http://127.0.0.1:8080", alias="GATEWAY_BASE_URL")
    gateway_api_key: SecretStr | None = Field(None, alias="GATEWAY_API_KEY")
    command_ttl_seconds: float = Field(120.0, alias="CPMS_COMMAND_TTL_SECONDS", gt=0)
    gateway_timeout_seconds: float = Field(15.0, alias="CPMS_GATEWAY_TIMEOUT_SECONDS", gt=0)


class GatewaySettings(CommonSettings):
    """The OCPP 1.6J gateway (`cpms run gateway`; `cpms run all` runs it too, on its own port)."""

    gateway_listen_addr: str = Field(":8080", alias="CPMS_GATEWAY_LISTEN_ADDR")
    # Ingest's base URL (the reference gateway's own variable); None in `cpms run all`: this process's API.
    base_url: str | None = Field(None, alias="CPMS_BASE_URL")
    gateway_api_key: SecretStr | None = Field(None, alias="GATEWAY_API_KEY")  # required on /v1/gateway/commands when set
    heartbeat_seconds: int = Field(300, alias="CPMS_GATEWAY_HEARTBEAT_SECONDS", ge=1, le=86_400)
    # How long a charger's call may wait for ingest (retrying) before it is answered InternalError:
    # below a charger's own call timeout (commonly 30 s or more), so the charger hears our answer.
    call_deadline_seconds: float = Field(20.0, alias="CPMS_GATEWAY_CALL_DEADLINE_SECONDS", gt=0, le=300)
    # How long the events of one call wait for those of other chargers to share their request to ingest.
    batch_linger_seconds: float = Field(0.005, alias="CPMS_GATEWAY_BATCH_LINGER_SECONDS", ge=0, le=1)
    # How long a command waits for the charger's answer: below the commands service's 15 s timeout.
    command_timeout_seconds: float = Field(12.0, alias="CPMS_GATEWAY_COMMAND_TIMEOUT_SECONDS", gt=0, le=300)
    # WebSocket pings, so a connection whose charger vanished is noticed (0: none).
    ping_seconds: float = Field(60.0, alias="CPMS_GATEWAY_PING_SECONDS", ge=0)
    # DataTransfer vendorIds answered Accepted (comma-separated); any other is UnknownVendorId.
    data_transfer_vendors: str = Field("", alias="CPMS_GATEWAY_DATA_TRANSFER_VENDORS")

    @property
    def accepted_vendors(self) -> frozenset[str]:
        return frozenset(v.strip() for v in self.data_transfer_vendors.split(",") if v.strip())


class OcpiSettings(CommonSettings):
    """The OCPI 2.2.1 CPO interface (`cpms run ocpi`; CONTRACT section 12)."""

    ocpi_listen_addr: str = Field(":8095", alias="CPMS_OCPI_LISTEN_ADDR")
    ocpi_country_code: str = Field("NL", alias="CPMS_OCPI_COUNTRY_CODE", pattern=r"^[A-Z]{2}$")
    ocpi_party_id: str = Field("CPM", alias="CPMS_OCPI_PARTY_ID", pattern=r"^[A-Z0-9]{3}$")
    ocpi_business_name: str = Field("CPMS", alias="CPMS_OCPI_BUSINESS_NAME", min_length=1, max_length=100)
    # The base URL partners reach this service at (`https://cpms.example.com`); None: the request's own.
    ocpi_public_url: str | None = Field(None, alias="CPMS_OCPI_PUBLIC_URL", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    ocpi_session_patch_seconds: float = Field(60.0, alias="CPMS_OCPI_SESSION_PATCH_SECONDS", gt=0)
    ocpi_cdr_delay_seconds: float = Field(300.0, alias="CPMS_OCPI_CDR_DELAY_SECONDS", ge=0)
    # Pushes to a partner: one request at a time per partner, in order; a partner that does not
    # answer is retried after a delay that doubles from the first to the most.
    ocpi_push_timeout_seconds: float = Field(10.0, alias="CPMS_OCPI_PUSH_TIMEOUT_SECONDS", gt=0, le=120)
    ocpi_push_retry_first_seconds: float = Field(1.0, alias="CPMS_OCPI_PUSH_RETRY_FIRST_SECONDS", gt=0)
    ocpi_push_retry_max_seconds: float = Field(300.0, alias="CPMS_OCPI_PUSH_RETRY_MAX_SECONDS", gt=0)
    ocpi_push_poll_seconds: float = Field(1.0, alias="CPMS_OCPI_PUSH_POLL_SECONDS", gt=0)
    # The most a paginated OCPI list answers at once (a smaller `limit` is honoured).
    ocpi_page_limit: int = Field(100, alias="CPMS_OCPI_PAGE_LIMIT", ge=1, le=1000)


class Settings(IngestSettings, SessionsSettings, BillingSettings, CommandsSettings, GatewaySettings, OcpiSettings):
    """Every service's settings: what `cpms run all` (one process for all of them) reads."""


def parse_listen_addr(addr: str) -> tuple[str, int]:
    """`:8081` -> ("0.0.0.0", 8081); `127.0.0.1:9000` -> ("127.0.0.1", 9000)."""
    host, _, port = addr.rpartition(":")
    return host or "0.0.0.0", int(port)
