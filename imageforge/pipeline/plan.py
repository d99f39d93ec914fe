"""One image's build as data, derived once: the dry run prints and records it, the build
executes it and records what it ran.

``plan_image`` is the only place that decides a build's version, base, Packer variables and
-only selector; ``ImagePlan.packer_argv`` the only place that turns them into Packer's argv.
A dry run writes ``build/<image>/plan.json``; a build writes ``build/<image>/build.json`` from
the very plan it then runs, just before Packer starts. The two are equal whenever the gallery
and the marketplace did not change in between (``record``; the notes say where each value came
from and are not part of the comparison).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageforge.azure import marketplace
from imageforge.azure.clients import Session
from imageforge.azure.gallery import version_names
from imageforge.config import ImageDefinition
from imageforge.kinds import Target
from imageforge.packer import Packer, redacted_argv, variables_for
from imageforge.pipeline.context import RunContext
from imageforge.pipeline.hosts import packer_only
from imageforge.pipeline.validate import rel
from imageforge.render import Profile, RenderResult
from imageforge.site import Site
from imageforge.versions import Version, next_version

#: What a build host supplies to Packer once its VM exists, as the plan shows it before.
HOST_PLACEHOLDERS = {
    "sandbox_host": "<build VM address>",
    "sandbox_port": "<build VM port>",
    "sandbox_username": "<build VM user>",
    "sandbox_private_key_file": "<per-run key file>",
}


@dataclass(frozen=True)
class ImagePlan:
    image: ImageDefinition
    target: Target
    profile: Profile
    result: RenderResult
    version: Version
    base_version: str
    on_error: str
    only: str
    variables: Mapping[str, str]
    preview: bool = False
    notes: Mapping[str, str] = field(default_factory=dict)

    def packer_variables(self, host: Mapping[str, str]) -> dict[str, str]:
        """The -var values Packer runs with: the plan's, and what the build host supplies."""
        unknown = sorted(set(host) - set(HOST_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"a build host may not set {', '.join(unknown)}")
        return {**self.variables, **host}

    def packer_argv(self, packer: Packer, host: Mapping[str, str] | None = None) -> list[str]:
        """Packer's argv; the host's values as placeholders unless ``host`` gives them."""
        shown = {k: v for k, v in HOST_PLACEHOLDERS.items() if self.target == "sandbox"}
        variables = self.packer_variables(host if host is not None else shown)
        return packer.build_argv(
            self.result.directory, variables, only=self.only, on_error=self.on_error
        )

    def record(self, site: Site, packer: Packer) -> dict[str, Any]:
        """The plan as JSON data (plan.json, build.json), without the notes."""
        directory = str(self.result.directory)
        argv = redacted_argv(self.packer_argv(packer))
        return {
            "image": self.image.name,
            "os": self.image.os,
            "target": self.target,
            "profile": self.profile.name,
            "version": str(self.version),
            "base_image": marketplace.reference(self.image),
            "base_version": self.base_version,
            "rendered_files": [rel(site, p) for p in self.result.files],
            "packer_argv": [rel(site, Path(a)) if a == directory else a for a in argv],
            "gallery": f"{site.resource_group}/{site.gallery}/{self.image.gallery_image.name}",
            "publish_region": self.image.build.region,
            "target_regions": [] if self.preview else [r.name for r in self.image.target_regions],
            "preview": self.preview,
        }

    def write(self, site: Site, packer: Packer, name: str) -> Path:
        """Write the record and the notes to ``build/<image>/<name>``."""
        path = site.build_path / self.image.name / name
        data = {**self.record(site, packer), "notes": dict(self.notes)}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path


def plan_image(
    site: Site,
    image: ImageDefinition,
    result: RenderResult,
    *,
    context: RunContext,
    target: Target,
    profile: Profile,
    version: Version,
    base_version: str,
    on_error: str,
    preview: bool = False,
    notes: Mapping[str, str] | None = None,
) -> ImagePlan:
    """The build of ``image`` as ``version`` on ``base_version``: every Packer input but the
    build host's."""
    variables = variables_for(
        version=str(version),
        source_commit=context.commit,
        pipeline_run=context.pipeline_run,
        use_azure_cli_auth=context.use_cli_auth,
        base_image_version=base_version,
        preview=preview,
    )
    return ImagePlan(
        image=image,
        target=target,
        profile=profile,
        result=result,
        version=version,
        base_version=base_version,
        on_error=on_error,
        only=packer_only(image, target),
        variables=variables,
        preview=preview,
        notes=dict(notes or {}),
    )


def predicted_version(
    session: Session | None, image: ImageDefinition, context: RunContext
) -> tuple[Version, str]:
    """The version a build would reserve now, and why (for the dry run)."""
    if session is None:
        found = next_version(image.version_scheme, [], build_id=context.build_id)
        return found, "gallery not reachable: assuming no existing versions"
    existing = version_names(session, image.gallery_image.name)
    found = next_version(image.version_scheme, existing, build_id=context.build_id)
    return found, f"{image.version_scheme} scheme, {len(existing)} existing version(s)"


def dry_run(
    site: Site,
    images: list[ImageDefinition],
    results: list[RenderResult],
    *,
    session: Session | None,
    context: RunContext,
    target: Target,
    profile: Profile,
    packer: Packer,
    version: Version | None,
    base_version: str | None,
    on_error: str,
    preview: bool = False,
) -> list[ImagePlan]:
    """What a build would do; changes nothing anywhere (reads the gallery at most)."""
    plans = []
    for image, result in zip(images, results, strict=True):
        if version is not None:
            planned, version_note = version, "from --version"
        else:
            planned, version_note = predicted_version(session, image, context)
        if session is not None:
            base, base_note = marketplace.resolve(session, image, base_version), "resolved now"
        else:
            base = base_version or image.base_image.version
            base_note = "marketplace not reachable: resolved at build time"
        plans.append(
            plan_image(
                site,
                image,
                result,
                context=context,
                target=target,
                profile=profile,
                version=planned,
                base_version=base,
                on_error=on_error,
                preview=preview,
                notes={"version": version_note, "base_version": base_note},
            )  # fmt: skip
        )
    return plans
