"""`invoke lock` and `invoke unlock`: imageforge's CanNotDelete lock on the gallery's resource
group (imageforge.azure.locks), ensured or removed, saying what was done."""

from __future__ import annotations

from imageforge.azure import locks
from imageforge.errors import NotFoundError
from imageforge.pipeline.context import say
from imageforge.pipeline.session import session_for
from imageforge.site import Site


def lock_task(site: Site, *, target: str | None) -> None:
    """Ensure the lock (idempotent); a group that does not exist yet is a one-line error."""
    with session_for(site, target) as session:
        try:
            result = locks.ensure(session)
        except NotFoundError:
            raise NotFoundError(
                f"cannot lock resource group {site.resource_group}: it does not exist "
                "(invoke build creates it with the gallery)"
            ) from None
    say(result.message)


def unlock_task(site: Site, *, target: str | None) -> None:
    """Remove the lock; one line when there is none."""
    with session_for(site, target) as session:
        result = locks.remove(session)
    say(result.message)
