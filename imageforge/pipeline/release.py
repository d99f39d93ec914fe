"""Release: what happens to a version after its tests, as tasks (`invoke replicate`,
`promote`, `rollback`, `deprecate`, `prune`, `versions`, `outdated`, `cleanup`).

Each checks its flags, reads the version once and hands it to imageforge.azure.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence

from imageforge import outdated
from imageforge.azure import gallery, janitor, promotion, replication, retention
from imageforge.azure.clients import Session
from imageforge.azure.records import VersionInfo
from imageforge.config import ImageDefinition, select_images
from imageforge.errors import ConfigError
from imageforge.pipeline import show
from imageforge.pipeline.context import actor, say
from imageforge.pipeline.sandbox import sandbox_images
from imageforge.pipeline.session import session_for
from imageforge.pipeline.sharing import sharing_line
from imageforge.site import Site, parse_days, parse_seconds
from imageforge.versions import Version


def versions_task(
    site: Site, image: ImageDefinition, *, target: str | None, session: Session | None = None
) -> None:
    """`invoke versions`: every version with its replication status, newest first, and who
    the gallery is shared with."""
    session = session or session_for(site, target)
    show.render_versions(image.name, versions_table(session, image))
    say(sharing_line(session))


def versions_table(session: Session, image: ImageDefinition) -> list[VersionInfo]:
    """Every version with its replication status, newest first (a GET per version: the list
    call has no $expand, GalleryRP's ListByGalleryImage takes none)."""
    return list(reversed(gallery.list_versions(session, image, status=True)))


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
    rows = outdated.check_all(session_for(site, target), images, max_age_days=days)
    if as_json:
        print(outdated.as_json(rows))
    else:
        from rich.console import Console  # lazy: rich is heavy

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
    Version.parse(version, where="--version")
    seconds = (
        site.replicate_timeout
        if timeout is None or timeout == ""
        else parse_seconds(timeout, where="--timeout")
    )
    session = session_for(site, target)
    info = gallery.get_version(session, image, version)
    label = f"image {image.name} version {info.name}"
    with show.ReplicationProgress(show.stderr_console(), label) as progress:
        result = replication.replicate(session, image, info, timeout=seconds, progress=progress)
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
    Version.parse(version, where="--version")
    promotion.check_reason(reason)
    result = promotion.promote(
        session_for(site, target),
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
    Version.parse(version, where="--version")
    promotion.check_reason(reason)
    result = promotion.rollback(
        session_for(site, target),
        image,
        version,
        actor=actor(),
        reason=reason,
    )
    say(result.message)


def deprecate_task(
    site: Site, image: ImageDefinition, version: str, date: str, *, target: str | None
) -> None:
    Version.parse(version, where="--version")
    try:
        when = dt.date.fromisoformat(date)
    except ValueError:
        raise ConfigError(f"--date {date!r} is not a date (YYYY-MM-DD)") from None
    result = retention.deprecate(session_for(site, target), image, version, end_of_life=when)
    say(result.message)


def prune_task(
    site: Site,
    image: ImageDefinition,
    *,
    keep: int,
    days: int,
    yes: bool,
    target: str | None,
    preview_days: int = retention.PREVIEW_DAYS,
) -> None:
    if keep < 0 or days < 0 or preview_days < 0:
        raise ConfigError("--keep, --days and --preview-days must be >= 0")
    result = retention.prune(
        session_for(site, target), image, keep=keep, days=days, yes=yes,
        preview_days=preview_days, actor=actor(),
    )  # fmt: skip
    say(result.message)


def cleanup_task(site: Site, *, target: str | None) -> None:
    deleted = janitor.cleanup(session_for(site, target))
    say(
        f"cleanup: deleted {len(deleted)} expired resource group(s)"
        + (": " + ", ".join(deleted) if deleted else "")
    )
