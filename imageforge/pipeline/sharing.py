"""`invoke share`: share the gallery with subscriptions and tenants, grant principals Reader on
it; and the line `invoke versions` prints about who the gallery is shared with.

Every flag is checked before anything is written, so a refused command changes nothing:

- each id must be a GUID;
- an id must not be added and removed at once, and ``--reset`` (which removes everyone) takes
  no ``--remove-*``; ``--reset`` with ``--add-*`` means "shared with exactly these";
- a removed id must be one the gallery is shared with;
- the gallery must exist (build an image first);
- a tenant given where a subscription is expected, or the reverse, is refused when ARM can tell:
  a tenant id the caller can sign in to (``GET /tenants``, which includes the tenant of the
  session's own subscription, its ``tenantId``) is no subscription, and an id ``GET
  /subscriptions/{id}`` answers is no tenant. Real Azure answers those for the caller's own
  subscriptions and tenants only; a subscription or tenant of another organization (what
  sharing is mostly for) cannot be looked up by anyone outside it, and ARM answers 404 for it
  exactly as for an id that does not exist. Such ids are shared as given: the check catches
  the mix-ups ARM can see (the usual one: pasting one's own tenant id as a subscription), not
  a typo in a foreign id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from imageforge.azure import sharing
from imageforge.azure.clients import Session
from imageforge.azure.ids import where
from imageforge.errors import ConfigError
from imageforge.pipeline.context import say
from imageforge.pipeline.session import session_for
from imageforge.site import Site

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@dataclass(frozen=True)
class ShareRequest:
    """What `invoke share` was asked, checked and lower-cased, each id once."""

    add_subscriptions: tuple[str, ...] = ()
    add_tenants: tuple[str, ...] = ()
    remove_subscriptions: tuple[str, ...] = ()
    remove_tenants: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    reset: bool = False

    @property
    def changes_sharing(self) -> bool:
        return self.reset or any(
            (self.add_subscriptions, self.add_tenants, self.remove_subscriptions,
             self.remove_tenants)
        )  # fmt: skip


def _ids(flag: str, values: Sequence[str]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        text = str(value).strip()
        if not _GUID.match(text):
            raise ConfigError(
                f"{flag} {text!r} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
            )
        if text.lower() not in found:
            found.append(text.lower())
    return tuple(found)


def parse_request(
    *,
    add_subscriptions: Sequence[str] = (),
    add_tenants: Sequence[str] = (),
    remove_subscriptions: Sequence[str] = (),
    remove_tenants: Sequence[str] = (),
    readers: Sequence[str] = (),
    reset: bool = False,
) -> ShareRequest:
    """The flags as a ``ShareRequest``; ConfigError names the flag and id at fault."""
    request = ShareRequest(
        _ids("--add-subscription", add_subscriptions),
        _ids("--add-tenant", add_tenants),
        _ids("--remove-subscription", remove_subscriptions),
        _ids("--remove-tenant", remove_tenants),
        _ids("--reader", readers),
        bool(reset),
    )
    if not request.changes_sharing and not request.readers:
        raise ConfigError(
            "nothing to do: give --add-subscription, --add-tenant, --remove-subscription, "
            "--remove-tenant, --reset or --reader"
        )
    if reset and (request.remove_subscriptions or request.remove_tenants):
        raise ConfigError("--reset removes every subscription and tenant: drop --remove-*")
    for kind, added, removed in (
        ("subscription", request.add_subscriptions, request.remove_subscriptions),
        ("tenant", request.add_tenants, request.remove_tenants),
    ):
        both = sorted(set(added) & set(removed))
        if both:
            raise ConfigError(f"--add-{kind} and --remove-{kind} both name {both[0]}")
    subscriptions = set(request.add_subscriptions) | set(request.remove_subscriptions)
    tenants = set(request.add_tenants) | set(request.remove_tenants)
    both = sorted(subscriptions & tenants)
    if both:
        raise ConfigError(
            f"{both[0]} is given as a subscription and as a tenant: it is one of them"
        )
    return request


def check_kinds(session: Session, request: ShareRequest) -> None:
    """Refuse a tenant given as a subscription and a subscription given as a tenant, as far as
    ARM can tell them apart (module docstring)."""
    subscription_flags = (
        ("--add-subscription", request.add_subscriptions),
        ("--remove-subscription", request.remove_subscriptions),
    )
    tenant_flags = (
        ("--add-tenant", request.add_tenants),
        ("--remove-tenant", request.remove_tenants),
    )
    if any(ids for _, ids in subscription_flags):
        own = sharing.tenant_of(session)
        tenants = sharing.visible_tenants(session) | {own}
        for flag, ids in subscription_flags:
            for value in ids:
                if value in tenants:
                    whose = (
                        f"the tenant of subscription {session.subscription_id}"
                        if value == own
                        else "a tenant you can sign in to"
                    )
                    hint = flag.replace("subscription", "tenant")
                    raise ConfigError(
                        f"{flag} {value} is a tenant id ({whose}), not a subscription: use {hint}"
                    )
    for flag, ids in tenant_flags:
        for value in ids:
            name = sharing.visible_subscription(session, value)
            if name is not None:
                hint = flag.replace("tenant", "subscription")
                raise ConfigError(
                    f"{flag} {value} is a subscription ({name}), not a tenant: use {hint}"
                )


def _check_removals(session: Session, current: sharing.Sharing, request: ShareRequest) -> None:
    for flag, ids, shared in (
        ("--remove-subscription", request.remove_subscriptions, current.subscriptions),
        ("--remove-tenant", request.remove_tenants, current.tenants),
    ):
        for value in ids:
            if value not in shared:
                raise ConfigError(f"{flag} {value}: {where(session)} is not shared with it")


def describe(current: sharing.Sharing) -> str:
    """Who the gallery is shared with, on one line."""
    if not current.shared:
        return (
            "shared with: no subscription or tenant (sharingProfile.permissions "
            f"{current.permissions})"
        )
    parts = []
    if current.subscriptions:
        parts.append("subscriptions " + ", ".join(current.subscriptions))
    if current.tenants:
        parts.append("tenants " + ", ".join(current.tenants))
    return "shared with: " + "; ".join(parts)


def sharing_line(session: Session) -> str:
    """`invoke versions`' line about the gallery's sharing (one GET)."""
    return f"{where(session)} {describe(sharing.read_sharing(session))}"


def apply(session: Session, request: ShareRequest) -> list[str]:
    """Check ``request`` against the gallery and ARM, then carry it out; the lines to print."""
    current = sharing.read_sharing(session)
    check_kinds(session, request)
    _check_removals(session, current, request)
    lines = []
    if request.changes_sharing:
        kept = sharing.Sharing(current.permissions) if request.reset else current
        new_subs = [s for s in request.add_subscriptions if s not in kept.subscriptions]
        new_tenants = [t for t in request.add_tenants if t not in kept.tenants]
        if (new_subs or new_tenants) and current.permissions != "Groups":
            sharing.allow_groups(session)
            lines.append(f"{where(session)}: sharingProfile.permissions set to Groups")
        if request.reset and current.shared:
            sharing.update_sharing(session, "Reset")
        if request.remove_subscriptions or request.remove_tenants:
            sharing.update_sharing(
                session,
                "Remove",
                subscriptions=request.remove_subscriptions,
                tenants=request.remove_tenants,
            )
        if new_subs or new_tenants:
            sharing.update_sharing(session, "Add", subscriptions=new_subs, tenants=new_tenants)
        lines.append(f"{where(session)} {describe(sharing.read_sharing(session))}")
    for principal in request.readers:
        granted = sharing.grant_reader(session, principal)
        state = "granted" if granted.created else "already had it"
        lines.append(
            f"principal {principal}: Reader on {where(session)} ({state}; role assignment "
            f"{granted.name})"
        )
    return lines


def share_task(
    site: Site,
    *,
    add_subscriptions: Sequence[str] = (),
    add_tenants: Sequence[str] = (),
    remove_subscriptions: Sequence[str] = (),
    remove_tenants: Sequence[str] = (),
    readers: Sequence[str] = (),
    reset: bool = False,
    target: str | None = None,
    session: Session | None = None,
) -> None:
    """`invoke share`: the flags checked first, then the changes, then who has access."""
    request = parse_request(
        add_subscriptions=add_subscriptions,
        add_tenants=add_tenants,
        remove_subscriptions=remove_subscriptions,
        remove_tenants=remove_tenants,
        readers=readers,
        reset=reset,
    )
    if session is not None:
        lines = apply(session, request)
    else:
        with session_for(site, target) as opened:
            lines = apply(opened, request)
    for line in lines:
        say(line)
