"""MQTT broker accounts: one per gateway or service, holding only the hash of its secret.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "broker_accounts",
        sa.Column("username", sa.String(63), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("gateway_id", sa.String(63), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("secret_set_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_broker_accounts"),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_broker_accounts_gateway_id_gateways", ondelete="CASCADE"
        ),
        sa.CheckConstraint("(role = 'gateway') = (gateway_id IS NOT NULL)", name="ck_broker_accounts_gateway_role"),
        sa.CheckConstraint("gateway_id IS NULL OR gateway_id = username", name="ck_broker_accounts_gateway_username"),
        sa.CheckConstraint(
            "(revoked_at IS NULL) = (password_hash IS NOT NULL)", name="ck_broker_accounts_revoked_no_hash"
        ),
    )
    op.create_index("ix_broker_accounts_gateway_id", "broker_accounts", ["gateway_id"])


def downgrade() -> None:
    op.drop_table("broker_accounts")
