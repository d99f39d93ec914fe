"""VM sizes that boot only one Hyper-V generation, refused as Azure refuses them.

The sandbox does not emulate VM sizes (a VM is a chroot whatever its size), but Azure checks one
thing on every VM PUT that an image definition can get wrong: whether the size can boot the
image's Hyper-V generation. A gen2 image (the sandbox's ``Debian:debian-12:12-gen2``) on a size
of a gen1-only family, or a gen1 image on a gen2-only one, is answered with 400 ``BadRequest``
"The selected VM size 'X' cannot boot Hypervisor Generation 'N'. ...". Only families documented
as supporting a single generation are listed (learn.microsoft.com/azure/virtual-machines/
generation-2); every other size is accepted.
"""

from __future__ import annotations

import re

from imageforge.sandbox.emulator.armerrors import ArmError

#: Families without generation 2 support: Basic A, A v1 and v2, D v1, D v2 (not DS v2),
#: NC v1 and NV v1.
GEN1_ONLY = re.compile(
    r"^(basic_a\d+|standard_a\d+|standard_a\d+m?_v2|standard_d\d+|standard_d\d+_v2"
    r"|standard_nc\d+r?|standard_nv\d+)(_promo)?$",
    re.IGNORECASE,
)
#: Families without generation 1 support: M v2 (Mv2, Msv2, Mdsv2), DCs v2, the A100 v4 sizes
#: and the D v6 families.
GEN2_ONLY = re.compile(
    r"^(standard_m\d+[a-z]*_v2|standard_dc\d+s_v2|standard_n[cd]\d+[a-z]*_a100_v4"
    r"|standard_d\d+[a-z]*_v6)$",
    re.IGNORECASE,
)


def generations(size: str) -> tuple[str, ...]:
    """The Hyper-V generations (``"1"``, ``"2"``) a VM size can boot."""
    if GEN1_ONLY.match(size):
        return ("1",)
    if GEN2_ONLY.match(size):
        return ("2",)
    return ("1", "2")


def check_generation(size: str, hyper_v_generation: str) -> None:
    """ArmError (400 BadRequest, Azure's message) when ``size`` cannot boot the generation
    (``"V1"`` or ``"V2"``) of the VM's image."""
    generation = hyper_v_generation.upper().removeprefix("V")
    if generation in generations(size):
        return
    raise ArmError(
        400,
        "BadRequest",
        f"The selected VM size '{size}' cannot boot Hypervisor Generation '{generation}'. If "
        "this was a Create operation please check that the Hypervisor Generation of the Image "
        "matches the Hypervisor Generation of the selected VM Size. If this was an Update "
        f"operation please select a Hypervisor Generation '{generation}' VM Size. For more "
        "information, see https://aka.ms/azuregen2vm",
    )
