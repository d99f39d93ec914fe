"""Windows Firewall is on in every profile."""

from __future__ import annotations

import pytest
from winchecks import FIREWALL_PROFILES, check_firewall_profile


@pytest.mark.parametrize("profile", FIREWALL_PROFILES)
def test_firewall_profile_is_on(firewall_profiles, profile):
    verdict = check_firewall_profile(firewall_profiles, profile)
    assert verdict.ok, verdict.detail
