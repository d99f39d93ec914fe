"""Fixtures of the Windows image suite: each reads one aspect of the VM once per module."""

from __future__ import annotations

import pytest
import winchecks


@pytest.fixture(scope="module")
def marker(host):
    return winchecks.read_marker(host)


@pytest.fixture(scope="module")
def winrm(host):
    return winchecks.read_winrm(host)


@pytest.fixture(scope="module")
def firewall_profiles(host):
    return winchecks.read_firewall_profiles(host)


@pytest.fixture(scope="module")
def rdp(host):
    return winchecks.read_rdp(host)


@pytest.fixture(scope="module")
def defender(host):
    return winchecks.read_defender(host)
