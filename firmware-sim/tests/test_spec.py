"""Device specs ``MODEL@HOST:PORT[/UNIT]``: good ones parse, bad ones say what is wrong."""

from __future__ import annotations

import pytest

from misto.sim.errors import SpecError
from misto.sim.spec import DeviceSpec, parse_device_spec, parse_device_specs


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("aq1@127.0.0.1:5020", DeviceSpec("aq1", "127.0.0.1", 5020, 1)),
        ("nm1@localhost:1502/17", DeviceSpec("nm1", "localhost", 1502, 17)),
        ("aq1@[::1]:5020/2", DeviceSpec("aq1", "::1", 5020, 2)),
        ("aq1@0.0.0.0:0", DeviceSpec("aq1", "0.0.0.0", 0, 1)),
    ],
)
def test_good_specs(text: str, spec: DeviceSpec) -> None:
    assert parse_device_spec(text) == spec
    assert parse_device_spec(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("aq1", "expected MODEL@HOST:PORT[/UNIT]"),
        ("aq1@127.0.0.1", "expected MODEL@HOST:PORT[/UNIT]"),
        ("aq1@127.0.0.1:port", "expected MODEL@HOST:PORT[/UNIT]"),
        ("aq1@127.0.0.1:5020/", "expected MODEL@HOST:PORT[/UNIT]"),
        ("aq1@::1:5020", "expected MODEL@HOST:PORT[/UNIT]"),
        ("aq9@127.0.0.1:5020", "unknown model 'aq9'; known models: aq1, nm1"),
        ("aq1@127.0.0.1:70000", "port 70000 is not in 0..65535"),
        ("aq1@127.0.0.1:5020/0", "unit 0 is not in 1..247"),
        ("aq1@127.0.0.1:5020/248", "unit 248 is not in 1..247"),
    ],
)
def test_bad_specs(text: str, reason: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_device_spec(text)
    assert caught.value.spec == text
    assert reason in caught.value.reason
    assert text in str(caught.value)


def test_all_bad_specs_are_reported_at_once() -> None:
    with pytest.raises(ExceptionGroup) as caught:
        parse_device_specs(["aq9@h:1", "aq1@h:5020", "nm1@h:5020/1", "nm1@h:5020/2", "x"])
    messages = [str(e) for e in caught.value.exceptions]
    assert len(messages) == 3
    assert "unknown model 'aq9'" in messages[0]
    assert "expected MODEL@HOST:PORT[/UNIT]" in messages[1]
    assert "'nm1@h:5020/1'" in messages[2]
    assert "unit 1 on h:5020 is already aq1@h:5020/1" in messages[2]


def test_several_units_may_share_a_port_and_port_zero_never_conflicts() -> None:
    specs = parse_device_specs(["aq1@h:5020/1", "nm1@h:5020/2", "aq1@h:0", "nm1@h:0"])
    assert [s.unit for s in specs] == [1, 2, 1, 1]
