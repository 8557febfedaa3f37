"""Modbus drivers. This package is the only place in ``misto.edge`` that imports pymodbus."""
