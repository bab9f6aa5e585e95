"""The tables. Secrets (API keys, bootstrap tokens, daemon credentials) are stored only as hashes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in and out: SQLite keeps no zone, PostgreSQL does; both read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ApiKey(Base):
    __tablename__ = "api_keys"

    # The public part of `sk_<id>_<secret>`: found by id, then the secret's hash compared in constant time.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[str] = mapped_column(String(512))  # space-separated, as OAuth's `scope` claim
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class PersonalRuntimeRecord(Base):
    __tablename__ = "personal_runtimes"
    __table_args__ = (Index("ix_personal_runtimes_account_created", "account_id", "created_at", "lattice_id"),)

    lattice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    display_name: Mapped[str] = mapped_column(String(200))
    execution_backend: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    paired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Set at redemption: the daemon's X25519 public key and its credential's hash.
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    credential_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True, unique=True)


class BootstrapToken(Base):
    __tablename__ = "bootstrap_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    lattice_id: Mapped[str] = mapped_column(ForeignKey("personal_runtimes.lattice_id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class UsageRecord(Base):
    """One chat, metered: written in batches off the hot path (lattice/server/metering.py)."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    # The UTC day as text, stored so that grouping by day is plain, portable SQL.
    day: Mapped[str] = mapped_column(String(10))
    model: Mapped[str] = mapped_column(String(256))
    backend: Mapped[str] = mapped_column(String(32))
    runtime_id: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer())
    completion_tokens: Mapped[int] = mapped_column(Integer())
    duration_ms: Mapped[int] = mapped_column(Integer())
    # `ok`, or why not: an error reason in lower case, `cancelled`.
    outcome: Mapped[str] = mapped_column(String(64))
