"""The ``lock_gallery`` setting: YAML's booleans, and the environment variable read by its own
text (Invoke would read "false" as true for a boolean default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageforge.errors import ConfigError
from imageforge.site import LOCK_GALLERY_ENV, Site

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("given", "wanted"), [(True, True), (False, False), ("no", False)])
def test_the_setting_from_invoke_yaml(monkeypatch, given, wanted):
    monkeypatch.delenv(LOCK_GALLERY_ENV, raising=False)
    assert Site.from_config({"lock_gallery": given}, ROOT).lock_gallery is wanted
    assert Site.from_config({}, ROOT).lock_gallery is True


@pytest.mark.parametrize(("text", "wanted"), [("false", False), ("0", False), ("TRUE", True)])
def test_the_environment_variable_counts_by_its_text(monkeypatch, text, wanted):
    monkeypatch.setenv(LOCK_GALLERY_ENV, text)
    # what Invoke hands over for a boolean default: anything but "" and "0" is True
    assert Site.from_config({"lock_gallery": text not in ("", "0")}, ROOT).lock_gallery is wanted


@pytest.mark.parametrize(
    ("env", "given", "message"),
    [
        (None, "maybe", "imageforge.lock_gallery: 'maybe' is not true or false"),
        ("sometimes", True, "INVOKE_IMAGEFORGE_LOCK_GALLERY: 'sometimes' is not true or false"),
    ],
)
def test_anything_else_is_a_one_line_error_naming_the_setting(monkeypatch, env, given, message):
    if env is None:
        monkeypatch.delenv(LOCK_GALLERY_ENV, raising=False)
    else:
        monkeypatch.setenv(LOCK_GALLERY_ENV, env)
    with pytest.raises(ConfigError) as info:
        Site.from_config({"lock_gallery": given}, ROOT)
    assert str(info.value) == message
