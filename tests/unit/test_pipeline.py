"""imageforge.pipeline pieces that need no Azure and no sandbox."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from imageforge import process
from imageforge.errors import AzureError, ConfigError, ValidationError
from imageforge.pipeline import build, parallel, validate
from imageforge.pipeline.context import say
from imageforge.pipeline.hosts import delete_managed_image
from imageforge.pipeline.timings import PHASES, Timings
from imageforge.pipeline.validate import Validation
from imageforge.site import Site

REPO = Path(__file__).resolve().parents[2]


class _NoCalls:
    """A session whose clients must not be touched."""

    @property
    def compute(self):
        raise AssertionError("no ARM call was expected")


@pytest.mark.parametrize(
    "artifact",
    [
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/"
        "debian-12/versions/1.0.0",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        "not-an-id",
    ],
)
def test_only_a_managed_image_id_is_deleted_as_the_intermediate_image(artifact):
    with pytest.raises(AzureError, match="is not a managed image id"):
        delete_managed_image(_NoCalls(), artifact)


def test_around_counts_set_up_and_tear_down_but_not_the_body():
    timings = Timings()

    @contextlib.contextmanager
    def slow_manager():
        time.sleep(0.05)
        yield "value"
        time.sleep(0.05)

    with timings.around("build VM", slow_manager()) as value:
        assert value == "value"
        time.sleep(0.3)
    assert 0.09 <= timings.seconds["build VM"] < 0.3


def test_around_runs_the_tear_down_and_reraises_on_error():
    timings = Timings()
    torn_down = []

    @contextlib.contextmanager
    def manager():
        try:
            yield
        finally:
            torn_down.append(True)

    with pytest.raises(KeyboardInterrupt), timings.around("reserve", manager()):
        raise KeyboardInterrupt
    assert torn_down == [True]
    assert "reserve" in timings.seconds


def test_the_timing_table_lists_phases_in_lifecycle_order_with_a_total():
    timings = Timings()
    timings.add("testinfra", 2.0)
    timings.add("render", 1.0)
    lines = timings.table().splitlines()
    assert [ln.split()[0] for ln in lines[1:-1]] == ["render", "testinfra"]
    assert lines[-1].split() == ["total", "3.00"]
    assert list(PHASES).index("render") < list(PHASES).index("testinfra")


# -- validation in the background ------------------------------------------------------------


def test_validation_runs_in_the_background_until_a_build_waits_for_it(monkeypatch):
    gate = threading.Event()
    validated = []

    def check(site, image, result, packer):
        assert gate.wait(timeout=30), "Validation() waited for the validation it started"
        validated.append((image, result))

    monkeypatch.setattr(validate, "validate_rendered", check)
    validation = Validation(None, ["a", "b"], ["a/", "b/"], None)
    gate.set()  # reached only because constructing it did not wait
    timings = Timings()
    validation.wait(timings)
    assert validated == [("a", "a/"), ("b", "b/")]
    assert "validate" in timings.seconds  # what the build waited for it is its validate phase


def test_a_failed_validation_stops_at_that_image_and_every_wait_raises_it(monkeypatch):
    validated = []

    def check(site, image, result, packer):
        if image == "b":
            raise ValidationError("b: not `packer fmt` clean")
        validated.append(image)

    monkeypatch.setattr(validate, "validate_rendered", check)
    validation = Validation(None, ["a", "b", "c"], ["a/", "b/", "c/"], None)
    for _ in range(2):
        with pytest.raises(ValidationError, match="b: not `packer fmt` clean"):
            validation.wait(Timings())
    assert validated == ["a"]


def test_a_build_raises_the_validation_error_when_no_image_got_as_far_as_packer(
    monkeypatch, tmp_path, no_azure_env
):
    """The image failed before its build waited for validation (here: an ARM error): the
    failed validation still ends the build with its own error, as when it ran first."""

    def check(site, image, result, packer):
        raise ValidationError("packer validate build/debian-12 failed: Error: Unsupported")

    def build_one(site, session, image, **options):
        return build.ImageOutcome(image.name, error="ARM said no")  # never calls validated

    monkeypatch.setattr(validate, "validate_rendered", check)
    monkeypatch.setattr(build, "build_one", build_one)
    monkeypatch.setattr(build, "sandbox_to_start", lambda site: None)
    monkeypatch.setattr(build, "open_session", lambda site, target: object())
    monkeypatch.setattr(build, "prepare_gallery", lambda session, images: None)
    site = Site(root=REPO, build_dir=str(tmp_path / "build"), packer="/bin/true")
    with pytest.raises(ValidationError, match="packer validate build/debian-12 failed"):
        build.build_task(
            site,
            names=["debian-12"],
            os_name="all",
            version=None,
            profile="builtin",
            target="sandbox",
            dry_run=False,
            promote=False,
            on_error=None,
        )


# -- parallel builds ------------------------------------------------------------------------


def test_parallel_workers_default_to_all_and_the_sandbox_to_its_cores(monkeypatch, capsys):
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
    assert parallel.parallel_workers(3, None, "azure") == 3
    assert parallel.parallel_workers(3, "2", "azure") == 2
    assert parallel.parallel_workers(1, None, "azure") == 1
    assert parallel.parallel_workers(3, None, "sandbox") == 2
    out = capsys.readouterr().out
    assert "note: building 2 images at once, not 3: the sandbox runs its VMs and Packer" in out
    for bad in ("0", "-1", "two"):
        with pytest.raises(ConfigError, match="--parallel: .* is not a positive number"):
            parallel.parallel_workers(3, bad, "azure")


def test_builds_run_at_once_and_one_failure_leaves_the_others(capsys):
    """Two builds that each wait for the other can only finish if they really run at once;
    each thread's lines carry its image's prefix; outcomes keep the images' order."""
    barrier = threading.Barrier(2, timeout=10)

    class Image:
        def __init__(self, name: str) -> None:
            self.name = name

    def one(image):  # type: ignore[no-untyped-def]
        with process.prefixed(f"[{image.name}] "):
            barrier.wait()
            say(f"{image.name}: building")
            outcome = build.ImageOutcome(image.name, ok=image.name == "a")
            if not outcome.ok:
                outcome.error = "packer failed"
            return outcome

    outcomes = parallel.run_all([Image("a"), Image("b")], one, 2)  # type: ignore[list-item]
    assert [(o.image, o.ok, o.error) for o in outcomes] == [
        ("a", True, None), ("b", False, "packer failed")]  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == ["[a] a: building", "[b] b: building"]
