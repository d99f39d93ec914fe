"""`invoke outdated`: which images need a rebuild, and why.

An image is outdated when any of these holds for its newest promoted version (the one a
release manager last let everyone have):

- there is none;
- it was built from an older base than the newest the marketplace lists now (or, when the
  image file pins ``base_image.version``, from another version than the pinned one), or it
  carries no concrete base version (built before bases were pinned);
- it is older than ``max_age_days`` (site setting), so a rebuild picks up the image's own
  packages even when the base has not moved.

An unknown base (publisher, offer or sku) is a one-line error.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from imageforge import tags
from imageforge.azure import gallery, marketplace
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition

#: `invoke outdated --check` exits with this when an image needs a rebuild (1 is an error).
EXIT_OUTDATED = 3


@dataclass(frozen=True)
class Freshness:
    image: str
    promoted: str | None
    base: str | None
    newest_base: str
    age_days: int | None
    reasons: tuple[str, ...]

    @property
    def outdated(self) -> bool:
        return bool(self.reasons)


def check(
    session: Session, image: ImageDefinition, *, max_age_days: int, now: dt.datetime
) -> Freshness:
    newest = marketplace.newest(session, image)
    pinned = image.base_image.version
    promoted = [v for v in gallery.list_versions(session, image) if v.stage == "promoted"]
    if not promoted:
        return Freshness(image.name, None, None, newest, None, ("no promoted version",))
    top = max(promoted, key=lambda v: v.version)
    base = top.tags.get(tags.BASE_IMAGE_VERSION) or None
    reasons = []
    if not base or not marketplace.version_key(base):
        reasons.append(f"{top.name} does not record its base version ({base or 'none'})")
    elif pinned.lower() != marketplace.LATEST:
        if base != pinned:
            reasons.append(f"{top.name} is built from base {base}; {image.path.name} pins {pinned}")
    elif marketplace.version_key(base) < marketplace.version_key(newest):
        reasons.append(f"{top.name} is built from base {base}; {newest} is out")
    age = (now - top.published_date).days if top.published_date else None
    if age is not None and age > max_age_days:
        reasons.append(f"{top.name} is {age} days old (max_age_days {max_age_days})")
    return Freshness(image.name, top.name, base, newest, age, tuple(reasons))


def check_all(
    session: Session,
    images: Sequence[ImageDefinition],
    *,
    max_age_days: int,
    now: dt.datetime | None = None,
) -> list[Freshness]:
    moment = now or dt.datetime.now(dt.UTC)
    return [check(session, i, max_age_days=max_age_days, now=moment) for i in images]


def as_json(rows: Sequence[Freshness]) -> str:
    return json.dumps(
        [{**asdict(r), "reasons": list(r.reasons), "outdated": r.outdated} for r in rows],
        indent=2,
    )


def render(rows: Sequence[Freshness], console: object) -> None:
    from rich.table import Table

    table = Table(title="images against their bases", title_justify="left")
    for column in ("image", "promoted", "base", "newest base", "age", "outdated"):
        table.add_column(column, no_wrap=True)  # names and versions are never cut
    for row in rows:
        table.add_row(
            row.image,
            row.promoted or "-",
            row.base or "-",
            row.newest_base,
            f"{row.age_days} d" if row.age_days is not None else "-",
            "yes" if row.outdated else "no",
        )
    console.print(table)  # type: ignore[attr-defined]
    for row in rows:
        for reason in row.reasons:  # below the table: whole, however narrow the console
            console.print(f"{row.image}: {reason}", soft_wrap=True)  # type: ignore[attr-defined]
