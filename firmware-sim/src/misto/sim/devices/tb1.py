"""Misto TB-1 Modbus test bench: not a sensor, a device for testing Modbus masters (the edge
agent's decoder and encoder). It holds known constant values in every data type and every byte
and word order, writable set points in holding registers and coils, discrete inputs and text.

Rows are named ``<type>-<order>/<metric>``: the subdevice names the encoding, the metric (from
the vocabulary, so a reading of it can be sent) has a range that holds the value. Orders are
written by the byte layout of the value ``ABCD...`` with ``A`` its most significant byte:
``abcd`` (word big, byte big), ``cdab`` (word little, byte big), ``badc`` (word big, byte
little), ``dcba`` (word little, byte little).
"""

from __future__ import annotations

from misto.sim.devices.model import DeviceModel, RegisterTable, RegisterType, SimRegister, SimText, WordOrder
from misto.sim.signals import Constant

BIG, LITTLE = WordOrder.BIG, WordOrder.LITTLE
INPUT, HOLDING = RegisterTable.INPUT, RegisterTable.HOLDING
ORDERS = {"abcd": (BIG, BIG), "cdab": (LITTLE, BIG), "badc": (BIG, LITTLE), "dcba": (LITTLE, LITTLE)}
#: type -> (offset in an order block, metric, unit, scale, value)
WIDE = {
    RegisterType.UINT32: (0, "availableSpotNumber", "1", 0.1, 70000.5),
    RegisterType.INT32: (2, "rssi", "dBm", 0.001, -98.765),
    RegisterType.FLOAT32: (4, "atmosphericPressure", "hPa", 1.0, 1013.25),
    RegisterType.UINT64: (6, "availableSpotNumber", "1", 1e-8, 12345.67890123),
    RegisterType.INT64: (10, "temperature", "Cel", 1e-12, -40.5),
    RegisterType.FLOAT64: (14, "no2", "ug/m3", 1.0, 123.456789012345),
}
ORDER_BLOCKS = {"abcd": 10, "cdab": 30, "badc": 50, "dcba": 70}


def _row(  # noqa: PLR0917 - one argument per column of the map
    subdevice: str,
    metric: str,
    unit: str,
    table: RegisterTable,
    address: int,
    kind: RegisterType,
    value: float,
    *,
    scale: float = 1.0,
    word_order: WordOrder = BIG,
    byte_order: WordOrder = BIG,
    bit: int | None = None,
    writable: bool = False,
) -> SimRegister:
    return SimRegister(
        metric=metric,
        unit=unit,
        table=table,
        address=address,
        type=kind,
        scale=scale,
        word_order=word_order,
        byte_order=byte_order,
        bit=bit,
        subdevice=subdevice,
        writable=writable,
        signal=Constant(level=value),
    )


def _fixed() -> list[SimRegister]:
    rows = [
        _row("uint16-ab", "intensity", "1/h", INPUT, 0, RegisterType.UINT16, 1234),
        _row("int16-ab", "temperature", "Cel", INPUT, 1, RegisterType.INT16, -12.34, scale=0.01),
        _row("uint16-ba", "intensity", "1/h", INPUT, 2, RegisterType.UINT16, 4660, byte_order=LITTLE),
        _row("int16-ba", "temperature", "Cel", INPUT, 3, RegisterType.INT16, -5.5, scale=0.1, byte_order=LITTLE),
    ]
    for order, (words, bytes_) in ORDERS.items():
        for kind, (offset, metric, unit, scale, value) in WIDE.items():
            address = ORDER_BLOCKS[order] + offset
            rows.append(
                _row(
                    f"{kind}-{order}",
                    metric,
                    unit,
                    INPUT,
                    address,
                    kind,
                    value,
                    scale=scale,
                    word_order=words,
                    byte_order=bytes_,
                )
            )
    rows += [
        _row(f"bit{bit}", "occupied", "1", INPUT, 90, RegisterType.BIT, level, bit=bit)
        for bit, level in ((0, 1), (5, 0), (8, 1), (15, 1))
    ]
    rows += [
        _row(f"din{n}", "occupied", "1", RegisterTable.DISCRETE_INPUT, n, RegisterType.BIT, level)
        for n, level in enumerate((0, 1, 1, 0))
    ]
    return rows


def _set_points() -> list[SimRegister]:
    return [
        _row("sp-float32-abcd", "temperature", "Cel", HOLDING, 0, RegisterType.FLOAT32, 21.5, writable=True),
        _row(
            "sp-float32-cdab",
            "temperature",
            "Cel",
            HOLDING,
            2,
            RegisterType.FLOAT32,
            18.25,
            word_order=LITTLE,
            writable=True,
        ),
        _row("sp-int16", "temperature", "Cel", HOLDING, 4, RegisterType.INT16, -3.5, scale=0.1, writable=True),
        _row(
            "sp-uint32-cdab",
            "intensity",
            "1/h",
            HOLDING,
            5,
            RegisterType.UINT32,
            12000,
            word_order=LITTLE,
            writable=True,
        ),
        _row("relay0", "occupied", "1", HOLDING, 8, RegisterType.BIT, 0, bit=0, writable=True),
        _row("relay3", "occupied", "1", HOLDING, 8, RegisterType.BIT, 1, bit=3, writable=True),
        _row(
            "sp-float64-dcba",
            "no2",
            "ug/m3",
            HOLDING,
            10,
            RegisterType.FLOAT64,
            55.5,
            word_order=LITTLE,
            byte_order=LITTLE,
            writable=True,
        ),
        _row(
            "sp-int64-badc",
            "temperature",
            "Cel",
            HOLDING,
            14,
            RegisterType.INT64,
            -7.25,
            scale=1e-9,
            byte_order=LITTLE,
            writable=True,
        ),
        *(
            _row(f"coil{n}", "occupied", "1", RegisterTable.COIL, n, RegisterType.BIT, level, writable=True)
            for n, level in enumerate((1, 0, 1, 0))
        ),
    ]


TB1 = DeviceModel(
    id="tb1",
    title="Misto TB-1 Modbus test bench",
    registers=(*_fixed(), *_set_points()),
    identity=(
        SimText(name="model", address=256, words=8, text="MISTO TB-1"),
        SimText(name="serialNumber", address=264, words=8, text="TB1-000001"),
    ),
)
