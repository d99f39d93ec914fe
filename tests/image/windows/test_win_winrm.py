"""WinRM listens on HTTPS only, refuses unencrypted traffic, and the build's certificate is gone."""

from __future__ import annotations

import pytest
from winchecks import (
    check_build_winrm_certificate_gone,
    check_winrm_https_listener,
    check_winrm_no_http_listener,
    check_winrm_unencrypted_refused,
)


@pytest.mark.smoke
def test_winrm_has_an_https_listener(winrm):
    verdict = check_winrm_https_listener(winrm)
    assert verdict.ok, verdict.detail


def test_winrm_has_no_http_listener(winrm):
    verdict = check_winrm_no_http_listener(winrm)
    assert verdict.ok, verdict.detail


def test_winrm_refuses_unencrypted_traffic(winrm):
    verdict = check_winrm_unencrypted_refused(winrm)
    assert verdict.ok, verdict.detail


def test_the_build_winrm_certificate_is_gone(winrm):
    verdict = check_build_winrm_certificate_gone(winrm)
    assert verdict.ok, verdict.detail
