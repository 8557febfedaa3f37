"""The systemd unit in edge/deploy/: systemd itself accepts it, and it keeps the hardening the install
notes promise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parents[1] / "deploy"
UNIT = DEPLOY / "misto-edge.service"


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_is_hardened_and_never_gives_up() -> None:
    unit = settings()
    expected = {
        "Restart": "always",
        "StartLimitIntervalSec": "0",
        "User": "misto",
        "StateDirectory": "misto",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "DevicePolicy": "closed",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures": "native",
        "MemoryDenyWriteExecute": "yes",
    }
    assert {key: unit.get(key, ["<missing>"])[-1] for key in expected} == expected
    assert "dialout" in unit["SupplementaryGroups"][0]
    assert unit["SystemCallFilter"][0] == "@system-service"
    assert any(value.startswith("char-ttyUSB") for value in unit["DeviceAllow"])
    assert unit["ExecStart"] == ["/opt/misto/bin/misto-edge run /etc/misto/gateway.yaml"]


def test_the_install_notes_name_the_unit_and_its_commands() -> None:
    notes = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "misto-edge.service" in notes
    for command in ("validate", "doctor", "status"):
        assert re.search(rf"misto-edge {command}\b", notes), command


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` with the commands pointed at this checkout's misto-edge."""
    agent = Path(sys.executable).parent / "misto-edge"
    unit = tmp_path / "misto-edge.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/misto/bin/misto-edge", str(agent)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
