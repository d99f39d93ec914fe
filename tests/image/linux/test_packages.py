"""The packages the image definition requires are installed, the forbidden ones are not."""

from __future__ import annotations


def test_required_package_is_installed(host, required_package):
    assert host.package(required_package).is_installed, (
        f"required package {required_package!r} is not installed "
        "(image definition: test.required_packages)"
    )


def test_forbidden_package_is_absent(host, forbidden_package):
    assert not host.package(forbidden_package).is_installed, (
        f"forbidden package {forbidden_package!r} is installed "
        "(image definition: test.forbidden_packages)"
    )
