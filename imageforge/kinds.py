"""The closed sets of names imageforge passes around: targets, operating systems, stages.

Each is a ``Literal`` (for mypy) and a tuple of its values (for checking input once, at the
boundary: a flag, a setting, an image file, a tag).
"""

from __future__ import annotations

from typing import Literal, get_args

Target = Literal["azure", "sandbox"]
OsName = Literal["linux", "windows"]
#: A version's ``imageforge.stage`` tag ("" when imageforge never staged it).
Stage = Literal["", "built", "tested", "failed", "replicated", "promoted", "revoked"]

TARGETS: tuple[Target, ...] = get_args(Target)
OS_TYPES: tuple[OsName, ...] = get_args(OsName)
