"""Remote config building blocks: which keys the cloud may set, the last good config on disk,
and which devices a new config restarts."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from misto.edge.remote_config import LastGood, RemoteConfigRejected, overlay, plan_changes
from misto.edge.settings import settings_from_data

LOCAL: dict[str, Any] = {
    "gateway_id": "gw-test",
    "broker": {"url": "mqtt://127.0.0.1:1883"},
    "poll_interval": "10s",
    "devices": [
        {"id": "aq-1", "driver": "modbus_tcp", "host": "127.0.0.1", "port": 5020, "profile": "aq1"},
        {"id": "nm-1", "driver": "modbus_tcp", "host": "127.0.0.1", "port": 5021, "profile": "nm1"},
        {"id": "nm-2", "driver": "modbus_tcp", "host": "127.0.0.1", "port": 5022, "profile": "nm1", "poll_interval": 5},
    ],
}


def test_overlay_replaces_only_remote_keys() -> None:
    merged = overlay(LOCAL, {"poll_interval": "2s", "devices": []})
    assert merged["poll_interval"] == "2s"
    assert merged["devices"] == []
    assert merged["broker"] == LOCAL["broker"]
    assert LOCAL["poll_interval"] == "10s"  # the input is not changed


@pytest.mark.parametrize("key", ["broker", "gateway_id", "buffer"])
def test_keys_that_keep_the_gateway_reachable_are_local_only(key: str) -> None:
    with pytest.raises(RemoteConfigRejected, match=f"{key} can only be set in the gateway's local file"):
        overlay(LOCAL, {key: {}, "poll_interval": 1})


def test_plan_changes_restarts_only_what_changed() -> None:
    old = settings_from_data(LOCAL, env={})
    devices = [dict(d) for d in LOCAL["devices"]]
    devices[1]["port"] = 6021  # nm-1 changed
    del devices[0]  # aq-1 removed
    devices.append({"id": "aq-9", "driver": "modbus_tcp", "host": "127.0.0.1", "profile": "aq1"})  # added
    new = settings_from_data({**LOCAL, "poll_interval": "3s", "devices": devices}, env={})
    changes = plan_changes(old, new)
    assert changes.added == ("aq-9",)
    assert changes.removed == ("aq-1",)
    assert changes.changed == ("nm-1",)
    assert changes.unchanged == ("nm-2",)  # has its own poll interval: the new default does not touch it
    assert changes.restarts == {"aq-9", "nm-1"}
    assert changes.summary() == "1 added, 1 removed, 1 changed"


def test_a_new_default_interval_retimes_devices_without_their_own() -> None:
    old = settings_from_data(LOCAL, env={})
    new = settings_from_data({**LOCAL, "poll_interval": "3s"}, env={})
    changes = plan_changes(old, new)
    assert changes.retimed == ("aq-1", "nm-1")
    assert not changes.restarts


def test_last_good_round_trip_is_private_and_atomic(tmp_path: Path) -> None:
    store = LastGood(tmp_path / "state" / "remote-config.json")
    assert store.load() is None
    store.save(3, {"poll_interval": 2})
    store.save(4, {"poll_interval": 5})
    loaded = store.load()
    assert loaded is not None
    assert (loaded.version, loaded.config) == (4, {"poll_interval": 5})
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["remote-config.json"]  # no temp files left


def test_a_damaged_last_good_file_is_moved_aside_not_trusted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = LastGood(tmp_path / "remote-config.json")
    store.path.write_text('{"version": 2, "config": ', encoding="utf-8")
    assert store.load() is None
    assert (tmp_path / "remote-config.json.damaged").exists()
    assert not store.path.exists()
    assert "is damaged" in caplog.text
