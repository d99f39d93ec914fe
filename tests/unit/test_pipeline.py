"""pipeline.py pieces that need no Azure and no sandbox."""

from __future__ import annotations

import contextlib
import time

import pytest

from imageforge.errors import AzureError
from imageforge.pipeline import PHASES, Timings, delete_managed_image


class _NoCalls:
    """A session whose clients must not be touched."""

    @property
    def compute(self):
        raise AssertionError("no ARM call was expected")


@pytest.mark.parametrize(
    "artifact",
    [
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/"
        "debian-12/versions/1.0.0",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        "not-an-id",
    ],
)
def test_only_a_managed_image_id_is_deleted_as_the_intermediate_image(artifact):
    with pytest.raises(AzureError, match="is not a managed image id"):
        delete_managed_image(_NoCalls(), artifact)


def test_around_counts_set_up_and_tear_down_but_not_the_body():
    timings = Timings()

    @contextlib.contextmanager
    def slow_manager():
        time.sleep(0.05)
        yield "value"
        time.sleep(0.05)

    with timings.around("build VM", slow_manager()) as value:
        assert value == "value"
        time.sleep(0.3)
    assert 0.09 <= timings.seconds["build VM"] < 0.3


def test_around_runs_the_tear_down_and_reraises_on_error():
    timings = Timings()
    torn_down = []

    @contextlib.contextmanager
    def manager():
        try:
            yield
        finally:
            torn_down.append(True)

    with pytest.raises(KeyboardInterrupt), timings.around("reserve", manager()):
        raise KeyboardInterrupt
    assert torn_down == [True]
    assert "reserve" in timings.seconds


def test_the_timing_table_lists_phases_in_lifecycle_order_with_a_total():
    timings = Timings()
    timings.add("testinfra", 2.0)
    timings.add("render", 1.0)
    lines = timings.table().splitlines()
    assert [ln.split()[0] for ln in lines[1:-1]] == ["render", "testinfra"]
    assert lines[-1].split() == ["total", "3.00"]
    assert list(PHASES).index("render") < list(PHASES).index("testinfra")
