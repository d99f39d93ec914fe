"""imageforge.versions: Azure's Major.Minor.Patch with int32 parts, the semver and date schemes."""

from __future__ import annotations

import datetime as dt

import pytest

from imageforge.errors import VersionError
from imageforge.versions import (
    INT32_MAX,
    StaticVersionSource,
    Version,
    VersionSource,
    next_version,
)

JAN_5 = dt.date(2026, 1, 5)


def v(text: str) -> Version:
    return Version.parse(text)


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("0.0.0", (0, 0, 0)),
        ("1.4.0", (1, 4, 0)),
        (f"{INT32_MAX}.{INT32_MAX}.{INT32_MAX}", (INT32_MAX, INT32_MAX, INT32_MAX)),
    ],
)
def test_parse_accepts_three_int32_parts(text, parts):
    assert Version.parse(text) == Version(*parts)


@pytest.mark.parametrize(
    "text",
    ["1.2", "1.2.3.4", "-1.0.0", "1.-2.3", "a.b.c", "1.2.x", "", "1..2", "v1.2.3", "1.2.3 4"],
)
def test_parse_rejects_what_is_not_major_minor_patch(text):
    with pytest.raises(VersionError, match="expected Major.Minor.Patch"):
        Version.parse(text)


@pytest.mark.parametrize("text", [" 1.0.0", "1.0.0 ", "1.0.0\n", "\t1.4.0", " "])
def test_parse_rejects_whitespace_around_the_version(text):
    # It used to be trimmed, while callers went on with the text as given (" 1.0.0").
    with pytest.raises(VersionError) as err:
        Version.parse(text, where="--version")
    message = str(err.value)
    assert message.startswith(f"--version: invalid version {text!r}: leading or trailing ")
    assert "\n" not in message


@pytest.mark.parametrize("text", ["2147483648.0.0", "0.2147483648.0", "0.0.99999999999"])
def test_parse_rejects_parts_above_int32(text):
    with pytest.raises(VersionError, match=r"at most 2147483647 \(a 32-bit signed integer\)"):
        Version.parse(text)


def test_parse_rejects_non_ascii_digits():
    # "١.٢.٣" is 1.2.3 in Arabic-Indic digits: int() reads it, Azure does not.
    with pytest.raises(VersionError, match="expected Major.Minor.Patch"):
        Version.parse("\u0661.\u0662.\u0663")


def test_parse_error_names_where_and_the_value():
    with pytest.raises(VersionError) as err:
        Version.parse("1.2", where="--version")
    assert str(err.value).startswith("--version: invalid version '1.2': ")
    assert "\n" not in str(err.value)


def test_parse_rejects_non_strings():
    with pytest.raises(VersionError):
        Version.parse(None)  # type: ignore[arg-type]


def test_versions_order_numerically_not_as_text():
    assert sorted([v("1.10.0"), v("1.9.0"), v("1.2.10"), v("1.2.9")]) == [
        v("1.2.9"),
        v("1.2.10"),
        v("1.9.0"),
        v("1.10.0"),
    ]


def test_str_round_trips():
    assert str(v("2026.105.4711")) == "2026.105.4711"


# --- semver scheme -----------------------------------------------------------------------


def test_semver_first_version_is_1_0_0():
    assert next_version("semver", []) == v("1.0.0")


def test_semver_bumps_the_patch_of_the_highest_version():
    existing = [v("1.2.9"), v("1.10.0"), v("1.2.10"), v("0.9.99")]
    assert next_version("semver", existing) == v("1.10.1")


def test_semver_refuses_to_bump_past_int32():
    with pytest.raises(VersionError, match="patch would exceed 2147483647"):
        next_version("semver", [Version(1, 0, INT32_MAX)])


# --- date scheme -------------------------------------------------------------------------


def test_date_scheme_is_year_monthday_counter():
    assert next_version("date", [], today=JAN_5) == v("2026.105.1")


def test_date_scheme_month_and_day_form_one_integer():
    assert next_version("date", [], today=dt.date(2026, 12, 31)) == v("2026.1231.1")


def test_date_counter_is_one_above_the_highest_of_the_same_day():
    existing = [v("2026.105.1"), v("2026.105.7"), v("2026.104.40"), v("2026.106.90")]
    assert next_version("date", existing, today=JAN_5) == v("2026.105.8")


def test_date_scheme_uses_the_build_id_when_given():
    assert next_version("date", [v("2026.105.1")], today=JAN_5, build_id="4711") == v(
        "2026.105.4711"
    )


def test_date_scheme_accepts_an_integer_build_id():
    assert next_version("date", [], today=JAN_5, build_id=12) == v("2026.105.12")


def test_date_scheme_with_an_empty_build_id_falls_back_to_the_counter():
    assert next_version("date", [v("2026.105.3")], today=JAN_5, build_id="") == v("2026.105.4")


def test_date_scheme_refuses_a_reused_build_id():
    with pytest.raises(VersionError, match=r"2026\.105\.4711 already exists"):
        next_version("date", [v("2026.105.4711")], today=JAN_5, build_id="4711")


def test_date_scheme_refuses_a_build_id_that_is_not_an_integer():
    with pytest.raises(VersionError, match="build id 'abc' is not an integer"):
        next_version("date", [], today=JAN_5, build_id="abc")


@pytest.mark.parametrize("build_id", ["-1", str(INT32_MAX + 1)])
def test_date_scheme_refuses_a_build_id_outside_int32(build_id):
    with pytest.raises(VersionError, match="out of range 0..2147483647"):
        next_version("date", [], today=JAN_5, build_id=build_id)


def test_date_scheme_defaults_to_today_in_utc():
    today = dt.datetime.now(dt.UTC).date()
    got = next_version("date", [])
    assert (got.major, got.minor, got.patch) == (today.year, today.month * 100 + today.day, 1)


def test_unknown_scheme_is_a_version_error_naming_it():
    with pytest.raises(VersionError, match="unknown version scheme 'calver'"):
        next_version("calver", [])


# --- version sources ---------------------------------------------------------------------


def test_static_source_supplies_its_versions_to_the_scheme():
    source: VersionSource = StaticVersionSource((v("1.0.0"), v("1.0.3")))
    assert next_version("semver", source.existing_versions("debian-12")) == v("1.0.4")


def test_any_object_with_existing_versions_is_a_source():
    class PerImage:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def existing_versions(self, image_name: str) -> list[Version]:
            self.asked.append(image_name)
            return {"debian-12": [v("2.3.4")]}.get(image_name, [])

    source: VersionSource = PerImage()
    assert next_version("semver", source.existing_versions("debian-12")) == v("2.3.5")
    assert next_version("semver", source.existing_versions("windows-2022")) == v("1.0.0")
    assert source.asked == ["debian-12", "windows-2022"]
