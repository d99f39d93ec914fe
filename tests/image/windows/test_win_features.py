"""The Windows features the image definition requires are installed."""

from __future__ import annotations

from winchecks import check_feature_installed, read_feature


def test_required_feature_is_installed(host, required_feature):
    verdict = check_feature_installed(read_feature(host, required_feature), required_feature)
    assert verdict.ok, verdict.detail
