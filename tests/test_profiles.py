"""The agent's built-in profiles and the simulator's device models are one register map each:
every row the same address, type, byte and word order, scale, unit and subdevice, every text
attribute the same place; so a profile can never drift from the device it reads."""

from __future__ import annotations

from typing import Any

import pytest

from misto.edge.registers.profiles import builtin_profiles
from misto.edge.registers.spec import DataType
from misto.sim.devices import MODELS

SHARED = sorted(set(builtin_profiles()) & set(MODELS))


def test_every_field_model_has_a_profile() -> None:
    assert set(MODELS) - set(builtin_profiles()) == {"tb1"}  # the test bench is read with inline maps
    assert SHARED == ["aq1", "nm1", "pb1", "tc1", "wb1"]


@pytest.mark.parametrize("name", SHARED)
def test_profile_rows_are_the_model_rows(name: str) -> None:
    profile, model = builtin_profiles()[name], MODELS[name]
    assert profile.description == model.title
    rows = [
        (s.key, str(s.table), s.address, str(s.type), s.words, s.bit, s.scale, s.unit, *_orders(s.words, s))
        for s in profile.specs()
        if not s.attribute
    ]
    expected = [
        (r.key, str(r.table), r.address, str(r.type), r.words, r.bit, r.scale, r.unit, *_orders(r.words, r))
        for r in model.registers
    ]
    assert rows == expected


def _orders(words: int, row: Any) -> tuple[str | None, str]:
    """Word order (only meaningful for values of several registers) and byte order."""
    return (str(row.word_order) if words > 1 else None), str(row.byte_order)


@pytest.mark.parametrize("name", SHARED)
def test_profile_attributes_are_the_model_texts(name: str) -> None:
    texts = [(s.metric, s.address, s.words) for s in builtin_profiles()[name].specs() if s.attribute]
    assert all(s.type is DataType.STRING for s in builtin_profiles()[name].specs() if s.attribute)
    assert texts == [(t.name, t.address, t.words) for t in MODELS[name].identity]
