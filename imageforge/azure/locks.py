"""The CanNotDelete management lock on the gallery's resource group, and lifting it.

imageforge keeps one lock, named ``imageforge-gallery``, on the site's ``resource_group``
(Microsoft.Authorization/locks, through azure-mgmt-resource-locks' ManagementLockClient). With
it, Azure refuses every DELETE of the group or of anything in it (gallery, definitions,
versions, managed images) with 409 ScopeLocked, while reads and changes go on: locks.json
(2020-05-01) says CanNotDelete users "are able to read and modify the resources, but not
delete", so PATCHes (replicate, promote, rollback, deprecate) and tag writes are unaffected.

imageforge's own deletes in that group happen inside ``lifted(...)``: the lift is recorded
first in the tag ``imageforge.lock-lifted = "<actor> <utc> <why>"`` on the group, then the
lock is removed; on the way out, whatever happened (an error, Ctrl-C), the lock is put back
as it was and then the tag is removed. A tag left behind means a run died between the two:
``invoke lock`` restores the lock and clears it. Lifts in one process nest and count (parallel
builds each delete a managed image): the first lifts, the last restores. Two processes
lifting at once are not coordinated; the second sees no lock and restores none.
Only imageforge's own lock is lifted: someone else's lock stays, and Azure's refusal names it.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from imageforge import tags
from imageforge.azure import tagsapi
from imageforge.azure.arm import arm_call, as_json
from imageforge.azure.clients import Session
from imageforge.errors import AzureError, NotFoundError

NAME = "imageforge-gallery"
LEVEL = "CanNotDelete"
NOTES = (
    "imageforge: keeps the image gallery's resource group and everything in it (gallery, "
    "image definitions, versions) from being deleted by accident. imageforge lifts it only "
    "around its own deletes (invoke prune --yes, the builtin profile's managed image), "
    "recorded in the group's tag imageforge.lock-lifted; invoke unlock removes it."
)
#: On the resource group while imageforge has lifted its lock: "<actor> <utc> <why>".
LIFTED_TAG = tags.PREFIX + "lock-lifted"


@dataclass(frozen=True)
class Lock:
    """A management lock as ARM shows it."""

    id: str
    name: str
    level: str
    notes: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lock:
        props = data.get("properties") or data  # the SDK model's as_dict() is flattened
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or ""),
            level=str(props.get("level") or ""),
            notes=str(props.get("notes") or ""),
        )


@dataclass(frozen=True)
class LockResult:
    changed: bool
    message: str
    lock: Lock | None = None


@contextmanager
def _client(session: Session) -> Iterator[Any]:
    """The session's ManagementLockClient (same credential, retries, endpoint and CA as its
    other clients), closed when done."""
    from azure.mgmt.resource.locks import ManagementLockClient

    client = ManagementLockClient(session.credential, session.subscription_id, **session.options())
    try:
        yield client.management_locks
    finally:
        client.close()


def group_scope(session: Session) -> str:
    return f"/subscriptions/{session.subscription_id}/resourceGroups/{session.site.resource_group}"


def _what(session: Session) -> str:
    return f"lock {NAME} on resource group {session.site.resource_group}"


def _read(api: Any, session: Session) -> Lock | None:
    try:
        with arm_call(_what(session), where=session.where):
            found = api.get_at_resource_group_level(session.site.resource_group, NAME)
    except NotFoundError:
        return None
    return Lock.from_json(as_json(found))


def _put(api: Any, session: Session, level: str, notes: str) -> Lock:
    with arm_call(_what(session), where=session.where):
        made = api.create_or_update_at_resource_group_level(
            session.site.resource_group, NAME, {"level": level, "notes": notes}
        )
    return Lock.from_json(as_json(made))


def _delete(api: Any, session: Session) -> None:
    with arm_call(_what(session), where=session.where):
        api.delete_at_resource_group_level(session.site.resource_group, NAME)


def read(session: Session) -> Lock | None:
    """imageforge's lock on the gallery's resource group, or None."""
    with _client(session) as api:
        return _read(api, session)


def _clear_lift_tag(session: Session) -> bool:
    """Remove a lift tag a dead run left (True when there was one)."""
    scope = group_scope(session)
    current = tagsapi.read_at(session, scope, what=f"resource group {session.site.resource_group}")
    if LIFTED_TAG not in current:
        return False
    tagsapi.delete_at(session, scope, {LIFTED_TAG: current[LIFTED_TAG]})
    return True


def ensure(session: Session) -> LockResult:
    """Lock the gallery's resource group (CanNotDelete); nothing changes when it is locked."""
    group = session.site.resource_group
    with _client(session) as api:
        current = _read(api, session)
        if current is not None and current.level == LEVEL and current.notes == NOTES:
            lock, changed = current, False
        else:
            lock, changed = _put(api, session, LEVEL, NOTES), True
    cleared = _clear_lift_tag(session)
    if not changed:
        message = f"resource group {group} is already locked ({LEVEL} lock {NAME})"
    elif current is None:
        message = f"locked resource group {group}: {LEVEL} lock {NAME}"
    else:
        message = f"updated lock {NAME} on resource group {group} to {LEVEL}"
    if cleared:
        message += f"; removed the {LIFTED_TAG} tag an interrupted run left"
    return LockResult(changed or cleared, message, lock)


def remove(session: Session) -> LockResult:
    """Remove imageforge's lock from the gallery's resource group (no lock: nothing to do)."""
    group = session.site.resource_group
    with _client(session) as api:
        current = _read(api, session)
        if current is None:
            return LockResult(False, f"resource group {group} has no lock {NAME}; nothing to do")
        _delete(api, session)
    return LockResult(True, f"removed lock {NAME} from resource group {group}", current)


# lifting ------------------------------------------------------------------------------------


@dataclass
class _Lift:
    lock: Lock | None
    holders: int = 0


_guard = threading.Lock()
_lifts: dict[tuple[str, str, str], _Lift] = {}


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold back Ctrl-C (in the main thread) until the block is done, then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def _lift(session: Session, *, actor: str, why: str) -> Lock | None:
    with _client(session) as api:
        current = _read(api, session)
        if current is None:
            return None
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        scope = group_scope(session)
        tagsapi.merge_at(session, scope, {LIFTED_TAG: tags.clip(f"{actor} {stamp} {why}")})
        try:
            _delete(api, session)
        except AzureError:
            _clear_lift_tag(session)
            raise
    return current


def _restore(session: Session, lock: Lock, why: str) -> None:
    try:
        with _client(session) as api:
            _put(api, session, lock.level, lock.notes)
        _clear_lift_tag(session)
    except AzureError as err:
        raise AzureError(
            f"lock {NAME} on resource group {session.site.resource_group} was lifted for {why} "
            f"and is not back (run `invoke lock`): {err}"
        ) from None


@contextmanager
def lifted(session: Session, *, actor: str, why: str) -> Iterator[Lock | None]:
    """Run the block with imageforge's lock lifted (when there is one), restoring it after.

    ``why`` (e.g. ``prune``) and ``actor`` go into the lift tag. Yields the lifted lock."""
    key = (session.base_url or "azure", session.subscription_id.lower(),
           session.site.resource_group.lower())  # fmt: skip
    with _guard:
        entry = _lifts.get(key)
        if entry is None:
            entry = _Lift(None)
            try:
                with _uninterrupted():
                    entry.lock = _lift(session, actor=actor, why=why)
            except BaseException:  # Ctrl-C held back while lifting: put the lock back first
                if entry.lock is not None:
                    _restore(session, entry.lock, why)
                raise
            _lifts[key] = entry
        entry.holders += 1
    try:
        yield entry.lock
    finally:
        with _guard:
            entry.holders -= 1
            if entry.holders == 0:
                del _lifts[key]
                if entry.lock is not None:
                    with _uninterrupted():
                        _restore(session, entry.lock, why)


def lifted_in(
    session: Session, group: str, *, actor: str, why: str
) -> AbstractContextManager[Lock | None]:
    """``lifted`` when ``group`` is the gallery's resource group (where imageforge's lock
    is), else nothing to lift."""
    if group.lower() == session.site.resource_group.lower():
        return lifted(session, actor=actor, why=why)
    return nullcontext()
