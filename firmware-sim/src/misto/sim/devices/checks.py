"""The checks a device model passes when it is constructed: every problem, each with its path
(``aq1.registers[2].address: ...``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from misto.protocol.vocabulary import METRICS

if TYPE_CHECKING:
    from misto.sim.devices.model import DeviceModel, SimRegister

SUBDEVICE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def model_problems(model: DeviceModel) -> Iterator[str]:
    if not model.registers:
        yield f"{model.id}.registers: a device needs at least one register"
    seen: dict[str, int] = {}
    for i, reg in enumerate(model.registers):
        where = f"{model.id}.registers[{i}]"
        yield from _register_problems(reg, where)
        if reg.key in seen:
            yield f"{where}.metric: {reg.key!r} is already at registers[{seen[reg.key]}]"
        seen.setdefault(reg.key, i)
    yield from _overlaps(model)
    yield from _identity_problems(model)
    yield from _input_problems(model)


def _register_problems(reg: SimRegister, where: str) -> Iterator[str]:
    from misto.sim.devices.model import MAX_ADDRESS, RegisterType

    metric = METRICS.get(reg.metric)
    if metric is None:
        yield f"{where}.metric: {reg.metric!r} is not in the protocol vocabulary"
    elif reg.unit != metric.unit:
        yield f"{where}.unit: metric {reg.metric!r} is measured in {metric.unit!r}, not {reg.unit!r}"
    if reg.subdevice is not None and not (reg.subdevice and set(reg.subdevice) <= SUBDEVICE_CHARS):
        yield f"{where}.subdevice: {reg.subdevice!r} must be letters, digits, _ or -"
    if not 0 <= reg.address <= MAX_ADDRESS - reg.words + 1:
        yield f"{where}.address: {reg.address} does not leave room for {reg.words} register(s) in 0..{MAX_ADDRESS}"
    if reg.table.is_bits and (reg.type is not RegisterType.BIT or reg.bit is not None):
        yield f"{where}.type: a {reg.table} is a single bit: type bit, without a bit number"
    if not reg.table.is_bits and reg.type is RegisterType.BIT and not (reg.bit is not None and 0 <= reg.bit <= 15):
        yield f"{where}.bit: a bit field of a register needs bit 0..15"
    if reg.type is not RegisterType.BIT and reg.bit is not None:
        yield f"{where}.bit: only for type bit"
    if reg.writable and not reg.table.writable:
        yield f"{where}.writable: {reg.table} cannot be written by a Modbus client"
    if not reg.scale > 0:
        yield f"{where}.scale: must be positive, got {reg.scale}"
    floor, ceiling = reg.signal.floor, reg.signal.ceiling
    if floor > ceiling:
        yield f"{where}.signal: floor {floor} is above ceiling {ceiling}"
    elif reg.scale > 0:
        info = reg.type.info
        low, high = info.minimum * reg.scale, info.maximum * reg.scale
        if floor < low or ceiling > high:
            yield (
                f"{where}.signal: range [{floor:g}, {ceiling:g}] does not fit {reg.type} "
                f"with scale {reg.scale:g} ([{low:g}, {high:g}])"
            )


def _overlaps(model: DeviceModel) -> Iterator[str]:
    from misto.sim.devices.model import RegisterTable

    for table in RegisterTable:
        owner: dict[int, int] = {}
        bits: dict[tuple[int, int], int] = {}
        for i, reg in enumerate(model.registers):
            if reg.table is not table:
                continue
            if reg.bit is not None:  # bit fields share their register with other bit fields only
                other = owner.get(reg.address)
                where = f"{model.id}.registers[{i}]"
                if other is not None and model.registers[other].bit is None:
                    yield f"{where}.address: {table} register {reg.address} is already used by registers[{other}]"
                elif (reg.address, reg.bit) in bits:
                    first = bits[(reg.address, reg.bit)]
                    yield f"{where}.bit: bit {reg.bit} of {table} register {reg.address} is already registers[{first}]"
                owner.setdefault(reg.address, i)
                bits.setdefault((reg.address, reg.bit), i)
                continue
            for address in reg.addresses:
                if address in owner:
                    yield (
                        f"{model.id}.registers[{i}].address: {table} register {address} "
                        f"is already used by registers[{owner[address]}]"
                    )
                    break
                owner[address] = i


def _identity_problems(model: DeviceModel) -> Iterator[str]:
    from misto.sim.devices.model import RegisterTable

    holding = {a for reg in model.registers if reg.table is RegisterTable.HOLDING for a in reg.addresses}
    for i, text in enumerate(model.identity):
        where = f"{model.id}.identity[{i}]"
        if not text.text.isascii() or len(text.text) > 2 * text.words:
            yield f"{where}.text: {text.text!r} must be ASCII and fit {text.words} register(s)"
        if holding & set(text.addresses):
            yield f"{where}.address: holding registers {text.address}-{text.last_address} overlap the register map"
        holding |= set(text.addresses)


def _input_problems(model: DeviceModel) -> Iterator[str]:
    by_key = {reg.key: reg for reg in model.registers}
    for i, reg in enumerate(model.registers):
        for name in reg.signal.inputs:
            if name not in by_key:
                yield f"{model.id}.registers[{i}].signal: computed from {name!r}, which this device does not have"
    # Cycles: follow inputs from each register; a path that returns to its start is a cycle.
    for i, reg in enumerate(model.registers):
        stack: list[tuple[str, tuple[str, ...]]] = [(name, (reg.key,)) for name in reg.signal.inputs]
        while stack:
            name, path = stack.pop()
            if name == reg.key:
                yield f"{model.id}.registers[{i}].signal: inputs form a cycle {' -> '.join((*path, name))}"
                break
            if name in path or name not in by_key:
                continue
            stack.extend((nxt, (*path, name)) for nxt in by_key[name].signal.inputs)
