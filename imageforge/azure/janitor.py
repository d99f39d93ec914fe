"""The janitor: deletes the throw-away resource groups (test and build VMs) that runs left
behind, by the tags those runs put on them (``imageforge.expires``, ``imageforge.owner``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from imageforge import owner, tags
from imageforge.azure.arm import arm_call, as_json
from imageforge.azure.clients import Session


def expired(group_tags: Mapping[str, str], now: dt.datetime) -> bool:
    """Whether a resource group's ``imageforge.expires`` lies in the past (garbled: no)."""
    raw = group_tags.get(tags.EXPIRES, "")
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when <= now


def cleanup(
    session: Session,
    *,
    now: dt.datetime | None = None,
    report: Callable[[str], None] | None = None,
) -> list[str]:
    """Delete the resource groups imageforge created (tag ``imageforge.created-by``) that have
    expired (``imageforge.expires``) or whose creating process is provably dead
    (``imageforge.owner``, see ``imageforge.owner``: a killed run on this machine), at once;
    returns their names."""
    me = owner.current()
    moment = now or dt.datetime.now(dt.UTC)
    site = session.site
    api = session.resource.resource_groups
    with arm_call("listing imageforge resource groups", where=session.where):
        groups = [as_json(g) for g in api.list(filter=f"tagName eq '{tags.CREATED_BY}'")]
    doomed = []
    why: dict[str, str] = {}
    for group in groups:
        name = str(group.get("name", ""))
        group_tags = dict(group.get("tags") or {})
        state = (group.get("properties") or {}).get("provisioningState")
        if name.lower() == site.resource_group.lower() or tags.EXPIRES not in group_tags:
            continue
        if state == "Deleting":
            continue
        dead = owner.provably_dead(group_tags.get(tags.OWNER, ""), me)
        if not (expired(group_tags, moment) or dead):
            continue
        doomed.append(name)
        why[name] = "expired" if expired(group_tags, moment) else "its run's process is gone"
    pollers = []
    for name in doomed:
        with arm_call(f"deleting resource group {name}", where=session.where):
            pollers.append((name, api.begin_delete(name)))
    deleted = []
    for name, poller in pollers:
        with arm_call(f"deleting resource group {name}", where=session.where):
            poller.result()
        deleted.append(name)
        if report is not None:
            report(f"deleted resource group {name} ({why[name]})")
    return deleted
