"""Shared options and fixtures of the image suites (tests/image/linux, tests/image/windows).

The suites never name their hosts: ``imageforge.verify`` runs them with ``--hosts`` and passes
the context of the run through the options below. They can also be run by hand:

    pytest tests/image/linux --hosts=ssh://azureuser@10.0.0.4 \\
        --imageforge-image images/debian-12.pkrvars.hcl --imageforge-version 1.4.0 \\
        --imageforge-admin-user azureuser

Secrets: a WinRM password is never part of a host spec. It is read from the environment
variable IMAGEFORGE_WINRM_PASSWORD and handed to Testinfra's WinRM backend here, so it appears
on no command line and in no log or report.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from imageforge.config import ImageDefinition, load_image_file
from imageforge.errors import ImageforgeError
from imageforge.hostspec import WINRM_CA_ENV, WINRM_PASSWORD_ENV  # the password's variable, the CA


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("imageforge", "imageforge image suite")
    group.addoption(
        "--imageforge-image",
        metavar="PATH",
        default=None,
        help="the image definition file (images/<name>.pkrvars.hcl) of the image under test",
    )
    group.addoption(
        "--imageforge-version",
        metavar="X.Y.Z",
        default=None,
        help="the gallery image version under test",
    )
    group.addoption(
        "--imageforge-admin-user",
        metavar="NAME",
        default=None,
        help="the admin user the test VM was deployed with",
    )


@functools.cache
def _load(path: str) -> ImageDefinition:
    try:
        return load_image_file(Path(path))
    except ImageforgeError as err:
        raise pytest.UsageError(f"--imageforge-image: {err}") from None
    except OSError as err:
        raise pytest.UsageError(f"--imageforge-image: cannot read {path}: {err}") from None


def definition_from(config: pytest.Config) -> ImageDefinition | None:
    """The image definition named by --imageforge-image, or None when the option is absent."""
    path = config.getoption("--imageforge-image")
    return _load(path) if path else None


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, not in pyproject.toml: the suite runs wherever imageforge.verify runs it
    # (with --strict-markers), and the marker belongs to the suite.
    config.addinivalue_line(
        "markers",
        "smoke: the short check of a replica in another region (boot, admin login, the image "
        "marker, the agent): `invoke smoke-test`, and the build after replication",
    )
    config.addinivalue_line(
        "markers",
        "generalized: a check that holds only for a generalized image (os_state Generalized); "
        "a Specialized image's suite does not collect it",
    )
    config.addinivalue_line(
        "markers",
        "specialized: a check that holds only for a Specialized image; a generalized image's "
        "suite does not collect it",
    )
    # Load the definition once at start-up, so a wrong file is a usage error (exit 4) before
    # anything connects to the host.
    definition_from(config)


#: Test arguments parametrized from the image definition's `test` block: one test per value,
#: so one missing package does not hide the next. Empty lists give a skipped test.
DEFINITION_PARAMETERS = {
    "required_package": "required_packages",
    "forbidden_package": "forbidden_packages",
    "required_feature": "required_features",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = definition_from(metafunc.config)
    for argname, attribute in DEFINITION_PARAMETERS.items():
        if argname in metafunc.fixturenames:
            values = list(getattr(definition.test, attribute)) if definition else []
            metafunc.parametrize(argname, values, ids=values)
    if "sysctl_setting" in metafunc.fixturenames:
        # test.sysctl: one test per kernel parameter, (name, value) pairs; an image without
        # any has no such test at all (pytest_collection_modifyitems), rather than a skip
        settings = list(definition.test.sysctl) if definition else []
        metafunc.parametrize("sysctl_setting", settings, ids=[name for name, _ in settings])


def _not_for(definition: ImageDefinition | None, item: pytest.Item) -> bool:
    """Whether ``item`` does not apply to the image: a sysctl check of an image without any, a
    ``generalized`` check of a Specialized image or a ``specialized`` one of a generalized
    image (without --imageforge-image: the sysctl checks are not collected, all others are)."""
    if "sysctl_setting" in getattr(item, "fixturenames", ()):
        return definition is None or not definition.test.sysctl
    if definition is None:
        return False
    other = "generalized" if definition.specialized else "specialized"
    return item.get_closest_marker(other) is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    definition = definition_from(config)
    unused = [i for i in items if _not_for(definition, i)]
    if unused:
        config.hook.pytest_deselected(items=unused)
        items[:] = [i for i in items if i not in unused]


@pytest.fixture(scope="session")
def image_definition(request: pytest.FixtureRequest) -> ImageDefinition:
    """The image definition under test (skips the test when --imageforge-image is not given)."""
    definition = definition_from(request.config)
    if definition is None:
        pytest.skip("no --imageforge-image given: the image definition is unknown")
    return definition


@pytest.fixture(scope="session")
def expected_version(request: pytest.FixtureRequest) -> str:
    """The version under test (skips the test when --imageforge-version is not given)."""
    version = request.config.getoption("--imageforge-version")
    if not version:
        pytest.skip("no --imageforge-version given: the version under test is unknown")
    return str(version)


@pytest.fixture(scope="session")
def admin_user(request: pytest.FixtureRequest) -> str:
    """The admin user of the test VM (skips the test when --imageforge-admin-user is not given)."""
    user = request.config.getoption("--imageforge-admin-user")
    if not user:
        pytest.skip("no --imageforge-admin-user given: the deployed admin user is unknown")
    return str(user)


@pytest.fixture(scope="module")
def host(_testinfra_host):
    """Testinfra's host, with the WinRM password taken from the environment when needed."""
    backend = _testinfra_host.backend
    conn_args = getattr(backend, "conn_args", None)
    if backend.get_connection_type() == "winrm" and conn_args is not None:
        if not conn_args.get("password"):
            password = os.environ.get(WINRM_PASSWORD_ENV)
            if not password:
                pytest.fail(
                    f"WinRM needs a password: set {WINRM_PASSWORD_ENV} "
                    "(it is never taken from the host spec)",
                    pytrace=False,
                )
            conn_args["password"] = password
        pinned = os.environ.get(WINRM_CA_ENV)
        if pinned:
            conn_args["server_cert_validation"] = "validate"
            conn_args["ca_trust_path"] = pinned
    return _testinfra_host


@pytest.fixture(scope="module", autouse=True)
def host_is_reachable(host):
    """Connect once before a module's checks: an unreachable host makes every test an error
    (the runner then reports "could not run", exit 2) instead of a list of failed checks."""
    try:
        host.run("echo imageforge")
    except Exception as err:  # noqa: BLE001 - whatever the backend raises means unreachable
        pytest.fail(
            f"cannot reach {host.backend.get_pytest_id()}: {type(err).__name__}: {err}",
            pytrace=False,
        )
