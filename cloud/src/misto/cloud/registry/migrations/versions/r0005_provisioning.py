"""One-time gateway provisioning tokens (issue 5).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provisioning_tokens",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("gateway_id", sa.String(63), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_provisioning_tokens"),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_provisioning_tokens_gateway_id_gateways", ondelete="CASCADE"
        ),
        sa.CheckConstraint("used_at IS NULL OR revoked_at IS NULL", name="ck_provisioning_tokens_used_or_revoked"),
        sa.UniqueConstraint("token_hash", name="uq_provisioning_tokens_token_hash"),
    )
    op.create_index("ix_provisioning_tokens_gateway_id", "provisioning_tokens", ["gateway_id"])


def downgrade() -> None:
    op.drop_table("provisioning_tokens")
