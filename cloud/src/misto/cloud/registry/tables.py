"""The registry's tables as SQLAlchemy Core metadata: the same tables on SQLite and PostgreSQL.

Locations are ``lon``/``lat`` double columns on both dialects (WGS 84 degrees, both set or both
empty). On PostgreSQL the migration adds one PostGIS GiST index on the expression
``ST_SetSRID(ST_MakePoint(lon, lat), 4326)`` (:data:`POSTGIS_LOCATION_INDEX`), which the spatial
queries use; it lives only in the migration (metadata cannot express a dialect-only index), so
:func:`include_name` leaves it, and PostGIS's own ``spatial_ref_sys``, out of schema comparisons.

Migrations: :mod:`misto.cloud.registry.migrations`; a test checks this metadata equals the
migrated schema on both dialects.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem

VERSION_TABLE = "registry_alembic_version"
POSTGIS_LOCATION_INDEX = "ix_devices_location_gist"
POSTGIS_LOCATION_EXPRESSION = "ST_SetSRID(ST_MakePoint(lon, lat), 4326)"
_FOREIGN_TO_US = frozenset({"spatial_ref_sys", POSTGIS_LOCATION_INDEX})

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_TS = sa.DateTime(timezone=True)


def _record_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    ]


def _location_columns() -> list[SchemaItem]:
    return [
        sa.Column("lon", sa.Double, nullable=True),
        sa.Column("lat", sa.Double, nullable=True),
        sa.CheckConstraint("(lon IS NULL) = (lat IS NULL)", name="location_complete"),
        sa.CheckConstraint("lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name="location_range"),
    ]


device_models = sa.Table(
    "device_models",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("manufacturer", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("profile", sa.String(64), nullable=True),
    sa.Column("metrics", sa.JSON, nullable=False),
    *_record_columns(),
    sa.Index(None, "kind"),
)

gateways = sa.Table(
    "gateways",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    *_location_columns(),
    sa.Column("district", sa.String(200), nullable=True),
    sa.Column("organisation", sa.String(200), nullable=False),
    sa.Column("owner_contact", sa.String(200), nullable=True),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("notes", sa.Text, nullable=True),
    *_record_columns(),
    sa.Index(None, "district"),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("gateway_id", sa.String(63), sa.ForeignKey("gateways.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("model_id", sa.String(64), sa.ForeignKey("device_models.id", ondelete="RESTRICT"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("install_date", sa.Date, nullable=True),
    *_location_columns(),
    sa.Column("district", sa.String(200), nullable=True),
    sa.Column("organisation", sa.String(200), nullable=False),
    sa.Column("owner_contact", sa.String(200), nullable=True),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("notes", sa.Text, nullable=True),
    *_record_columns(),
    sa.Index(None, "gateway_id"),
    sa.Index(None, "model_id"),
    sa.Index(None, "kind"),
    sa.Index(None, "district"),
    sa.Index(None, "lat", "lon"),  # the bounding-box prefilter on SQLite
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _TS, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
    sa.Index(None, "entity", "entity_id", "seq"),
)


broker_accounts = sa.Table(  # MQTT broker accounts (misto.cloud.registry.credentials)
    "broker_accounts",
    metadata,
    sa.Column("username", sa.String(63), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("gateway_id", sa.String(63), sa.ForeignKey("gateways.id", ondelete="CASCADE"), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=True),  # Mosquitto's $7$ PBKDF2 line; NULL once revoked
    sa.Column("secret_set_at", _TS, nullable=True),
    sa.Column("revoked_at", _TS, nullable=True),
    *_record_columns(),
    sa.CheckConstraint("(role = 'gateway') = (gateway_id IS NOT NULL)", name="gateway_role"),
    sa.CheckConstraint("gateway_id IS NULL OR gateway_id = username", name="gateway_username"),
    sa.CheckConstraint("(revoked_at IS NULL) = (password_hash IS NOT NULL)", name="revoked_no_hash"),
    sa.Index(None, "gateway_id"),
)


# --- auth: people and API keys (misto.cloud.auth) ---

# --- layers: geospatial features (misto.cloud.registry.layers) ---

# --- provisioning: one-time gateway tokens (misto.cloud.registry.provisioning) ---


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: leave out what PostGIS owns and the PostGIS-only index."""
    return name not in _FOREIGN_TO_US
