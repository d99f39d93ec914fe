"""Orchestration: what each task does, phase by phase, on either target.

    build = render -> validate -> reserve version -> packer build -> publish
            -> test VM + Testinfra -> record evidence -> replicate -> (promote)

The same code path serves both targets; a ``BuildHost`` hides the one real difference: on
``azure`` Packer's azure-arm builder boots, generalizes and publishes by itself (on the builtin
profile imageforge then deletes the intermediate managed image); on ``sandbox`` imageforge asks
the emulator for the build VM, Packer's null builder provisions it over SSH, and imageforge
generalizes it and captures the version.

Heavy imports (Azure SDKs, rich) happen inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from imageforge import process
from imageforge.config import ImageDefinition, Site, parse_days, parse_seconds, select_images
from imageforge.errors import AzureError, ConfigError, SandboxError, ValidationError
from imageforge.packer import ON_ERROR_MODES, Packer, variables_for
from imageforge.render import (
    PROFILES,
    Profile,
    Renderer,
    RenderResult,
    get_profile,
    profile_for_packer,
    source_name,
    write_outputs,
)
from imageforge.versions import Version

PHASES = (
    "render",
    "validate",
    "base",
    "reserve",
    "build VM",
    "packer",
    "capture/publish",
    "test VM",
    "testinfra",
    "replicate",
    "promote",
)


def say(message: str = "") -> None:
    prefix = process.console_prefix()
    if prefix:
        message = "\n".join(prefix + line for line in message.split("\n"))
    print(message, flush=True)


# -- timings ------------------------------------------------------------------------------


@dataclass
class Timings:
    """Wall time per phase, summed over images, in the order of PHASES."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    @contextlib.contextmanager
    def around(self, name: str, manager: Any) -> Iterator[Any]:
        """Enter and exit ``manager`` counting only its own set-up and tear-down as ``name``."""
        started = time.perf_counter()
        value = manager.__enter__()
        self.add(name, time.perf_counter() - started)
        try:
            yield value
        except BaseException:
            started = time.perf_counter()
            try:
                suppressed = manager.__exit__(*sys.exc_info())
            finally:
                self.add(name, time.perf_counter() - started)
            if not suppressed:
                raise
        else:
            started = time.perf_counter()
            try:
                manager.__exit__(None, None, None)
            finally:
                self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def total(self) -> float:
        return sum(self.seconds.values())

    def table(self) -> str:
        width = max(len(p) for p in PHASES)
        total = self.total() or 1.0
        lines = [f"{'phase'.ljust(width)}  {'seconds':>9}  {'share':>6}"]
        for name in PHASES:
            if name in self.seconds:
                sec = self.seconds[name]
                lines.append(f"{name.ljust(width)}  {sec:9.2f}  {sec / total:6.1%}")
        lines.append(f"{'total'.ljust(width)}  {self.total():9.2f}")
        return "\n".join(lines)


# -- context of a run ----------------------------------------------------------------------


def source_commit(root: Path) -> str:
    """The commit being built: Azure DevOps' Build.SourceVersion, else git, else 'unknown'."""
    if os.environ.get("BUILD_SOURCEVERSION"):
        return os.environ["BUILD_SOURCEVERSION"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def pipeline_run() -> str:
    return os.environ.get("BUILD_BUILDID") or "local"


def build_id() -> str | None:
    return os.environ.get("IMAGEFORGE_BUILD_ID") or os.environ.get("BUILD_BUILDID") or None


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def actor() -> str:
    """Who is acting: the Azure DevOps requester, else the local user."""
    import getpass

    try:
        local = getpass.getuser()
    except (KeyError, OSError):
        local = "unknown"
    return (
        os.environ.get("BUILD_REQUESTEDFOREMAIL") or os.environ.get("BUILD_REQUESTEDFOR") or local
    )


def packer_for(site: Site) -> Packer:
    return Packer(binary=site.packer, cwd=site.root)


def resolve_profile(name: str | None, packer: Packer) -> Profile:
    if name:
        return get_profile(name)
    return profile_for_packer(packer.version())


# -- render and validate -------------------------------------------------------------------


def render_all(
    site: Site, images: Sequence[ImageDefinition], profile: Profile
) -> list[RenderResult]:
    """Render every image in memory first; only then write, so bad input writes nothing."""
    renderer = Renderer(site)
    texts = {image.name: renderer.render_text(image, profile) for image in images}
    return [
        write_outputs(image.name, profile.name, texts[image.name], site.build_path / image.name)
        for image in images
    ]


def render_task(site: Site, *, names: Sequence[str], os_name: str, profile: str | None) -> None:
    packer = packer_for(site)
    if not profile:
        packer.version_soon()  # while the image definitions load
    images = select_images(site.images_path, names=names, os_name=os_name)
    chosen = get_profile(profile) if profile else resolve_profile(None, packer)
    for result in render_all(site, images, chosen):
        state = "rendered" if result.changed else "unchanged"
        files = ", ".join(p.name for p in result.files)
        say(
            f"{result.image}: {state} ({result.profile} profile) -> "
            f"{_rel(site, result.directory)}/ [{files}]"
        )


def _rel(site: Site, path: Path) -> str:
    try:
        return str(path.relative_to(site.root))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def throwaway_key() -> Iterator[Path]:
    """A freshly generated SSH key file (ed25519, OpenSSH format, 0600) for `packer validate`
    of the sandbox source; it is deleted when the block ends."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with tempfile.TemporaryDirectory(prefix="imageforge-validate-") as tmp:
        path = Path(tmp) / "id_ed25519"
        key = ed25519.Ed25519PrivateKey.generate()
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        yield path


@dataclass(frozen=True)
class ValidationReport:
    image: str
    profile: str
    checks: tuple[str, ...]


def validate_rendered(
    site: Site, image: ImageDefinition, result: RenderResult, packer: Packer
) -> ValidationReport:
    """Check one rendered folder: parse, fmt, packer validate (when this Packer can)."""
    from imageforge import hclio

    checks = []
    for path in result.files:
        try:
            hclio.load(path)
        except ConfigError as exc:
            raise ValidationError(f"rendered HCL does not parse: {exc}") from None
    checks.append("hcl2 parse")
    unformatted = packer.fmt_check(result.directory)
    if unformatted:
        raise ValidationError(f"{image.name}: not `packer fmt` clean: {', '.join(unformatted)}")
    checks.append("packer fmt -check")
    profile = PROFILES[result.profile]
    can_validate = (profile.name == "builtin") == (packer.version() < (1, 7, 0))
    if can_validate:
        if profile.required_plugins:
            packer.init(result.directory)
        variables = {
            "image_version": "0.0.1",
            "use_azure_cli_auth": "true" if _use_cli_auth() else "false",
        }
        with throwaway_key() as key:
            if image.os == "linux":
                variables["sandbox_private_key_file"] = str(key)
            packer.validate(result.directory, variables)
        checks.append(f"packer validate ({'.'.join(map(str, packer.version()))})")
    if profile.name == "plugin":
        from imageforge.lint import check_plugin_profile

        check_plugin_profile(result.directory)
        checks.append("plugin option lint")
    return ValidationReport(image.name, profile.name, tuple(checks))


def validate_images(
    site: Site, images: Sequence[ImageDefinition], packer: Packer, profile: Profile
) -> list[ValidationReport]:
    """Validate the chosen profile in build/, and lint the plugin profile in a scratch folder."""
    reports = []
    results = render_all(site, images, profile)
    for image, result in zip(images, results, strict=True):
        reports.append(validate_rendered(site, image, result, packer))
    if profile.name != "plugin":
        renderer = Renderer(site)
        with tempfile.TemporaryDirectory(prefix="imageforge-plugin-") as tmp:
            for image in images:
                texts = renderer.render_text(image, PROFILES["plugin"])
                result = write_outputs(image.name, "plugin", texts, Path(tmp) / image.name)
                reports.append(validate_rendered(site, image, result, packer))
    return reports


class Validation:
    """``validate_rendered`` of every image, in a thread of its own from construction on.

    ``wait`` joins it, counting the time it blocks as the "validate" phase (the time the user
    waited for validation), and raises the first failure; every later ``wait`` raises it too.
    The thread is not a daemon: a build that fails otherwise still lets Packer finish its
    validate (a second at most) rather than leaving it to the interpreter's shutdown.
    """

    def __init__(
        self,
        site: Site,
        images: Sequence[ImageDefinition],
        results: Sequence[RenderResult],
        packer: Packer,
    ) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(site, list(zip(images, results, strict=True)), packer),
            name="imageforge-validate",
        )
        self._thread.start()

    def _run(
        self, site: Site, pairs: list[tuple[ImageDefinition, RenderResult]], packer: Packer
    ) -> None:
        try:
            for image, result in pairs:
                validate_rendered(site, image, result, packer)
        except BaseException as exc:  # handed to the thread that waits
            self._error = exc

    def wait(self, timings: Timings) -> None:
        with timings.phase("validate"):
            self._thread.join()
        if self._error is not None:
            raise self._error


class BuildAborted(Exception):
    """An error that ends the whole build rather than one image's: carries it out of build_one."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def validate_task(site: Site, *, names: Sequence[str], os_name: str, profile: str | None) -> None:
    packer = packer_for(site)
    packer.version_soon()  # while the image definitions load
    images = select_images(site.images_path, names=names, os_name=os_name)
    packer.path()
    chosen = resolve_profile(profile, packer)
    for report in validate_images(site, images, packer, chosen):
        say(f"{report.image} [{report.profile}]: ok ({', '.join(report.checks)})")


# -- build hosts: the one difference between targets -----------------------------------------


class BuildHost(Protocol):
    only: str
    variables: dict[str, str]

    def before_build(self, version: Version) -> None: ...

    def after_failure(self, version: Version) -> None: ...

    def publish(self, version: Version, artifact: Any, tags: dict[str, str]) -> str: ...


@dataclass
class AzureBuildHost:
    """Packer's azure-arm builder does it all; builtin leaves a managed image to delete."""

    session: Any
    image: ImageDefinition
    profile: Profile
    only: str
    variables: dict[str, str] = field(default_factory=dict)

    def managed_image_name(self, version: Version) -> str:
        """As templates/locals.pkr.hcl names it: imageforge-<image>-<version with dashes>."""
        return f"imageforge-{self.image.name}-{str(version).replace('.', '-')}"

    def before_build(self, version: Version) -> None:
        """builtin: a run that stopped after Packer made the managed image left it behind, and
        Packer 1.6 refuses to overwrite it without -force (which would also delete versions)."""
        if self.profile.managed_image:
            self._delete_image(version, "left by an earlier run")

    def after_failure(self, version: Version) -> None:
        if self.profile.managed_image:
            self._delete_image(version, "of the failed build")

    def _delete_image(self, version: Version, why: str) -> None:
        group, name = self.session.site.resource_group, self.managed_image_name(version)
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.session.compute.images.get(group, name)
        except ResourceNotFoundError:
            return
        say(f"deleting the intermediate managed image {name} {why}")
        self.session.compute.images.begin_delete(group, name).result()

    def publish(self, version: Version, artifact: Any, tags: dict[str, str]) -> str:
        from imageforge.azure import gallery

        if self.profile.managed_image and artifact.artifact_id:
            delete_managed_image(self.session, artifact.artifact_id)
        return str(gallery.get_version(self.session, self.image, str(version)).id)


def delete_managed_image(session: Any, image_id: str) -> None:
    """Delete the managed image Packer < 1.7 had to create on the way to the gallery."""
    parts = image_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    try:
        group = parts[lowered.index("resourcegroups") + 1]
        at = lowered.index("microsoft.compute")
        if lowered[at + 1] != "images" or len(parts) != at + 3:
            raise ValueError
        name = parts[at + 2]
    except (ValueError, IndexError):
        raise AzureError(
            f"the manifest's artifact {image_id!r} is not a managed image id"
        ) from None
    say(f"deleting the intermediate managed image {name} in {group}")
    session.compute.images.begin_delete(group, name).result()


@dataclass
class SandboxBuildHost:
    """A build VM from the sandbox marketplace; captured into the gallery after Packer."""

    session: Any
    image: ImageDefinition
    vm: Any
    only: str
    variables: dict[str, str] = field(default_factory=dict)

    def before_build(self, version: Version) -> None:
        return None

    def after_failure(self, version: Version) -> None:
        return None

    def publish(self, version: Version, artifact: Any, tags: dict[str, str]) -> str:
        from imageforge.azure import testvm

        return str(
            testvm.capture_version(self.session, self.image, str(version), self.vm, tags=tags)
        )


def packer_only(image: ImageDefinition, target: str) -> str:
    """Packer's -only selector: <build name>.<source type>.<source name>."""
    name = source_name(image.name)
    kind = "azure-arm" if target == "azure" else "null"
    return f"{name}.{kind}.{name}"


@contextlib.contextmanager
def build_host(
    session: Any,
    target: str,
    image: ImageDefinition,
    profile: Profile,
    run_id: str,
    base_version: str | None = None,
) -> Iterator[BuildHost]:
    if target == "azure":
        yield AzureBuildHost(session, image, profile, packer_only(image, target))
        return
    from imageforge.azure import testvm

    with testvm.sandbox_build_vm(session, image, run_id=run_id, base_version=base_version) as vm:
        yield SandboxBuildHost(
            session,
            image,
            vm,
            packer_only(image, target),
            {
                "sandbox_host": vm.host,
                "sandbox_port": str(vm.port),
                "sandbox_username": vm.username,
                "sandbox_private_key_file": str(vm.ssh_key_path),
            },
        )


# -- build ----------------------------------------------------------------------------------


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


def sandbox_images(
    images: list[ImageDefinition],
    names: Sequence[str],
    os_name: str,
    note: Callable[[str], None] = say,
) -> list[ImageDefinition]:
    """The images the sandbox can build. Asked for by name (or --os windows), a Windows image or
    a base the sandbox marketplace lacks is an error; picked by --os, it is skipped with a note."""
    from imageforge.sandbox.backend import find_base_image

    kept = []
    for image in images:
        try:
            if image.os == "windows":
                raise SandboxError(
                    f"{image.name}: Windows cannot run in the sandbox (its VMs are Linux chroots); "
                    "build it with --target azure (the sandbox covers Windows by render and "
                    "validate)"
                )
            base = image.base_image
            try:
                find_base_image(base.publisher, base.offer, base.sku)
            except SandboxError as exc:
                raise SandboxError(f"{image.name}: {exc}") from None
        except SandboxError as exc:
            if names or (os_name == "windows" and image.os == "windows"):
                raise
            note(f"note: skipping {exc}")
            continue
        kept.append(image)
    return kept


def plan(
    site: Site,
    images: Sequence[ImageDefinition],
    *,
    target: str,
    profile: Profile,
    packer: Packer,
    version: str | None,
    results: Sequence[RenderResult],
    session: Any = None,
    on_error: str = "cleanup",
    version_source: Any = None,
    base_version: str | None = None,
) -> list[dict[str, Any]]:
    """What a build would do; changes nothing anywhere (reads the gallery at most)."""
    from imageforge.azure import marketplace
    from imageforge.packer import redacted_argv

    entries = []
    for image, result in zip(images, results, strict=True):
        if version:
            planned, note = str(Version.parse(version, where="--version")), "from --version"
        else:
            planned, note = _planned_version(session, image, version_source)
        if session is not None:
            base, base_note = marketplace.resolve(session, image, base_version), "resolved now"
        else:
            base = base_version or image.base_image.version
            base_note = "marketplace not reachable: resolved at build time"
        only = packer_only(image, target)
        variables = variables_for(
            version=planned,
            source_commit=source_commit(site.root),
            pipeline_run=pipeline_run(),
            use_azure_cli_auth=_use_cli_auth(),
            base_image_version=base,
        )
        if target == "sandbox":
            variables.update(
                sandbox_host="<build VM address>",
                sandbox_port="2222",
                sandbox_username=image.communicator.username,
                sandbox_private_key_file="<per-run key file>",
            )
        argv = redacted_argv(
            packer.build_argv(result.directory, variables, only=only, on_error=on_error)
        )
        entries.append(
            {
                "image": image.name,
                "os": image.os,
                "target": target,
                "profile": profile.name,
                "version": planned,
                "version_note": note,
                "base_image": marketplace.reference(image),
                "base_version": base,
                "base_version_note": base_note,
                "rendered_files": [_rel(site, p) for p in result.files],
                "packer_argv": [
                    _rel(site, Path(a)) if a == str(result.directory) else a for a in argv
                ],
                "gallery": f"{site.resource_group}/{site.gallery}/{image.gallery_image.name}",
                "publish_region": image.build.region,
                "target_regions": [r.name for r in image.target_regions],
            }
        )
    return entries


def _planned_version(session: Any, image: ImageDefinition, source: Any = None) -> tuple[str, str]:
    from imageforge.versions import next_version

    if source is None and session is None:
        v = next_version(image.version_scheme, [], build_id=build_id())
        return str(v), "gallery not reachable: assuming no existing versions"
    if source is None:
        from imageforge.azure.gallery import GalleryVersionSource

        source = GalleryVersionSource(session)
    existing = source.existing_versions(image.gallery_image.name)
    v = next_version(image.version_scheme, existing, build_id=build_id())
    return str(v), f"{image.version_scheme} scheme, {len(existing)} existing version(s)"


def _use_cli_auth() -> bool:
    """Packer uses the Azure CLI's login unless a service principal secret is in the env."""
    return not (os.environ.get("ARM_CLIENT_ID") and os.environ.get("ARM_CLIENT_SECRET"))


def sandbox_settings(site: Site) -> Any:
    from imageforge.sandbox.control import SandboxSettings

    return SandboxSettings(**dict(site.sandbox))


def sandbox_to_start(site: Site) -> Any:
    """The settings of the sandbox a build has to start, or None when it is running. What would
    keep it from starting (not being root) is said here, before anything is written."""
    from imageforge.sandbox import control

    settings = sandbox_settings(site)
    if control.running(settings) is not None:
        return None
    control.check_can_start(settings)
    return settings


def start_sandbox(settings: Any) -> None:
    """Start the sandbox (as `invoke sandbox.up`) and wait until it answers."""
    from imageforge.sandbox import control

    say(f"starting the sandbox (state in {settings.state_dir}) ...")
    info = control.up(settings)
    say(f"sandbox running at {info.url}")


def ensure_sandbox(site: Site) -> None:
    """Start the sandbox for a build when it is not running yet."""
    settings = sandbox_to_start(site)
    if settings is not None:
        start_sandbox(settings)


def _open_session(site: Site, target: str) -> Any:
    from imageforge.azure.clients import open_session

    return open_session(site, target)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A pipeline cancelled with SIGTERM cleans up like Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
) -> bool:
    """`invoke build`. Returns True when every image reached its goal."""
    target_name, why = site.resolve_target(target)
    say(f"target: {target_name} ({why})")
    if version is not None:
        Version.parse(version, where="--version")
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
    packer.path()
    chosen = resolve_profile(profile, packer)
    sandbox = None
    if target_name == "sandbox" and not dry_run:
        sandbox = sandbox_to_start(site)  # before anything is written: what the sandbox needs
    timings = Timings()
    with timings.phase("render"):
        results = render_all(site, images, chosen)
    # Packer's validate takes ~0.5 s per image: it runs while the sandbox starts and the build
    # VM boots, and the first `packer build` waits for it (see Validation)
    validation = Validation(site, images, results, packer)
    if dry_run:
        validation.wait(timings)
        session = None
        with contextlib.suppress(Exception):
            session = _open_session(site, target_name)
        entries = plan(
            site,
            images,
            target=target_name,
            profile=chosen,
            packer=packer,
            version=version,
            results=results,
            session=session,
            on_error=on_error,
            base_version=base_version,
        )
        for entry in entries:
            path = site.build_path / entry["image"] / "plan.json"
            path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            say(
                f"{entry['image']}: would build version {entry['version']} "
                f"({entry['version_note']})"
            )
            say(
                f"  base {entry['base_image']} version {entry['base_version']} "
                f"({entry['base_version_note']})"
            )
            say(
                f"  profile {entry['profile']}, publish to {entry['gallery']} "
                f"in {entry['publish_region']}"
            )
            say(f"  then test, replicate to {', '.join(entry['target_regions'])}")
            say(f"  files: {', '.join(entry['rendered_files'])}")
            say(f"  packer: {shlex.join(entry['packer_argv'])}")
        say("dry run: nothing was built, published or changed")
        return True
    if sandbox is not None:
        start_sandbox(sandbox)
    session = _open_session(site, target_name)
    workers = parallel_workers(len(images), wanted, target_name)
    per_image = {image.name: Timings() for image in images} if workers > 1 else {}
    if workers > 1:
        # one after the other: ARM refuses a second write to a gallery while one runs (409
        # OperationNotAllowed), and two builds would both find the gallery missing
        from imageforge.azure import gallery

        with timings.phase("capture/publish"):
            gallery.ensure_gallery(session)
            for image in images:
                gallery.ensure_image_definition(session, image)
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
                target=target_name,
                profile=chosen,
                packer=packer,
                version=str(Version.parse(version)) if version else None,
                promote=promote,
                on_error=on_error,
                skip_tests=skip_tests,
                timings=own,
                validated=lambda: validation.wait(own),
                base_version=base_version,
                progress_console=None if workers == 1 else _plain_console(),
            )

    try:
        with _sigterm_as_interrupt():
            outcomes = _run_all(images, one, workers)
            validation.wait(timings)  # an image that failed before Packer did not wait for it
    except BuildAborted as aborted:
        raise aborted.error from None
    say("")
    if per_image:
        for name, own in per_image.items():
            say(f"{name}:")
            say(own.table())
            say("")
    else:
        say(timings.table())
        say("")
    for outcome in outcomes:
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        say(
            f"{outcome.image} {outcome.version or '-'}: "
            f"stage {outcome.stage} {outcome.tests} {status}"
        )
        if outcome.version and outcome.ok:
            versions_task(
                site,
                next(i for i in images if i.name == outcome.image),
                target=target_name,
                session=session,
            )
    return all(o.ok for o in outcomes)


def parse_parallel(requested: str | int | None) -> int | None:
    """``--parallel N`` as a positive number, or None when not given."""
    if requested is None or requested == "":
        return None
    text = str(requested).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--parallel: {requested!r} is not a positive number of images")
    return int(text)


def parallel_workers(count: int, requested: str | int | None, target: str) -> int:
    """How many images build at once: ``--parallel N``, else all of them; on the sandbox, whose
    VMs run on this machine, at most one per core (said when it is fewer than asked)."""
    wanted = parse_parallel(requested)
    workers = max(1, min(count if wanted is None else wanted, count))
    if target == "sandbox":
        cores = os.cpu_count() or 1
        if workers > cores:
            say(
                f"note: building {cores} images at once, not {workers}: the sandbox runs its "
                f"VMs and Packer on this machine's {cores} cores"
            )
            workers = cores
    if workers > 1:
        say(f"building {count} images, {workers} at once (each line names its image)")
    return workers


def _plain_console() -> Any:
    """A console for progress bars that does not redraw in place: several builds share the
    terminal, and two live displays would overwrite each other."""
    from rich.console import Console

    return Console(stderr=True, force_terminal=False)


def _run_all(
    images: Sequence[ImageDefinition],
    one: Callable[[ImageDefinition], ImageOutcome],
    workers: int,
) -> list[ImageOutcome]:
    """Build the images, ``workers`` at a time; outcomes in the images' order. One image's
    failure does not stop the others (build_one reports it in its outcome); a Ctrl-C or SIGTERM
    interrupts every Packer still running, waits for the builds to clean up, and re-raises."""
    if workers == 1:
        return [one(image) for image in images]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imageforge-build") as pool:
        futures = [pool.submit(one, image) for image in images]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            process.interrupt_all()
            for future in futures:
                with contextlib.suppress(BaseException):
                    future.result()
            raise


def build_one(
    site: Site,
    session: Any,
    image: ImageDefinition,
    *,
    target: str,
    profile: Profile,
    packer: Packer,
    version: str | None,
    promote: bool,
    on_error: str,
    skip_tests: bool,
    timings: Timings,
    validated: Callable[[], None] | None = None,
    base_version: str | None = None,
    progress_console: Any = None,
) -> ImageOutcome:
    """Build, publish, test, replicate (and promote) one image.

    ``validated`` is called before Packer builds; an error it raises aborts the whole build
    (BuildAborted, after the build VM and the reservation are released), as a failed
    validation did before anything was built."""
    from imageforge import tags
    from imageforge.azure import gallery, marketplace
    from imageforge.errors import ImageforgeError

    outcome = ImageOutcome(image.name)
    run_id = new_run_id()
    commit = source_commit(site.root)
    out_dir = site.build_path / image.name
    try:
        with timings.phase("capture/publish"):
            gallery.ensure_gallery(session)
            gallery.ensure_image_definition(session, image)
        with timings.phase("base"):
            base = marketplace.resolve(session, image, base_version)
        say(f"{image.name}: base image {marketplace.reference(image)} version {base}")
        reservation = gallery.reserve_version(
            session,
            image,
            scheme=image.version_scheme,
            build_id=build_id(),
            requested=version,
            run_id=run_id,
        )
        with timings.around("reserve", reservation) as reserved:
            outcome.version = str(reserved)
            say(f"{image.name}: building version {reserved} on {target} ({profile.name} profile)")
            (out_dir / "version.txt").write_text(f"{reserved}\n", encoding="utf-8")
            host_cm = build_host(session, target, image, profile, run_id, base)
            with timings.around("build VM", host_cm) as host:
                if validated is not None:
                    try:
                        validated()
                    except ImageforgeError as exc:
                        raise BuildAborted(exc) from exc
                variables = variables_for(
                    version=str(reserved),
                    source_commit=commit,
                    pipeline_run=pipeline_run(),
                    use_azure_cli_auth=_use_cli_auth(),
                    base_image_version=base,
                    extra=host.variables,
                )
                host.before_build(reserved)
                try:
                    with timings.phase("packer"):
                        artifact = packer.build(
                            out_dir,
                            variables,
                            only=host.only,
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
                    tags.SOURCE_COMMIT: commit,
                    tags.PIPELINE_RUN: pipeline_run(),
                    tags.BASE_IMAGE_VERSION: base,
                    **site.tags,
                }
                with timings.phase("capture/publish"):
                    outcome.version_id = host.publish(reserved, artifact, version_tags)
            outcome.stage = "built"
        say(f"{image.name}: published {outcome.version} ({outcome.version_id})")
        if skip_tests:
            outcome.ok = True
            return outcome
        result = test_version(site, session, image, outcome.version, timings=timings)
        outcome.report_dir = result.junit_path.parent if result.junit_path else None
        outcome.tests = f"({result.passed} passed, {result.failed} failed, {result.errors} errors)"
        if not result.ok:
            outcome.stage = "failed"
            outcome.error = (
                f"Testinfra suite failed: {', '.join(result.failures[:5]) or result.reason}"
            )
            return outcome
        outcome.stage = "tested"
        from imageforge.azure import lifecycle

        with timings.phase("replicate"):
            lifecycle.replicate(
                session,
                image,
                outcome.version,
                timeout=site.replicate_timeout,
                console=progress_console,
            )
        outcome.stage = "replicated"
        if promote:
            with timings.phase("promote"):
                promoted = lifecycle.promote(session, image, outcome.version, actor=actor())
            say(promoted.message)
            outcome.stage = "promoted"
        outcome.ok = True
    except ImageforgeError as exc:
        outcome.error = str(exc)
        say(f"{image.name}: error: {exc}")
    return outcome


def test_version(
    site: Site,
    session: Any,
    image: ImageDefinition,
    version: str,
    *,
    timings: Timings | None = None,
    region: str | None = None,
    vm_size: str | None = None,
) -> Any:
    """Deploy a VM from the exact version, run the suite, write the evidence onto the version."""
    from imageforge import verify
    from imageforge.azure import lifecycle, testvm

    timings = timings or Timings()
    report_dir = site.reports_path / image.name / version
    run_id = new_run_id()
    vm_started = time.perf_counter()
    suite_seconds = 0.0
    with testvm.deploy_test_vm(
        session,
        image,
        version,
        run_id=run_id,
        region=region,
        vm_size=vm_size,
        allowed_source=site.test_allowed_source or None,
        subnet_id=site.test_subnet_id or None,
    ) as vm:
        say(f"{image.name} {version}: test VM {vm.host}:{vm.port} in {vm.resource_group}")
        suite_started = time.perf_counter()
        scheme, credential = (
            ("ssh", {"ssh_identity": vm.ssh_key_path})
            if image.os == "linux"
            else (
                "winrm",
                {"winrm_password": vm.password, "winrm_certificate": vm.winrm_certificate},
            )
        )
        result = verify.run_suite(
            f"{scheme}://{vm.username}@{vm.host}:{vm.port}",
            os=image.os,
            image_file=image.path,
            version=version,
            admin_user=vm.username,
            report_dir=report_dir,
            collect_inventory=True,
            repo_root=site.root,
            **credential,
        )
        suite_seconds = time.perf_counter() - suite_started
    timings.add("testinfra", suite_seconds)
    timings.add("test VM", time.perf_counter() - vm_started - suite_seconds)
    lifecycle.record_test_result(
        session,
        image,
        version,
        passed=result.passed,
        failed=result.failed,
        errors=result.errors,
        digest=result.digest or "",
        tested_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        report=_rel(site, report_dir),
    )
    return result


# -- the other tasks -----------------------------------------------------------------------


def _session(site: Site, target: str | None) -> Any:
    target_name, _ = site.resolve_target(target)
    return _open_session(site, target_name)


def test_image_task(
    site: Site,
    image: ImageDefinition,
    version: str,
    *,
    target: str | None,
    region: str | None = None,
    vm_size: str | None = None,
) -> bool:
    Version.parse(version, where="--version")
    target_name, _ = site.resolve_target(target)
    if target_name == "sandbox":
        sandbox_images([image], [image.name], image.os)
    session = _open_session(site, target_name)
    from imageforge.azure import gallery

    gallery.get_version(session, image, version)
    with _sigterm_as_interrupt():
        result = test_version(site, session, image, version, region=region, vm_size=vm_size)
    return bool(result.ok)


def verify_task(
    site: Site,
    *,
    host: str,
    os_name: str,
    image: ImageDefinition,
    version: str,
    admin_user: str,
    ssh_identity: str | None,
) -> int:
    from imageforge import verify

    if os_name not in ("linux", "windows"):
        raise ConfigError(f"unknown --os {os_name!r}: expected linux or windows")
    if image.os != os_name:
        raise ConfigError(f"image {image.name} is a {image.os} image, not {os_name}")
    if not host:
        raise ConfigError("--host is required (e.g. ssh://azureuser@10.0.0.4)")
    if version:
        Version.parse(version, where="--version")
    report_dir = site.reports_path / image.name / (version or "adhoc")
    result = verify.run_suite(
        host,
        os=os_name,
        image_file=image.path,
        version=version,
        admin_user=admin_user,
        report_dir=report_dir,
        ssh_identity=Path(ssh_identity) if ssh_identity else None,
        collect_inventory=True,
        repo_root=site.root,
    )
    say(result.summary_line(image.name, version or "-"))
    return int(result.exit_code)


def diff_task(site: Site, image: ImageDefinition, a: str, b: str) -> None:
    from imageforge import inventory

    for label, value in (("--old", a), ("--new", b)):
        Version.parse(value, where=label)
    say(inventory.diff_versions(site.reports_path, image.name, a, b))


def versions_task(
    site: Site, image: ImageDefinition, *, target: str | None, session: Any = None
) -> None:
    from imageforge.azure import lifecycle

    session = session or _session(site, target)
    rows = lifecycle.versions_table(session, image)
    lifecycle.render_versions(image.name, rows)


def outdated_task(
    site: Site,
    *,
    names: Sequence[str],
    os_name: str,
    as_json: bool,
    target: str | None,
    max_age_days: str | int | None = None,
) -> bool:
    """`invoke outdated`: True when no image needs a rebuild."""
    from imageforge import outdated

    days = (
        site.max_age_days
        if max_age_days is None or max_age_days == ""
        else parse_days(max_age_days, where="--max-age-days")
    )
    images = select_images(site.images_path, names=names, os_name=os_name)
    target_name, _ = site.resolve_target(target)
    if target_name == "sandbox":
        # notes go to stderr, so that --json output stays JSON
        images = sandbox_images(images, names, os_name, lambda m: print(m, file=sys.stderr))
    rows = outdated.check_all(_session(site, target), images, max_age_days=days)
    if as_json:
        print(outdated.as_json(rows))
    else:
        from rich.console import Console

        # a pipeline's log is no terminal: rich would assume 80 columns and cut the versions
        outdated.render(rows, Console(width=None if sys.stdout.isatty() else 160))
    return not any(r.outdated for r in rows)


def replicate_task(
    site: Site,
    image: ImageDefinition,
    version: str,
    *,
    timeout: str | int | None,
    target: str | None,
) -> None:
    """``timeout``: --timeout as given (seconds), else the replicate_timeout setting."""
    from imageforge.azure import lifecycle

    Version.parse(version, where="--version")
    seconds = (
        site.replicate_timeout
        if timeout is None or timeout == ""
        else parse_seconds(timeout, where="--timeout")
    )
    result = lifecycle.replicate(_session(site, target), image, version, timeout=seconds)
    say(result.message)


def promote_task(
    site: Site,
    image: ImageDefinition,
    version: str,
    *,
    regions: list[str],
    force: bool,
    reason: str | None,
    target: str | None,
) -> None:
    from imageforge.azure import lifecycle

    Version.parse(version, where="--version")
    lifecycle.check_reason(reason)
    result = lifecycle.promote(
        _session(site, target),
        image,
        version,
        regions=regions or None,
        force=force,
        reason=reason,
        actor=actor(),
    )
    say(result.message)


def rollback_task(
    site: Site, image: ImageDefinition, version: str, *, reason: str | None, target: str | None
) -> None:
    from imageforge.azure import lifecycle

    Version.parse(version, where="--version")
    lifecycle.check_reason(reason)
    result = lifecycle.rollback(
        _session(site, target), image, version, actor=actor(), reason=reason
    )
    say(result.message)


def deprecate_task(
    site: Site, image: ImageDefinition, version: str, date: str, *, target: str | None
) -> None:
    from imageforge.azure import lifecycle

    Version.parse(version, where="--version")
    try:
        when = dt.date.fromisoformat(date)
    except ValueError:
        raise ConfigError(f"--date {date!r} is not a date (YYYY-MM-DD)") from None
    result = lifecycle.deprecate(_session(site, target), image, version, end_of_life=when)
    say(result.message)


def prune_task(
    site: Site, image: ImageDefinition, *, keep: int, days: int, yes: bool, target: str | None
) -> None:
    from imageforge.azure import lifecycle

    if keep < 0 or days < 0:
        raise ConfigError("--keep and --days must be >= 0")
    result = lifecycle.prune(_session(site, target), image, keep=keep, days=days, yes=yes)
    say(result.message)


def cleanup_task(site: Site, *, target: str | None) -> None:
    from imageforge.azure import lifecycle

    deleted = lifecycle.cleanup(_session(site, target))
    say(
        f"cleanup: deleted {len(deleted)} expired resource group(s)"
        + (": " + ", ".join(deleted) if deleted else "")
    )


def describe_sandbox(status: Any) -> str:
    if not status.running:
        return f"sandbox: not running (state {status.state_dir}); start it with `invoke sandbox.up`"
    info = status.info
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(status.resources.items())) or "empty"
    return (
        f"sandbox: running at {info.url} (pid {info.pid})\n"
        f"  CA certificate: {info.ca_path}\n"
        f"  state: {status.state_dir}\n"
        f"  resources: {counts}; VMs running: {status.vms}; "
        f"operations in progress: {status.operations_in_progress}"
    )


def describe_reset(report: Any) -> str:
    if report.stopped_pid:
        stopped = f"stopped emulator pid {report.stopped_pid}"
    else:
        stopped = "emulator was not running"
    reaped = ", ".join(report.reaped) if report.reaped else "nothing"
    return f"sandbox reset: {stopped}; reaped {reaped}; wiped {report.wiped}"
