"""Device models, gateways, devices and the audit log; on PostgreSQL a PostGIS GiST index.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)
_INDEX = "ix_devices_location_gist"


def _record() -> list[sa.Column[object]]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    ]


def _location(table: str) -> list[SchemaItem]:
    return [
        sa.Column("lon", sa.Double, nullable=True),
        sa.Column("lat", sa.Double, nullable=True),
        sa.CheckConstraint("(lon IS NULL) = (lat IS NULL)", name=f"ck_{table}_location_complete"),
        sa.CheckConstraint("lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name=f"ck_{table}_location_range"),
    ]


def upgrade() -> None:
    op.create_table(
        "device_models",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("manufacturer", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("profile", sa.String(64), nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        *_record(),
        sa.PrimaryKeyConstraint("id", name="pk_device_models"),
    )
    op.create_index("ix_device_models_kind", "device_models", ["kind"])
    op.create_table(
        "gateways",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        *_location("gateways"),
        sa.Column("district", sa.String(200), nullable=True),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("owner_contact", sa.String(200), nullable=True),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text, nullable=True),
        *_record(),
        sa.PrimaryKeyConstraint("id", name="pk_gateways"),
    )
    op.create_index("ix_gateways_district", "gateways", ["district"])
    op.create_table(
        "devices",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("gateway_id", sa.String(63), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("install_date", sa.Date, nullable=True),
        *_location("devices"),
        sa.Column("district", sa.String(200), nullable=True),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("owner_contact", sa.String(200), nullable=True),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text, nullable=True),
        *_record(),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name="fk_devices_gateway_id_gateways", ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["device_models.id"], name="fk_devices_model_id_device_models", ondelete="RESTRICT"
        ),
    )
    op.create_index("ix_devices_gateway_id", "devices", ["gateway_id"])
    op.create_index("ix_devices_model_id", "devices", ["model_id"])
    op.create_index("ix_devices_kind", "devices", ["kind"])
    op.create_index("ix_devices_district", "devices", ["district"])
    op.create_index("ix_devices_lat_lon", "devices", ["lat", "lon"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_entity_entity_id_seq", "audit_log", ["entity", "entity_id", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        # PostGIS must be installed by the DBA (CREATE EXTENSION needs privileges); this only checks.
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        op.execute(f"CREATE INDEX {_INDEX} ON devices USING gist ((ST_SetSRID(ST_MakePoint(lon, lat), 4326)))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {_INDEX}")
    op.drop_table("audit_log")
    op.drop_table("devices")
    op.drop_table("gateways")
    op.drop_table("device_models")
