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

ROLES_SQL = "role IN ('admin', 'operator', 'technician', 'partner', 'citizen')"  # misto.cloud.auth.roles.Role

users = sa.Table(  # people, who sign in with a password (misto.cloud.auth.store)
    "users",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),  # Argon2id ($argon2id$...); never shown
    sa.Column("password_changed_at", _TS, nullable=False),  # tokens issued before it are refused
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("last_login_at", _TS, nullable=True),
    *_record_columns(),
    sa.CheckConstraint(ROLES_SQL, name="role_known"),
)

api_keys = sa.Table(  # machines' keys ``mst_<id>_<secret>``: only the secret's SHA-256 is kept
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # the public part of the key, names it in logs
    sa.Column("secret_hash", sa.String(64), nullable=False),  # hex SHA-256 of the secret part
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("organisation", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("rate_limit", sa.Integer, nullable=False),  # requests per minute
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("revoked_at", _TS, nullable=True),
    sa.CheckConstraint(ROLES_SQL, name="role_known"),
    sa.CheckConstraint("rate_limit >= 1", name="rate_limit_positive"),
    sa.Index(None, "organisation"),
)

# --- layers: geospatial features (misto.cloud.registry.layers) ---
# A feature's geometry is kept as GeoJSON text (WGS 84) with its bounding box in four columns, the
# cheap prefilter on SQLite. On PostgreSQL the migration adds a GiST index on the PostGIS geometry
# parsed from that text (POSTGIS_FEATURE_EXPRESSION), which the layer queries use; like the devices'
# index it exists only in the migration and is left out of schema comparisons. (An index, not a
# generated geometry column: SQLAlchemy does not know PostGIS types and warns when it reflects one.)

POSTGIS_FEATURE_INDEX = "ix_layer_features_geom_gist"
POSTGIS_FEATURE_EXPRESSION = "ST_SetSRID(ST_GeomFromGeoJSON(layer_features.geometry), 4326)"
_FOREIGN_TO_US = _FOREIGN_TO_US | {POSTGIS_FEATURE_INDEX}

layer_features = sa.Table(
    "layer_features",
    metadata,
    sa.Column("layer", sa.String(32), primary_key=True),
    sa.Column("feature_id", sa.String(64), primary_key=True),
    sa.Column("geometry_type", sa.String(16), nullable=False),
    sa.Column("geometry", sa.Text, nullable=False),  # GeoJSON geometry object, WGS 84
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("west", sa.Double, nullable=False),
    sa.Column("south", sa.Double, nullable=False),
    sa.Column("east", sa.Double, nullable=False),
    sa.Column("north", sa.Double, nullable=False),
    sa.Column("imported_at", _TS, nullable=False),
    sa.CheckConstraint("west <= east AND south <= north", name="bbox_order"),
    sa.Index(None, "layer", "south", "north"),  # the bounding-box prefilter on SQLite
)

layer_imports = sa.Table(  # the last import of each layer; every import is also in audit_log
    "layer_imports",
    metadata,
    sa.Column("layer", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(500), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("source", sa.String(500), nullable=True),
    sa.Column("source_crs", sa.String(64), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("feature_count", sa.Integer, nullable=False),
    sa.Column("imported_at", _TS, nullable=False),
    sa.Column("imported_by", sa.String(200), nullable=False),
)

# --- provisioning: one-time gateway tokens (misto.cloud.registry.provisioning) ---

provisioning_tokens = sa.Table(  # one-time gateway provisioning tokens; only the token's SHA-256 is kept
    "provisioning_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # shown to operators, to name a token (not secret)
    sa.Column("gateway_id", sa.String(63), sa.ForeignKey("gateways.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),  # hex SHA-256 of the token
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("expires_at", _TS, nullable=False),
    sa.Column("used_at", _TS, nullable=True),
    sa.Column("revoked_at", _TS, nullable=True),
    sa.CheckConstraint("used_at IS NULL OR revoked_at IS NULL", name="used_or_revoked"),
    sa.UniqueConstraint("token_hash"),
    sa.Index(None, "gateway_id"),
)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: leave out what PostGIS owns and the PostGIS-only index."""
    return name not in _FOREIGN_TO_US
