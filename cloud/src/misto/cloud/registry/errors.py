"""The registry's errors, part of the :mod:`misto.cloud.errors` tree. Each carries its data; the API
maps them to 404 (not found), 409 (exists, stale version, in use), 422 (bad reference or query)
and 503 (unavailable, retryable)."""

from __future__ import annotations

from misto.cloud.errors import CloudError


class RegistryError(CloudError):
    """Base of every registry error."""


class NotFoundError(RegistryError):
    def __init__(self, entity: str, entity_id: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        super().__init__(f"{entity} {entity_id!r} not found")


class AlreadyExistsError(RegistryError):
    def __init__(self, entity: str, entity_id: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        super().__init__(f"id: {entity} {entity_id!r} already exists")


class UnknownReferenceError(RegistryError):
    """A field names a record that does not exist, e.g. ``gateway_id: gateway 'gw-9' not found``."""

    def __init__(self, field: str, entity: str, entity_id: str) -> None:
        self.field = field
        self.entity = entity
        self.entity_id = entity_id
        super().__init__(f"{field}: {entity} {entity_id!r} not found")


class InvalidFieldError(RegistryError):
    """A value that is valid on its own but not together with the registry's records or the other arguments."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class StaleVersionError(RegistryError):
    """An update or delete based on an older version than the stored one (optimistic concurrency)."""

    def __init__(self, entity: str, entity_id: str, expected: int, current: int) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.expected = expected
        self.current = current
        super().__init__(
            f"version: {entity} {entity_id!r} is at version {current}, not {expected}: "
            "it was changed meanwhile; read it again and reapply the change"
        )


class InUseError(RegistryError):
    """A record still referenced by others cannot be deleted."""

    def __init__(self, entity: str, entity_id: str, referenced_by: str, count: int) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.referenced_by = referenced_by
        self.count = count
        super().__init__(f"{entity} {entity_id!r} is still referenced by {count} {referenced_by}(s)")


class RegistryUnavailableError(RegistryError):
    """The database could not be reached or was busy: try again later."""

    retryable = True

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"registry {operation} failed: {reason}")


class RegistrySchemaError(RegistryError):
    """The database could not be migrated to this version's schema (or is newer than it)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"registry schema: {reason}")


class RegistryClosedError(RegistryError):
    def __init__(self, operation: str) -> None:
        self.operation = operation
        super().__init__(f"registry {operation}: the registry is closed")
