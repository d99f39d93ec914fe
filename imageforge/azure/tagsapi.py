"""ARM's Tags API (``{scope}/providers/Microsoft.Resources/tags/default``): every tag write of
imageforge goes through here.

Merge and Delete change only the named keys, so two writers never lose each other's tags and a
version can be tagged while it replicates; the version reservations (azure/reservation.py) rely
on exactly that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imageforge import tags
from imageforge.azure.arm import arm_call, as_json
from imageforge.azure.clients import Session


def tags_of(data: Mapping[str, Any]) -> dict[str, str]:
    """The tags of a Tags API answer (``properties.tags``)."""
    return dict(((data.get("properties") or {}).get("tags")) or {})


def read_at(session: Session, scope: str, *, what: str = "") -> dict[str, str]:
    with arm_call(f"tags of {what or scope}", where=session.where):
        return tags_of(as_json(session.resource.tags.get_at_scope(scope)))


def _write(session: Session, scope: str, operation: str, values: Mapping[str, str]) -> Any:
    body = {"operation": operation, "properties": {"tags": dict(values)}}
    return as_json(session.resource.tags.begin_update_at_scope(scope, body).result())


def merge_at(
    session: Session, scope: str, values: Mapping[str, str], *, what: str = ""
) -> dict[str, str]:
    """Set ``values`` (and nothing else) on ``scope``; returns the tags afterwards."""
    with arm_call(f"tags of {what or scope}", where=session.where):
        return tags_of(_write(session, scope, "Merge", values))


def delete_at(
    session: Session, scope: str, values: Mapping[str, str], *, what: str = ""
) -> dict[str, str]:
    """Remove the tags ``values`` names (with those values) from ``scope``; the tags after."""
    with arm_call(f"tags of {what or scope}", where=session.where):
        return tags_of(_write(session, scope, "Delete", values))


def update_at(
    session: Session,
    scope: str,
    updates: Mapping[str, object],
    *,
    current: Mapping[str, str] | None = None,
    what: str = "",
) -> dict[str, str]:
    """Apply ``updates`` (None removes) to the tags of ``scope``.

    ``current`` (the tags as last read) saves a read; Azure's limits are checked on it up
    front. Returns the tags as ARM reports them afterwards.
    """
    if current is None:
        current = read_at(session, scope, what=what)
    tags.merge(current, updates)  # Azure's limits, names and values, checked up front
    sets = {name: tags.clip(value) for name, value in updates.items() if value is not None}
    deletes = {
        name: value for name, value in current.items() if name in updates and updates[name] is None
    }
    result: dict[str, str] | None = None
    if sets:
        result = merge_at(session, scope, sets, what=what)
    if deletes:
        result = delete_at(session, scope, deletes, what=what)
    return result if result is not None else dict(current)
