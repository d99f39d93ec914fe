"""The HCL parse cache only makes loading faster: it never returns a stale or broken parse."""

from __future__ import annotations

import pytest

from imageforge import hclio
from imageforge.errors import ConfigError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("IMAGEFORGE_CACHE_DIR", str(folder))
    return folder / "hcl"


def test_a_parse_is_cached_and_served_from_the_cache(tmp_path, cache):
    path = tmp_path / "x.pkrvars.hcl"
    path.write_text('name = "a"\n')
    assert hclio.load(path) == {"name": "a"}
    assert len(list(cache.glob("*.json"))) == 1
    assert hclio.load(path) == {"name": "a"}


def test_an_edited_file_is_parsed_again_not_served_stale(tmp_path, cache):
    path = tmp_path / "x.pkrvars.hcl"
    path.write_text('name = "a"\n')
    hclio.load(path)
    path.write_text('name = "b"\n')
    assert hclio.load(path) == {"name": "b"}


def test_a_corrupt_cache_entry_is_ignored(tmp_path, cache):
    path = tmp_path / "x.pkrvars.hcl"
    path.write_text('name = "a"\n')
    hclio.load(path)
    for entry in cache.glob("*.json"):
        entry.write_text("{not json")
    assert hclio.load(path) == {"name": "a"}


def test_malformed_hcl_is_never_cached(tmp_path, cache):
    path = tmp_path / "x.pkrvars.hcl"
    path.write_text("name = = 1\n")
    with pytest.raises(ConfigError, match="line 1"):
        hclio.load(path)
    assert list(cache.glob("*.json")) == []
    with pytest.raises(ConfigError):
        hclio.load(path)
