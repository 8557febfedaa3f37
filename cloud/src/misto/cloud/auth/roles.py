"""The roles of people and machines that use the API, and who a caller is once authenticated.

Every endpoint declares the roles it admits (:func:`misto.cloud.api.access.allow`) or that it is
public (:data:`misto.cloud.api.access.PUBLIC`); a test tries every endpoint with every role."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # people and API keys, broker accounts, everything an operator does
    OPERATOR = "operator"  # the operations centre: registry, remote control, dead letters, ingest
    TECHNICIAN = "technician"  # field staff: gateways and devices they install, provisioning
    PARTNER = "partner"  # startups, NGOs, universities: open data through API keys, rate-limited
    CITIZEN = "citizen"  # a signed-in resident: public data only


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: ``subject`` names them in audit logs (``user:olena``, ``key:3f9a1c``,
    ``operator`` for the bootstrap operator token)."""

    subject: str
    role: Role
