"""imageforge.owner against this machine's real /proc: a run is provably dead only when it is."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from imageforge import owner


@pytest.fixture
def me() -> owner.Owner:
    here = owner.current()
    if here is None:  # pragma: no cover - every Linux machine this project runs on has them
        pytest.fail("this machine has no /etc/machine-id or /proc boot id")
    return here


def test_the_tag_round_trips(me):
    assert owner.Owner.parse(me.tag()) == me
    assert me.pid == os.getpid()


def test_a_running_process_is_not_dead_and_a_killed_one_is(me):
    child = subprocess.Popen(["sleep", "30"])
    try:
        tag = dataclasses.replace(me, pid=child.pid, start=owner._start_ticks(child.pid)).tag()
        assert not owner.provably_dead(tag, me)
    finally:
        child.kill()
        child.wait()
    assert owner.provably_dead(tag, me)


def test_a_reused_process_id_is_not_the_owner(me):
    assert not owner.provably_dead(me.tag(), me)
    other_start = str(int(me.start) + 1)
    assert owner.provably_dead(dataclasses.replace(me, start=other_start).tag(), me)


def test_another_boot_of_this_machine_is_dead_another_machine_proves_nothing(me):
    assert owner.provably_dead(dataclasses.replace(me, boot="0" * 32).tag(), me)
    assert not owner.provably_dead(dataclasses.replace(me, machine="f" * 32, pid=1).tag(), me)


@pytest.mark.parametrize("value", ["", "garbage", "a:b:c", "a:b:notapid:5", "a:b:12:"])
def test_an_unreadable_tag_proves_nothing(me, value):
    assert not owner.provably_dead(value, me)
