"""Version reservation: concurrent builds never get the same version (real SDK, emulator)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import pytest
from azure_helpers import new_session, publish

from imageforge.azure import gallery, ids, reservation, tagsapi
from imageforge.azure.reservation import Reservation, parse_register, register_key
from imageforge.errors import VersionError
from imageforge.versions import Version

V = Version.parse


def _registers(session, image):  # type: ignore[no-untyped-def]
    scope = ids.definition_id(session, image)
    found = tagsapi.read_at(session, scope)
    return {k: v for k, v in found.items() if k.startswith(reservation.PREFIX)}


def _stamp(seconds_ago: float) -> str:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _race(arm, image, site, *, builders: int, rounds: int, publish_it: bool = True):  # type: ignore[no-untyped-def]
    """``builders`` threads, each with its own session, reserve (and publish) ``rounds`` times,
    all starting each round together. Returns [(builder, round, version, attempts)]."""
    barrier = threading.Barrier(builders)
    results: list[tuple[int, int, str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def builder(n: int) -> None:
        try:
            with new_session(arm, resource_group=site.resource_group) as own:
                for round_ in range(rounds):
                    barrier.wait(timeout=60)
                    res = Reservation(
                        own,
                        image,
                        scheme="semver",
                        build_id=None,
                        requested=None,
                        run_id=f"run-{n}",
                    )
                    version = res.acquire()
                    try:
                        if publish_it:
                            publish(own, image, str(version))
                        with lock:
                            results.append((n, round_, str(version), res.attempts))
                    finally:
                        res.release()
        except BaseException as err:  # noqa: BLE001 - reported by the test
            barrier.abort()
            errors.append(err)

    threads = [threading.Thread(target=builder, args=(n,)) for n in range(builders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [], errors
    return results


def test_concurrent_builds_never_publish_the_same_version(arm, session, defined):
    publish(session, defined, "1.0.0")
    results = _race(arm, defined, session.site, builders=4, rounds=6)
    versions = [v for _, _, v, _ in results]
    assert len(results) == 24
    assert Counter(versions).most_common(1)[0][1] == 1, sorted(versions)
    assert sorted(Version.parse(v) for v in versions) == [Version(1, 0, n) for n in range(1, 25)]
    published = gallery.list_versions(session, defined)
    assert len(published) == 25
    assert _registers(session, defined) == {}  # every claim was released


def test_ties_are_broken_by_run_id_under_slow_tags(arm, session, defined):
    """With a slow Tags API every builder chooses while the others choose too: they all pick
    the same candidate and the bakery's tie-break must sort it out."""
    arm.set_faults(
        [{"kind": "latency", "method": "GET", "path": "/tags/default$", "seconds": 0.2,
          "count": None}]
    )  # fmt: skip
    results = _race(arm, defined, session.site, builders=3, rounds=3)
    versions = [v for _, _, v, _ in results]
    assert len(set(versions)) == len(versions) == 9, sorted(versions)
    assert max(attempts for *_, attempts in results) > 1, "no tie happened"
    first_round = sorted((v, n) for n, r, v, _ in results if r == 0)
    assert first_round[0][1] == 0  # the lowest run id won the contested first version


def test_held_reservations_are_unique_without_publishing(arm, session, defined):
    """Reservations held at the same time differ even before anything is published."""
    held: list[Reservation] = []
    try:
        for n in range(4):
            res = Reservation(
                session, defined, scheme="semver", build_id=None, requested=None, run_id=f"r{n}"
            )
            res.acquire()
            held.append(res)
        assert sorted(str(r.version) for r in held) == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]
        assert len(_registers(session, defined)) == 4
    finally:
        for res in held:
            res.release()
    assert _registers(session, defined) == {}


def test_requested_version_that_exists_is_an_error(session, defined):
    publish(session, defined, "1.4.0")
    with pytest.raises(VersionError) as caught:
        with reservation.reserve(
            session, defined, scheme="semver", build_id=None, requested=V("1.4.0"), run_id="r1"
        ):
            pass
    assert str(caught.value) == (
        "version 1.4.0 of image debian-12 already exists in gallery gallery "
        "(choose another --version)"
    )
    assert _registers(session, defined) == {}
    with reservation.reserve(
        session, defined, scheme="semver", build_id=None, requested=V("1.5.0"), run_id="r1"
    ) as version:
        assert version == Version(1, 5, 0)


def test_requested_version_claimed_by_a_live_run_is_an_error(session, defined):
    with reservation.reserve(
        session, defined, scheme="semver", build_id=None, requested=V("2.0.0"), run_id="first"
    ):
        with pytest.raises(
            VersionError,
            match=r"version 2.0.0 of image debian-12 is being built "
            r"by another run \(reservation imageforge.reserve.first\.",
        ):
            with reservation.reserve(
                session, defined, scheme="semver", build_id=None, requested=V("2.0.0"),
                run_id="second",
            ):  # fmt: skip
                pass


def test_date_scheme_with_a_reused_build_id_is_refused(session, defined):
    today = dt.date(2026, 1, 5)
    with reservation.reserve(
        session, defined, scheme="date", build_id="77", requested=None, run_id="a", today=today
    ) as version:
        assert version == Version(2026, 105, 77)
        publish(session, defined, str(version))
    with pytest.raises(VersionError, match=r"already exists .*\(build id reused\)"):
        with reservation.reserve(
            session, defined, scheme="date", build_id="77", requested=None, run_id="b",
            today=today,
        ):  # fmt: skip
            pass


def test_crashed_runs_registers_expire_and_are_removed(session, defined):
    scope = ids.definition_id(session, defined)
    stale_claim = register_key("crashed-claim")
    stale_choosing = register_key("crashed-choosing")
    live_claim = register_key("live")
    tagsapi.update_at(
        session,
        scope,
        {
            stale_claim: f"claimed 1.0.0 {_stamp(25 * 3600)}",
            stale_choosing: f"choosing {_stamp(600)}",
            live_claim: f"claimed 1.0.0 {_stamp(5)}",
        },
    )
    started = time.monotonic()
    with reservation.reserve(
        session, defined, scheme="semver", build_id=None, requested=None, run_id="next"
    ) as version:
        assert version == Version(1, 0, 1)  # the live claim of 1.0.0 counts, the stale do not
    assert time.monotonic() - started < 10  # the stale choosing flag was not waited for
    assert set(_registers(session, defined)) == {live_claim}


def test_a_failed_build_releases_its_claim(session, defined):
    with pytest.raises(RuntimeError):
        with reservation.reserve(
            session, defined, scheme="semver", build_id=None, requested=None, run_id="boom"
        ) as version:
            assert _registers(session, defined)
            raise RuntimeError("packer failed")
    assert version == Version(1, 0, 0)
    assert _registers(session, defined) == {}


def test_registers_parse_and_order_by_run_id():
    key = register_key("Build #42/main", "abcd1234")
    assert key == "imageforge.reserve.Build-42-main.abcd1234"
    assert register_key("run-a") < register_key("run-b")
    reg = parse_register(key, f"claimed 1.2.3 {_stamp(0)}")
    assert reg is not None and reg.version == Version(1, 2, 3) and reg.state == "claimed"
    assert parse_register(key, "claimed banana now") is None
    assert parse_register("other.tag", f"choosing {_stamp(0)}") is None
    choosing = parse_register(key, f"choosing {_stamp(200)}")
    assert choosing is not None
    assert choosing.stale(time.time(), choosing_seconds=120, lease_seconds=3600)
    assert not choosing.stale(time.time(), choosing_seconds=300, lease_seconds=3600)
