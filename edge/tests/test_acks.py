"""Acknowledgements are committed to the buffer in batches: by size, by age, or on demand."""

from __future__ import annotations

import pytest

from misto.edge.uplink.acks import AckBatch


def test_due_by_size_or_age() -> None:
    batch = AckBatch(max_size=3, max_delay=0.5)
    assert batch.due_in(0.0) is None
    batch.add(7, 10.0)
    batch.add(8, 10.2)
    assert batch.due_in(10.2) == pytest.approx(0.3)
    assert batch.due_in(10.6) == 0  # the first acknowledgement is 0.5 s old
    batch.add(9, 10.3)
    assert batch.due_in(10.3) == 0  # full
    assert batch.take() == [7, 8, 9]
    assert (len(batch), batch.due_in(11.0)) == (0, None)
    batch.add(10, 20.0)
    assert batch.due_in(20.1) == pytest.approx(0.4)  # the age counts from the first of the new batch
