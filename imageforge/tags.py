"""Tag names imageforge writes, and Azure's limits on tags.

State lives in the gallery: a version's tags say its stage, its test evidence, where it came
from and who promoted it. Resources imageforge creates carry who made them and when they
expire, so `invoke cleanup` can find what a crashed run left behind.

Azure's limits: at most 50 tags per resource; names up to 512 characters (we stay far below)
and without ``< > % & \\ ? /``; values up to 256 characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from imageforge.errors import ConfigError

PREFIX = "imageforge."
STAGE = PREFIX + "stage"
IMAGE = PREFIX + "image"
SOURCE_COMMIT = PREFIX + "source-commit"
PIPELINE_RUN = PREFIX + "pipeline-run"
BASE_IMAGE_VERSION = PREFIX + "base-image-version"
TESTS_PASSED = PREFIX + "tests-passed"
TESTS_FAILED = PREFIX + "tests-failed"
REPORT_DIGEST = PREFIX + "report-digest"
TESTED_AT = PREFIX + "tested-at"
#: Tests that ended in an error (not a failed assertion); the promote gate requires 0.
TESTS_ERRORS = PREFIX + "tests-errors"
#: Where the test report of a version is kept (path or URL).
REPORT = PREFIX + "report"
#: Prefix of the per-region smoke test verdicts on a version: imageforge.smoke.<region>.
SMOKE_PREFIX = PREFIX + "smoke."
#: On a version built with --preview (shallow replication, never promoted): "true".
PREVIEW = PREFIX + "preview"
#: The id of the version's managed image (an image file's managed_image = true): prune
#: deletes it with the version.
MANAGED_IMAGE = PREFIX + "managed-image"
#: The regions whose replication failed (cleared when replication completes).
REPLICATION_FAILED = PREFIX + "replication-failed"
PROMOTED_BY = PREFIX + "promoted-by"
PROMOTED_AT = PREFIX + "promoted-at"
PROMOTED_REGIONS = PREFIX + "promoted-regions"
REASON = PREFIX + "reason"
OVERRIDE = PREFIX + "override"
REVOKED_BY = PREFIX + "revoked-by"
REVOKED_AT = PREFIX + "revoked-at"
# on resources imageforge creates (test resource groups)
CREATED_BY = PREFIX + "created-by"
RUN = PREFIX + "run"
EXPIRES = PREFIX + "expires"
PURPOSE = PREFIX + "purpose"
#: The process that made a throw-away group (imageforge.owner): cleanup reclaims it once dead.
OWNER = PREFIX + "owner"
#: On a sandbox public IP: the port its VM's sshd listens on (the emulator writes it).
SANDBOX_SSH_PORT = PREFIX + "sandbox-ssh-port"

MAX_TAGS = 50
MAX_VALUE = 256
_FORBIDDEN_NAME = re.compile(r"[<>%&\\?/]")


def check_name(name: str, *, where: str = "tags") -> str:
    if not name or len(name) > 512 or _FORBIDDEN_NAME.search(name):
        raise ConfigError(
            f"tag name {name!r} is not allowed by Azure "
            "(1..512 characters, none of < > % & \\ ? /)",
            key=where,
        )
    return name


def clip(value: object) -> str:
    """A tag value as Azure accepts it: a string of at most 256 characters."""
    text = str(value).replace("\n", " ").strip()
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def merge(existing: Mapping[str, str] | None, updates: Mapping[str, object]) -> dict[str, str]:
    """Existing tags with ``updates`` applied (``None`` removes a tag), within Azure's limits."""
    result = dict(existing or {})
    for name, value in updates.items():
        if value is None:
            result.pop(name, None)
        else:
            result[check_name(name)] = clip(value)
    if len(result) > MAX_TAGS:
        raise ConfigError(
            f"a resource can carry at most {MAX_TAGS} tags, this one would have {len(result)}"
        )
    return result
