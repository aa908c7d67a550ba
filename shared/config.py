"""Settings: one typed model, read from the environment once at start-up and passed down."""
from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Settings(BaseModel):
    """Every setting of every service. Environment names are in `Field(alias=...)`."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/cpms", alias="CPMS_DATABASE_URL")
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", alias="CPMS_AMQP_URL")
    amqp_prefix: str = Field("cpms", alias="CPMS_AMQP_PREFIX", pattern=r"^[A-Za-z0-9_.-]+$")

    listen_addr: str = Field(":8081", alias="CPMS_LISTEN_ADDR")
    ingest_listen_addr: str = Field(":8091", alias="CPMS_INGEST_LISTEN_ADDR")
    sessions_listen_addr: str = Field(":8092", alias="CPMS_SESSIONS_LISTEN_ADDR")
    billing_listen_addr: str = Field(":8093", alias="CPMS_BILLING_LISTEN_ADDR")
    commands_listen_addr: str = Field(":8094", alias="CPMS_COMMANDS_LISTEN_ADDR")

    api_key: SecretStr = Field(SecretStr("dev"), alias="CPMS_API_KEY")
    admin_token: SecretStr = Field(SecretStr("devadmin"), alias="CPMS_ADMIN_TOKEN")
    gateway_base_url: str = Field("http://127.0.0.1:9090", alias="GATEWAY_BASE_URL")
    gateway_api_key: SecretStr | None = Field(None, alias="GATEWAY_API_KEY")

    log_level: str = Field("INFO", alias="CPMS_LOG_LEVEL")
    max_body_bytes: int = Field(1024 * 1024, alias="CPMS_MAX_BODY_BYTES", gt=0)
    publish_timeout_seconds: float = Field(2.0, alias="CPMS_PUBLISH_TIMEOUT_SECONDS", gt=0)
    db_pool_max_size: int = Field(10, alias="CPMS_DB_POOL_MAX_SIZE", ge=1)
    consumer_prefetch: int = Field(64, alias="CPMS_CONSUMER_PREFETCH", ge=1)
    consumer_batch_size: int = Field(128, alias="CPMS_CONSUMER_BATCH_SIZE", ge=1)
    consumer_linger_seconds: float = Field(0.025, alias="CPMS_CONSUMER_LINGER_SECONDS", ge=0, le=5)
    outbox_poll_seconds: float = Field(0.5, alias="CPMS_OUTBOX_POLL_SECONDS", gt=0)
    read_your_writes_timeout_seconds: float = Field(5.0, alias="CPMS_READ_YOUR_WRITES_TIMEOUT_SECONDS", ge=0)

    auth_max_failures: int = Field(5, alias="CPMS_AUTH_MAX_FAILURES", ge=1)
    auth_failure_window_seconds: float = Field(60.0, alias="CPMS_AUTH_FAILURE_WINDOW_SECONDS", gt=0)

    command_ttl_seconds: float = Field(120.0, alias="CPMS_COMMAND_TTL_SECONDS", gt=0)
    gateway_timeout_seconds: float = Field(15.0, alias="CPMS_GATEWAY_TIMEOUT_SECONDS", gt=0)
    default_currency: str = Field("USD", alias="CPMS_DEFAULT_CURRENCY", pattern=r"^[A-Z]{3}$")
    max_price_per_kwh: Decimal = Field(Decimal("1000"), alias="CPMS_MAX_PRICE_PER_KWH", gt=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read every `CPMS_*` / `GATEWAY_*` variable that is set; keyword overrides win."""
        environ = os.environ if environ is None else environ
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        values: dict[str, object] = {k: v for k, v in environ.items() if k in aliases and v != ""}
        values.update(overrides)
        return cls.model_validate(values)

    def listen_addr_of(self, service: str) -> str:
        return self.listen_addr if service == "all" else getattr(self, f"{service}_listen_addr")


def parse_listen_addr(addr: str) -> tuple[str, int]:
    """`:8081` -> ("0.0.0.0", 8081); `127.0.0.1:9000` -> ("127.0.0.1", 9000)."""
    host, _, port = addr.rpartition(":")
    return host or "0.0.0.0", int(port)
