"""docker-compose.yml is valid against the Compose Specification (no Docker engine here) and
keeps the promises the docs make about it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = re.compile(r"^\s*-?\s*[\w-]*(?:PASSWORD|TOKEN|password|token)[\w-]*\s*[:=](?P<value>.*)$")
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def test_compose_file_is_valid() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(_compose())


def test_every_service_has_an_image_or_build_and_a_healthcheck() -> None:
    for name, service in _compose()["services"].items():
        assert "image" in service or "build" in service, name
        assert "healthcheck" in service, f"{name} has no healthcheck"


def test_no_secret_values_in_the_compose_file() -> None:
    """Secrets come from files (compose secrets); a key naming a password or token holds a path or nothing."""
    for line in (ROOT / "docker-compose.yml").read_text(encoding="utf-8").splitlines():
        match = SECRET_KEY.match(line)
        if match and match["value"].strip():
            assert match["value"].strip().startswith(("/run/secrets/", "./secrets/")), line


def test_broker_is_not_anonymous() -> None:
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    assert "allow_anonymous false" in conf
    assert "max_queued_messages 0" in conf
