"""The read planner: as few requests as possible, never over 125 registers, never across tables."""

from __future__ import annotations

import pytest

from misto.edge.registers import DataType, ReadRequest, RegisterSpec, Table, plan_reads
from misto.edge.registers.profiles import builtin_profiles


def reg(address: int, data_type: DataType = DataType.UINT16, table: Table = Table.HOLDING) -> RegisterSpec:
    return RegisterSpec(f"m{table}{address}", table, address, data_type, "1")


def spans(requests: list[ReadRequest]) -> list[tuple[str, int, int]]:
    return [(str(r.table), r.address, r.count) for r in requests]


def test_contiguous_registers_are_one_request() -> None:
    specs = [reg(0), reg(1, DataType.FLOAT32), reg(3, DataType.INT64), reg(7)]
    assert spans(plan_reads(specs)) == [("holding", 0, 8)]


def test_order_of_the_specs_does_not_matter() -> None:
    specs = [reg(7), reg(3, DataType.INT64), reg(0), reg(1, DataType.FLOAT32)]
    assert spans(plan_reads(specs)) == [("holding", 0, 8)]


def test_gaps_split_requests_unless_allowed() -> None:
    specs = [reg(0), reg(3), reg(10)]
    assert spans(plan_reads(specs)) == [("holding", 0, 1), ("holding", 3, 1), ("holding", 10, 1)]
    assert spans(plan_reads(specs, max_gap=2)) == [("holding", 0, 4), ("holding", 10, 1)]
    assert spans(plan_reads(specs, max_gap=6)) == [("holding", 0, 11)]


def test_tables_are_never_mixed() -> None:
    specs = [reg(0, table=Table.INPUT), reg(1), reg(1, table=Table.INPUT), reg(0)]
    assert spans(plan_reads(specs)) == [("holding", 0, 2), ("input", 0, 2)]


def test_requests_stay_within_125_registers() -> None:
    specs = [reg(a) for a in range(300)]
    requests = plan_reads(specs)
    assert spans(requests) == [("holding", 0, 125), ("holding", 125, 125), ("holding", 250, 50)]
    assert sum(len(r.specs) for r in requests) == 300


def test_a_value_is_never_split_across_requests() -> None:
    specs = [reg(a, DataType.FLOAT64) for a in range(0, 200, 4)]  # 4 words each
    requests = plan_reads(specs)
    assert all(r.count <= 125 for r in requests)
    assert spans(requests)[0] == ("holding", 0, 124)
    for request in requests:
        for spec in request.specs:
            assert request.address <= spec.address
            assert spec.end <= request.address + request.count


def test_smaller_device_limit() -> None:
    specs = [reg(a) for a in range(10)]
    assert spans(plan_reads(specs, max_registers=4)) == [("holding", 0, 4), ("holding", 4, 4), ("holding", 8, 2)]


def test_accepts_any_iterable() -> None:
    assert spans(plan_reads(reg(a) for a in (0, 1))) == [("holding", 0, 2)]


def test_registers_of_slices_the_response() -> None:
    specs = [reg(10), reg(11, DataType.UINT32), reg(14)]
    (request,) = plan_reads(specs, max_gap=1)
    response = [100, 101, 102, 103, 104]
    assert [list(request.registers_of(s, response)) for s in request.specs] == [[100], [101, 102], [104]]


def test_builtin_profiles_are_one_request_each() -> None:
    assert spans(plan_reads(builtin_profiles()["aq1"].specs())) == [("input", 0, 12)]
    assert spans(plan_reads(builtin_profiles()["nm1"].specs())) == [("holding", 0, 5)]


@pytest.mark.parametrize(("kwargs", "message"), [({"max_registers": 126}, "1..125"), ({"max_gap": -1}, "negative")])
def test_bad_limits(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_reads([reg(0)], **kwargs)


def test_value_wider_than_the_limit() -> None:
    with pytest.raises(ValueError, match="needs 4 registers"):
        plan_reads([reg(0, DataType.FLOAT64)], max_registers=2)
