"""Device specs ``MODEL@[TRANSPORT:]ADDRESS[/UNIT]``: good ones parse, bad ones say what is wrong."""

from __future__ import annotations

import pytest

from misto.sim.errors import SpecError
from misto.sim.spec import DeviceSpec, SpecTransport, parse_device_spec, parse_device_specs

PTY, RTU_TCP, SERIAL = SpecTransport.PTY, SpecTransport.RTU_TCP, SpecTransport.SERIAL


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("aq1@127.0.0.1:5020", DeviceSpec("aq1", "127.0.0.1", 5020, 1)),
        ("nm1@localhost:1502/17", DeviceSpec("nm1", "localhost", 1502, 17)),
        ("aq1@[::1]:5020/2", DeviceSpec("aq1", "::1", 5020, 2)),
        ("aq1@0.0.0.0:0", DeviceSpec("aq1", "0.0.0.0", 0, 1)),
        ("aq1@tcp:127.0.0.1:5020", DeviceSpec("aq1", "127.0.0.1", 5020, 1)),
        ("tc1@rtu-tcp:127.0.0.1:5030/3", DeviceSpec("tc1", "127.0.0.1", 5030, 3, RTU_TCP)),
        ("wb1@pty:/tmp/misto/bus0/4", DeviceSpec("wb1", "", 0, 4, PTY, "/tmp/misto/bus0")),
        ("wb1@pty:/tmp/misto/bus0", DeviceSpec("wb1", "", 0, 1, PTY, "/tmp/misto/bus0")),
        ("pb1@serial:/dev/ttyUSB0/12", DeviceSpec("pb1", "", 0, 12, SERIAL, "/dev/ttyUSB0")),
    ],
)
def test_good_specs(text: str, spec: DeviceSpec) -> None:
    assert parse_device_spec(text) == spec
    assert parse_device_spec(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("aq1", "expected MODEL@[TRANSPORT:]ADDRESS[/UNIT]"),
        ("aq1@127.0.0.1", "expected HOST:PORT for tcp, not '127.0.0.1'"),
        ("aq1@127.0.0.1:port", "expected HOST:PORT for tcp"),
        ("aq1@127.0.0.1:5020/", "expected HOST:PORT for tcp, not '127.0.0.1:5020/'"),
        ("aq1@::1:5020", "expected HOST:PORT for tcp"),
        ("tc1@pty:tmp/bus", "a pty address is an absolute path, not 'tmp/bus'"),
        ("tc1@rtu-tcp:/tmp/bus", "expected HOST:PORT for rtu-tcp"),
        ("aq9@127.0.0.1:5020", "unknown model 'aq9'; known models: aq1, nm1, pb1, tb1, tc1, wb1"),
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
    assert "expected MODEL@[TRANSPORT:]ADDRESS[/UNIT]" in messages[1]
    assert "'nm1@h:5020/1'" in messages[2]
    assert "unit 1 on h:5020 is already aq1@h:5020/1" in messages[2]


def test_several_units_may_share_a_port_and_port_zero_never_conflicts() -> None:
    specs = parse_device_specs(["aq1@h:5020/1", "nm1@h:5020/2", "aq1@h:0", "nm1@h:0"])
    assert [s.unit for s in specs] == [1, 2, 1, 1]


def test_units_share_a_serial_line_but_not_a_unit_or_two_transports() -> None:
    specs = parse_device_specs(["tc1@pty:/tmp/b/1", "wb1@pty:/tmp/b/2", "pb1@rtu-tcp:h:5030/1", "aq1@h:5031"])
    assert [s.endpoint for s in specs] == ["pty:/tmp/b", "pty:/tmp/b", "rtu-tcp:h:5030", "h:5031"]
    with pytest.raises(ExceptionGroup) as caught:
        parse_device_specs(["tc1@pty:/tmp/b/1", "wb1@pty:/tmp/b/1", "aq1@h:5030", "nm1@rtu-tcp:h:5030/2"])
    assert [str(e) for e in caught.value.exceptions] == [
        "device spec 'wb1@pty:/tmp/b/1': unit 1 on /tmp/b is already tc1@pty:/tmp/b/1",
        "device spec 'nm1@rtu-tcp:h:5030/2': h:5030 is already served over tcp by aq1@h:5030/1",
    ]
