"""VM addresses: unique per sandbox, and never one another sandbox's VM already answers on."""

from __future__ import annotations

import socket

from imageforge.sandbox.backend import SANDBOX_SSH_PORT, InertBackend
from imageforge.sandbox.emulator.config import EmulatorConfig
from imageforge.sandbox.emulator.context import Emulator


def emulator(state_dir) -> Emulator:
    state_dir.mkdir(parents=True, exist_ok=True)
    return Emulator(EmulatorConfig(state_dir=state_dir), InertBackend())


def test_one_sandbox_never_hands_out_an_address_twice(tmp_path):
    em = emulator(tmp_path / "a")
    addresses = [em.allocate_address() for _ in range(300)]
    assert len(set(addresses)) == 300
    assert all(a.startswith("127.") for a in addresses)


def test_two_sandboxes_on_one_host_hand_out_different_addresses(tmp_path):
    first = {emulator(tmp_path / "a").allocate_address() for _ in range(20)}
    second = {emulator(tmp_path / "b").allocate_address() for _ in range(20)}
    assert not first & second


def test_an_address_where_something_already_listens_on_the_ssh_port_is_skipped(tmp_path):
    state = tmp_path / "c"
    probe = emulator(state)
    taken = probe.allocate_address()
    probe.store.close()
    # a fresh sandbox with the same state dir name would start at the same address
    other = tmp_path / "elsewhere"
    state.rename(other)
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((taken, SANDBOX_SSH_PORT))
        listener.listen()
        assert emulator(state).allocate_address() != taken
