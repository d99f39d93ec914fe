"""Render and validate: every image rendered in memory before anything is written, then
parse, ``packer fmt -check``, ``packer validate`` (when this Packer can) and the plugin option
lint; ``Validation`` runs them in a thread of its own while a build gets on.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from imageforge import hclio
from imageforge.config import ImageDefinition, select_images
from imageforge.errors import ConfigError, ValidationError
from imageforge.lint import check_plugin_profile
from imageforge.packer import Packer
from imageforge.pipeline.context import packer_for, resolve_profile, say, use_cli_auth
from imageforge.pipeline.timings import Timings
from imageforge.render import PROFILES, Profile, Renderer, RenderResult, get_profile, write_outputs
from imageforge.site import Site


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
            f"{rel(site, result.directory)}/ [{files}]"
        )


def rel(site: Site, path: Path) -> str:
    """``path`` relative to the repository when it is inside it (for output and records)."""
    try:
        return str(path.relative_to(site.root))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def throwaway_key() -> Iterator[Path]:
    """A freshly generated SSH key file (ed25519, OpenSSH format, 0600) for `packer validate`
    of the sandbox source; it is deleted when the block ends."""
    # lazy: cryptography costs a render (which never needs a key) tens of milliseconds
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
            "use_azure_cli_auth": "true" if use_cli_auth() else "false",
        }
        with throwaway_key() as key:
            if image.os == "linux":
                variables["sandbox_private_key_file"] = str(key)
            packer.validate(result.directory, variables)
        checks.append(f"packer validate ({'.'.join(map(str, packer.version()))})")
    if profile.name == "plugin":
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


def validate_task(site: Site, *, names: Sequence[str], os_name: str, profile: str | None) -> None:
    packer = packer_for(site)
    packer.version_soon()  # while the image definitions load
    images = select_images(site.images_path, names=names, os_name=os_name)
    packer.path()
    chosen = resolve_profile(profile, packer)
    for report in validate_images(site, images, packer, chosen):
        say(f"{report.image} [{report.profile}]: ok ({', '.join(report.checks)})")
