"""Microsoft Defender Antivirus runs with real-time protection."""

from __future__ import annotations

from winchecks import check_defender_realtime, check_defender_running


def test_defender_service_is_running(defender):
    verdict = check_defender_running(defender)
    assert verdict.ok, verdict.detail


def test_defender_realtime_protection_is_on(defender):
    verdict = check_defender_realtime(defender)
    assert verdict.ok, verdict.detail
