"""Nothing of the build is left: Packer files, histories, unattend files; sysprep completed."""

from __future__ import annotations

from winchecks import check_no_leftovers, check_sysprep_complete, read_image_state, read_leftovers


def test_no_packer_or_build_files(host):
    verdict = check_no_leftovers(read_leftovers(host))
    assert verdict.ok, verdict.detail


def test_image_was_generalized_with_sysprep(host):
    verdict = check_sysprep_complete(read_image_state(host))
    assert verdict.ok, verdict.detail
