"""`invoke build`: render -> validate -> reserve version -> packer build -> publish -> test VM +
Testinfra -> record evidence -> replicate -> (promote), per image, on either target.

Values are parsed once at the boundary (``build_task``) and carried typed; each stage hands the
version it ends with (a ``VersionInfo``) to the next, so no stage reads it again.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imageforge import process, tags
from imageforge.azure import gallery, locks, marketplace, promotion, replication
from imageforge.azure.clients import Session
from imageforge.azure.reservation import reserve
from imageforge.config import ImageDefinition, select_images
from imageforge.errors import ConfigError, ImageforgeError
from imageforge.kinds import Target
from imageforge.packer import ON_ERROR_MODES, Packer
from imageforge.pipeline import plan as planning
from imageforge.pipeline import show, smoke
from imageforge.pipeline.context import (
    RunContext,
    new_run_id,
    packer_for,
    resolve_profile,
    say,
    sigterm_as_interrupt,
)
from imageforge.pipeline.hosts import build_host
from imageforge.pipeline.parallel import parallel_workers, parse_parallel, run_all
from imageforge.pipeline.release import versions_task
from imageforge.pipeline.sandbox import sandbox_images, sandbox_to_start, start_sandbox
from imageforge.pipeline.session import open_session
from imageforge.pipeline.test import test_version
from imageforge.pipeline.timings import Timings
from imageforge.pipeline.validate import Validation, render_all
from imageforge.render import Profile, RenderResult
from imageforge.site import Site
from imageforge.versions import Version


class BuildAborted(Exception):
    """An error that ends the whole build rather than one image's: carries it out of build_one."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class ImageOutcome:
    image: str
    version: str | None = None
    version_id: str | None = None
    stage: str = "not built"
    tests: str = ""
    ok: bool = False
    error: str | None = None
    report_dir: Path | None = None


def build_task(
    site: Site,
    *,
    names: Sequence[str],
    os_name: str,
    version: str | None,
    profile: str | None,
    target: str | None,
    dry_run: bool,
    promote: bool,
    on_error: str | None,
    skip_tests: bool = False,
    base_version: str | None = None,
    parallel: str | int | None = None,
    preview: bool = False,
) -> bool:
    """`invoke build`. Returns True when every image reached its goal.

    ``preview``: publish a shallow version (build region, one replica), test it there, and
    stop: a preview is never replicated or promoted, and prune lets it go by its own policy."""
    target_name, why = site.resolve_target(target)
    say(f"target: {target_name} ({why})")
    requested = Version.parse(version, where="--version") if version is not None else None
    packer = packer_for(site)
    packer.version_soon()  # while the image definitions load
    images = select_images(site.images_path, names=names, os_name=os_name)
    if target_name == "sandbox":
        images = sandbox_images(images, names, os_name)
    if not images:
        raise ConfigError("no images to build")
    wanted = parse_parallel(parallel)  # a bad --parallel fails before anything starts
    on_error = on_error or site.on_error
    if on_error not in ON_ERROR_MODES:
        raise ConfigError(f"unknown --on-error {on_error!r}: expected {', '.join(ON_ERROR_MODES)}")
    if preview and promote:
        raise ConfigError("--preview with --promote: a preview is never promoted")
    packer.path()
    chosen = resolve_profile(profile, packer)
    if preview and target_name == "azure" and not chosen.shallow_replication:
        raise ConfigError(
            f"--preview needs the plugin profile: Packer's built-in azure-arm ({chosen.name} "
            "profile) cannot publish a shallow version (use_shallow_replication)"
        )
    specialized = [image.name for image in images if image.specialized]
    if specialized and target_name == "azure" and not chosen.specialized:
        raise ConfigError(
            f"{', '.join(specialized)}: os_state = Specialized needs the plugin profile: "
            f"Packer's built-in azure-arm ({chosen.name} profile) generalizes every VM it "
            "captures (shared_image_gallery_destination.specialized is the plugin's)"
        )
    sandbox = None
    if target_name == "sandbox" and not dry_run:
        sandbox = sandbox_to_start(site)  # before anything is written: what the sandbox needs
    context = RunContext.of(site.root)
    timings = Timings()
    with timings.phase("render"):
        results = render_all(site, images, chosen)
    # Packer's validate takes ~0.5 s per image: it runs while the sandbox starts and the build
    # VM boots, and the first `packer build` waits for it (see Validation)
    validation = Validation(site, images, results, packer)
    rendered = {image.name: result for image, result in zip(images, results, strict=True)}
    if dry_run:
        validation.wait(timings)
        session = None
        with contextlib.suppress(Exception):
            session = open_session(site, target_name)
        plans = planning.dry_run(
            site, images, results, session=session, context=context, target=target_name,
            profile=chosen, packer=packer, version=requested, base_version=base_version,
            on_error=on_error, preview=preview,
        )  # fmt: skip
        for plan in plans:
            plan.write(site, packer, "plan.json")
            _say_plan(site, plan, packer)
        say("dry run: nothing was built, published or changed")
        return True
    if sandbox is not None:
        start_sandbox(sandbox)
    session = open_session(site, target_name)
    workers = parallel_workers(len(images), wanted, target_name)
    per_image = {image.name: Timings() for image in images} if workers > 1 else {}
    with timings.phase("capture/publish"):
        prepare_gallery(session, images)
    # each image's table starts with what every image waited for: the render, the gallery
    for own in per_image.values():
        own.seconds.update(timings.seconds)

    def one(image: ImageDefinition) -> ImageOutcome:
        own = per_image.get(image.name, timings)
        with process.prefixed(f"[{image.name}] " if workers > 1 else ""):
            return build_one(
                site,
                session,
                image,
                rendered=rendered[image.name],
                target=target_name,
                profile=chosen,
                packer=packer,
                version=requested,
                promote=promote,
                on_error=on_error,
                skip_tests=skip_tests,
                timings=own,
                validated=lambda: validation.wait(own),
                base_version=base_version,
                plain_progress=workers > 1,
                context=context,
                preview=preview,
            )

    try:
        with sigterm_as_interrupt():
            outcomes = run_all(images, one, workers)
            validation.wait(timings)  # an image that failed before Packer did not wait for it
    except BuildAborted as aborted:
        raise aborted.error from None
    _report(site, session, images, outcomes, timings, per_image)
    return all(o.ok for o in outcomes)


def _say_plan(site: Site, plan: planning.ImagePlan, packer: Packer) -> None:
    entry = plan.record(site, packer)
    say(f"{entry['image']}: would build version {entry['version']} ({plan.notes['version']})")
    say(
        f"  base {entry['base_image']} version {entry['base_version']} "
        f"({plan.notes['base_version']})"
    )
    say(f"  profile {entry['profile']}, publish to {entry['gallery']} in {entry['publish_region']}")
    if plan.preview:
        say(
            f"  preview: shallow, tested in {entry['publish_region']}; never replicated or promoted"
        )
    else:
        say(f"  then test, replicate to {', '.join(entry['target_regions'])}")
    say(f"  files: {', '.join(entry['rendered_files'])}")
    say(f"  packer: {shlex.join(entry['packer_argv'])}")


def _report(
    site: Site,
    session: Session,
    images: Sequence[ImageDefinition],
    outcomes: Sequence[ImageOutcome],
    timings: Timings,
    per_image: dict[str, Timings],
) -> None:
    say("")
    for name, own in per_image.items():
        say(f"{name}:")
        say(own.table())
        say("")
    if not per_image:
        say(timings.table())
        say("")
    for outcome in outcomes:
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        say(
            f"{outcome.image} {outcome.version or '-'}: "
            f"stage {outcome.stage} {outcome.tests} {status}"
        )
        if outcome.version and outcome.ok:
            image = next(i for i in images if i.name == outcome.image)
            versions_task(site, image, target=None, session=session)


def prepare_gallery(session: Session, images: Sequence[ImageDefinition]) -> None:
    """The resource group, the gallery and each image's definition, once per build and one
    after the other: ARM refuses a second write to a gallery while one runs (409
    OperationNotAllowed), and two builds at once would both find the gallery missing.
    Then, with the ``lock_gallery`` setting, the group's CanNotDelete lock (said when made)."""
    gallery.ensure_gallery(session)
    for image in images:
        gallery.ensure_image_definition(session, image)
    if session.site.lock_gallery:
        locked = locks.ensure(session)
        if locked.changed:
            say(locked.message)


def build_one(
    site: Site,
    session: Session,
    image: ImageDefinition,
    *,
    rendered: RenderResult,
    target: Target,
    profile: Profile,
    packer: Packer,
    version: Version | None,
    promote: bool,
    on_error: str,
    skip_tests: bool,
    timings: Timings,
    validated: Callable[[], None] | None = None,
    base_version: str | None = None,
    plain_progress: bool = False,
    context: RunContext | None = None,
    preview: bool = False,
) -> ImageOutcome:
    """Build, publish, test, replicate (and promote) one image; its gallery and definition
    exist (``prepare_gallery``).

    ``validated`` is called before Packer builds; an error it raises aborts the whole build
    (BuildAborted, after the build VM and the reservation are released), as a failed
    validation did before anything was built."""
    context = context or RunContext.of(site.root)
    outcome = ImageOutcome(image.name)
    run_id = new_run_id()
    out_dir = site.build_path / image.name
    try:
        with timings.phase("base"):
            base = marketplace.resolve(session, image, base_version)
        say(f"{image.name}: base image {marketplace.reference(image)} version {base}")
        reservation = reserve(
            session,
            image,
            scheme=image.version_scheme,
            build_id=context.build_id,
            requested=version,
            run_id=run_id,
        )
        with timings.around("reserve", reservation) as reserved:
            outcome.version = str(reserved)
            say(f"{image.name}: building version {reserved} on {target} ({profile.name} profile)")
            (out_dir / "version.txt").write_text(f"{reserved}\n", encoding="utf-8")
            plan = planning.plan_image(
                site, image, rendered, context=context, target=target, profile=profile,
                version=reserved, base_version=base, on_error=on_error, preview=preview,
                notes={"version": "reserved", "base_version": "resolved"},
            )  # fmt: skip
            host_cm = build_host(session, target, image, profile, run_id, base)
            with timings.around("build VM", host_cm) as host:
                if validated is not None:
                    try:
                        validated()
                    except ImageforgeError as exc:
                        raise BuildAborted(exc) from exc
                plan.write(site, packer, "build.json")  # what this build runs, as planned
                host.before_build(reserved)
                try:
                    with timings.phase("packer"):
                        artifact = packer.build(
                            out_dir,
                            plan.packer_variables(host.variables),
                            only=plan.only,
                            manifest=out_dir / "manifest.json",
                            log_path=out_dir / "packer.log",
                            on_error=on_error,
                            timeout=float(site.packer_timeout),
                        )
                except BaseException:
                    with contextlib.suppress(Exception):
                        host.after_failure(reserved)
                    raise
                version_tags = {
                    tags.STAGE: "built",
                    tags.IMAGE: image.name,
                    tags.SOURCE_COMMIT: context.commit,
                    tags.PIPELINE_RUN: context.pipeline_run,
                    tags.BASE_IMAGE_VERSION: base,
                    **({tags.PREVIEW: "true"} if preview else {}),
                    **site.tags,
                }
                with timings.phase("capture/publish"):
                    info = host.publish(reserved, artifact, version_tags, preview=preview)
            outcome.version_id = info.id
            outcome.stage = "built"
        say(f"{image.name}: published {outcome.version} ({outcome.version_id})")
        if skip_tests:
            outcome.ok = True
            return outcome
        suite, info = test_version(site, session, image, info, timings=timings)
        outcome.report_dir = suite.junit_path.parent if suite.junit_path else None
        outcome.tests = f"({suite.passed} passed, {suite.failed} failed, {suite.errors} errors)"
        if not suite.ok:
            outcome.stage = "failed"
            outcome.error = (
                f"Testinfra suite failed: {', '.join(suite.failures[:5]) or suite.reason}"
            )
            return outcome
        outcome.stage = "tested"
        if preview:
            say(
                f"{image.name}: {info.name} is a preview: tested in {image.build.region}, "
                "not replicated"
            )
            outcome.ok = True
            return outcome
        with timings.phase("replicate"):
            label = f"image {image.name} version {info.name}"
            console = show.stderr_console(plain=plain_progress)
            with show.ReplicationProgress(console, label) as progress:
                replicated = replication.replicate(
                    session, image, info, timeout=site.replicate_timeout, progress=progress
                )
        outcome.stage = "replicated"
        info = replicated.info or info
        with timings.phase("smoke"):
            verdicts, info = smoke.smoke_test(site, session, image, info)
        bad = smoke.failed(verdicts)
        if bad:
            good = [r for r in verdicts if r not in bad]
            outcome.error = f"smoke test failed in {', '.join(bad)}" + (
                f" (passed: {', '.join(good)}; promote those with --regions)" if good else ""
            )
            return outcome
        if promote:
            with timings.phase("promote"):
                promoted = promotion.promote(session, image, info, actor=context.actor)
            say(promoted.message)
            outcome.stage = "promoted"
        outcome.ok = True
    except ImageforgeError as exc:
        outcome.error = str(exc)
        say(f"{image.name}: error: {exc}")
    return outcome
