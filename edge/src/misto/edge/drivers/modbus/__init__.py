"""Modbus drivers. This package is the only place in ``misto.edge`` that imports pymodbus
(in :mod:`.client`): ``modbus_tcp``, ``modbus_rtu`` (serial RS-485) and ``modbus_rtu_tcp``
(RTU frames through a serial-to-TCP converter), all built on :class:`.driver.ModbusDriver`."""
