"""People (users, Argon2 password hashes) and machines' API keys (SHA-256 of the secret), with a
per-key rate limit (misto.cloud.auth).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)
_ROLES = "role IN ('admin', 'operator', 'technician', 'partner', 'citizen')"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("password_changed_at", _TS, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("last_login_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_users"),
        sa.CheckConstraint(_ROLES, name="ck_users_role_known"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("rate_limit", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.CheckConstraint(_ROLES, name="ck_api_keys_role_known"),
        sa.CheckConstraint("rate_limit >= 1", name="ck_api_keys_rate_limit_positive"),
    )
    op.create_index("ix_api_keys_organisation", "api_keys", ["organisation"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("users")
