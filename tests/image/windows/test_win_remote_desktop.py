"""Remote Desktop is available and requires Network Level Authentication."""

from __future__ import annotations

from winchecks import check_rdp_enabled, check_rdp_requires_nla


def test_remote_desktop_is_enabled(rdp):
    verdict = check_rdp_enabled(rdp)
    assert verdict.ok, verdict.detail


def test_remote_desktop_requires_nla(rdp):
    verdict = check_rdp_requires_nla(rdp)
    assert verdict.ok, verdict.detail
