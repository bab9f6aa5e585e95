"""Accounts, API keys, personal runtimes and bootstrap tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lattice.server.store.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("scopes", sa.String(512), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "personal_runtimes",
        sa.Column("lattice_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("execution_backend", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("paired_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=True),
        sa.Column("credential_hash", sa.LargeBinary(32), nullable=True, unique=True),
    )
    op.create_index(
        "ix_personal_runtimes_account_created", "personal_runtimes", ["account_id", "created_at", "lattice_id"]
    )
    op.create_table(
        "bootstrap_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("lattice_id", sa.String(64), sa.ForeignKey("personal_runtimes.lattice_id"), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_bootstrap_tokens_lattice_id", "bootstrap_tokens", ["lattice_id"])


def downgrade() -> None:
    op.drop_table("bootstrap_tokens")
    op.drop_table("personal_runtimes")
    op.drop_table("api_keys")
    op.drop_table("accounts")
