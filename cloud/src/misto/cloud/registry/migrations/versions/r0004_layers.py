"""Geospatial layers' features and their imports; on PostgreSQL a PostGIS GiST index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)
_INDEX = "ix_layer_features_geom_gist"


def upgrade() -> None:
    op.create_table(
        "layer_features",
        sa.Column("layer", sa.String(32), nullable=False),
        sa.Column("feature_id", sa.String(64), nullable=False),
        sa.Column("geometry_type", sa.String(16), nullable=False),
        sa.Column("geometry", sa.Text, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("west", sa.Double, nullable=False),
        sa.Column("south", sa.Double, nullable=False),
        sa.Column("east", sa.Double, nullable=False),
        sa.Column("north", sa.Double, nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("layer", "feature_id", name="pk_layer_features"),
        sa.CheckConstraint("west <= east AND south <= north", name="ck_layer_features_bbox_order"),
    )
    op.create_index("ix_layer_features_layer_south_north", "layer_features", ["layer", "south", "north"])
    op.create_table(
        "layer_imports",
        sa.Column("layer", sa.String(32), nullable=False),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("source", sa.String(500), nullable=True),
        sa.Column("source_crs", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("feature_count", sa.Integer, nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("layer", name="pk_layer_imports"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # On the very expression the layer queries use (tables.POSTGIS_FEATURE_EXPRESSION).
        op.execute(
            f"CREATE INDEX {_INDEX} ON layer_features USING gist ((ST_SetSRID(ST_GeomFromGeoJSON(geometry), 4326)))"
        )


def downgrade() -> None:
    op.drop_table("layer_imports")
    op.drop_table("layer_features")
