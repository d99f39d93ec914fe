"""Image definitions (images/*.pkrvars.hcl), validated once at load.

An image definition is a file of HCL attribute assignments (see docs/ARCHITECTURE.md for the
keys). It is read with python-hcl2 into frozen dataclasses; every problem is a ConfigError that
names the file and the key (``images/debian-12.pkrvars.hcl: target_regions[1].replicas: ...``).

Site settings (the gallery, directories, Packer, the sandbox) are imageforge/site.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imageforge import hclio, regions
from imageforge.errors import ConfigError
from imageforge.hclkeys import KeyReader as _Reader
from imageforge.kinds import OS_TYPES, OsName
from imageforge.versions import SCHEMES

HYPER_V_GENERATIONS = ("V1", "V2")
SECURITY_TYPES = (
    "Standard",
    "TrustedLaunchSupported",
    "TrustedLaunch",
    "TrustedLaunchAndConfidentialVmSupported",
    "ConfidentialVmSupported",
    "ConfidentialVM",
)
OS_STATES = ("Generalized", "Specialized")
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
COMMUNICATORS = {"linux": "ssh", "windows": "winrm"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Za-z0-9_]+$")
_SCRIPT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(sh|ps1)$")


@dataclass(frozen=True)
class BaseImageRef:
    publisher: str
    offer: str
    sku: str
    version: str = "latest"

    def urn(self) -> str:
        return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"


@dataclass(frozen=True)
class GalleryImageSpec:
    name: str
    publisher: str
    offer: str
    sku: str
    hyper_v_generation: str
    security_type: str
    os_state: str = "Generalized"


@dataclass(frozen=True)
class BuildSpec:
    region: str
    vm_size: str
    allowed_vm_sizes: tuple[str, ...]


@dataclass(frozen=True)
class Communicator:
    type: str
    username: str


@dataclass(frozen=True)
class TargetRegion:
    name: str
    replicas: int
    storage_account_type: str


@dataclass(frozen=True)
class TestSpec:
    suite: str
    vm_size: str
    required_packages: tuple[str, ...] = ()
    forbidden_packages: tuple[str, ...] = ()
    required_features: tuple[str, ...] = ()
    #: Kernel parameters the image configures for boot (/etc/sysctl.d), name -> value.
    sysctl: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImageDefinition:
    name: str
    os: OsName
    description: str
    version_scheme: str
    base_image: BaseImageRef
    gallery_image: GalleryImageSpec
    build: BuildSpec
    communicator: Communicator
    target_regions: tuple[TargetRegion, ...]
    provisioners: tuple[str, ...]
    test: TestSpec
    path: Path = field(compare=False)
    packages: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    #: ``managed_image = true``: also a managed image (Microsoft.Compute/images) of each
    #: version, in the build region, kept with the version (tag imageforge.managed-image).
    managed_image: bool = False

    @property
    def specialized(self) -> bool:
        """``gallery_image.os_state = "Specialized"``: built without generalization, its VMs
        made without osProfile (they keep the image's accounts and host keys)."""
        return self.gallery_image.os_state == "Specialized"

    @property
    def os_type(self) -> str:
        """The OS type as Azure spells it (Linux, Windows)."""
        return self.os.capitalize()

    def region(self, name: str) -> TargetRegion:
        wanted = regions.normalize(name)
        for region in self.target_regions:
            if region.name == wanted:
                return region
        names = ", ".join(r.name for r in self.target_regions)
        raise ConfigError(
            f"region {name!r} is not a target region of image {self.name} ({names})",
            path=str(self.path),
            key="target_regions",
        )


_SYSCTL_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_*-]+)+$")


def _sysctl(ts: _Reader) -> tuple[tuple[str, str], ...]:
    value = ts.raw("sysctl", {})
    if not isinstance(value, dict):
        raise ts.error("sysctl", f"expected an object of name = value, got {value!r}")
    settings = []
    for name, setting in value.items():
        if not _SYSCTL_NAME.match(str(name)):
            raise ts.error(f"sysctl.{name}", "is not a kernel parameter name (like kernel.x)")
        if isinstance(setting, bool) or not isinstance(setting, str | int):
            raise ts.error(f"sysctl.{name}", f"expected a string or number, got {setting!r}")
        settings.append((str(name), str(setting)))
    return tuple(settings)


def load_image_file(path: Path | str, *, repo_root: Path | None = None) -> ImageDefinition:
    """Load and validate one image definition file."""
    path = Path(path)
    shown = str(path)
    data = hclio.load(path)
    root = repo_root or path.resolve().parent.parent
    r = _Reader(data, shown)

    name = r.text("name")
    if not _NAME.match(name):
        raise r.error("name", f"{name!r} is not a valid image name (letters, digits, . _ -)")
    stem = path.name.removesuffix(".pkrvars.hcl")
    if name != stem:
        raise r.error("name", f"{name!r} does not match the file name {path.name!r}")
    os_name = next(o for o in OS_TYPES if o == r.text("os", choices=OS_TYPES))
    description = r.text("description", "")
    scheme = r.text("version_scheme", choices=SCHEMES)

    b = r.obj("base_image")
    base = BaseImageRef(b.text("publisher"), b.text("offer"), b.text("sku"), b.text("version"))
    b.done()

    g = r.obj("gallery_image")
    gallery = GalleryImageSpec(
        name=g.text("name"),
        publisher=g.text("publisher"),
        offer=g.text("offer"),
        sku=g.text("sku"),
        hyper_v_generation=g.text("hyper_v_generation", choices=HYPER_V_GENERATIONS),
        security_type=g.text("security_type", choices=SECURITY_TYPES),
        os_state=g.text("os_state", choices=OS_STATES),
    )
    if gallery.os_state == "Specialized" and os_name == "windows":
        raise g.error(
            "os_state",
            "Specialized is supported for Linux images only: a Windows VM made without "
            "osProfile has no administrator imageforge could test it as (Run Command adds a "
            "per-run SSH key on Linux; nothing like it is built for WinRM)",
        )
    if not _NAME.match(gallery.name):
        raise g.error("name", f"{gallery.name!r} is not a valid gallery image name")
    g.done()

    bb = r.obj("build")
    build = BuildSpec(bb.text("region"), bb.text("vm_size"), bb.strings("allowed_vm_sizes", []))
    if not regions.is_region(build.region):
        raise bb.error("region", f"unknown Azure region {build.region!r}")
    build = BuildSpec(regions.normalize(build.region), build.vm_size, build.allowed_vm_sizes)
    for key, size in [("vm_size", build.vm_size)] + [
        (f"allowed_vm_sizes[{i}]", s) for i, s in enumerate(build.allowed_vm_sizes)
    ]:
        if not _VM_SIZE.match(size):
            raise bb.error(key, f"{size!r} is not an Azure VM size (e.g. Standard_D2s_v5)")
    if build.allowed_vm_sizes and build.vm_size not in build.allowed_vm_sizes:
        raise bb.error("vm_size", f"{build.vm_size!r} is not in build.allowed_vm_sizes")
    bb.done()

    c = r.obj("communicator")
    comm = Communicator(c.text("type", choices=("ssh", "winrm")), c.text("username"))
    if comm.type != COMMUNICATORS[os_name]:
        raise c.error(
            "type",
            f"a {os_name} image must use the {COMMUNICATORS[os_name]} communicator, "
            f"not {comm.type}",
        )
    c.done()

    targets: list[TargetRegion] = []
    for t in r.objs("target_regions"):
        region_name = t.text("name")
        if not regions.is_region(region_name):
            raise t.error("name", f"unknown Azure region {region_name!r}")
        region = TargetRegion(
            regions.normalize(region_name),
            t.number("replicas", 1, 100),
            t.text("storage_account_type", choices=STORAGE_ACCOUNT_TYPES),
        )
        if any(existing.name == region.name for existing in targets):
            raise t.error("name", f"region {region.name!r} is listed twice")
        targets.append(region)
        t.done()
    if build.region not in {t.name for t in targets}:
        raise r.error(
            "target_regions",
            f"must include the build region {build.region!r} (Azure publishes there first)",
        )

    provisioners = r.strings("provisioners")
    for index, script in enumerate(provisioners):
        key = f"provisioners[{index}]"
        if not _SCRIPT.match(script):
            raise r.error(key, f"{script!r} is not a script file name (*.sh or *.ps1)")
        wanted = ".sh" if os_name == "linux" else ".ps1"
        if not script.endswith(wanted):
            raise r.error(key, f"{script!r}: a {os_name} image runs {wanted} scripts")
        if script in ("generalize.sh", "specialize.sh", "Invoke-Sysprep.ps1"):
            raise r.error(key, f"{script} runs last by itself; do not list it")
        if not (root / "provisioners" / os_name / script).is_file():
            raise r.error(key, f"provisioners/{os_name}/{script} does not exist")

    packages = r.strings("packages", [])
    features = r.strings("features", [])
    if packages and os_name != "linux":
        raise r.error("packages", "packages are installed on Linux images; use features")
    if features and os_name != "windows":
        raise r.error("features", "features exist only on Windows images")
    managed_image = r.flag("managed_image", False)
    if managed_image and gallery.security_type not in ("Standard", "TrustedLaunchSupported"):
        raise r.error(
            "managed_image",
            f"a managed image cannot be made for security type {gallery.security_type} "
            "(only Standard or TrustedLaunchSupported: Azure's managed images have no trusted "
            "launch or confidential VM support)",
        )
    if managed_image and gallery.os_state == "Specialized":
        # packer-plugin-azure's config.go refuses the pair too: "A managed image ... can not be
        # Specialized"; Azure makes managed images from generalized VMs only.
        raise r.error(
            "managed_image",
            "a managed image cannot be made of a Specialized image (Azure makes managed images "
            "from generalized VMs only; packer-plugin-azure refuses the pair)",
        )

    ts = r.obj("test")
    test = TestSpec(
        suite=ts.text("suite"),
        vm_size=ts.text("vm_size"),
        required_packages=ts.strings("required_packages", []),
        forbidden_packages=ts.strings("forbidden_packages", []),
        required_features=ts.strings("required_features", []),
        sysctl=_sysctl(ts),
    )
    if test.sysctl and os_name != "linux":
        raise ts.error("sysctl", "sysctl settings exist only on Linux images")
    if test.required_features and os_name != "windows":
        raise ts.error("required_features", "features exist only on Windows images")
    if not (root / test.suite).is_dir():
        raise ts.error("suite", f"{test.suite} is not a directory")
    if not _VM_SIZE.match(test.vm_size):
        raise ts.error("vm_size", f"{test.vm_size!r} is not an Azure VM size")
    overlap = set(test.required_packages) & set(test.forbidden_packages)
    if overlap:
        raise ts.error("forbidden_packages", f"also required: {', '.join(sorted(overlap))}")
    ts.done()
    r.done()

    return ImageDefinition(
        name=name,
        os=os_name,
        description=description,
        version_scheme=scheme,
        base_image=base,
        gallery_image=gallery,
        build=build,
        communicator=comm,
        target_regions=tuple(targets),
        provisioners=provisioners,
        test=test,
        path=path,
        packages=packages,
        features=features,
        managed_image=managed_image,
    )


def image_files(images_dir: Path) -> list[Path]:
    """The image definition files, in the order of their image names (debian-12 before
    debian-12-hardened, which a plain file-name sort would reverse)."""
    return sorted(images_dir.glob("*.pkrvars.hcl"), key=lambda p: p.name.split(".pkrvars.")[0])


def select_images(
    images_dir: Path, *, names: Sequence[str] = (), os_name: str | None = None
) -> list[ImageDefinition]:
    """Load the images a task asked for: by ``--image`` names, else by ``--os`` (or all)."""
    if os_name is not None and not os_name.strip():
        raise ConfigError("--os is empty: expected linux, windows or all")
    if os_name not in (None, "all", *OS_TYPES):
        raise ConfigError(f"unknown --os {os_name!r}: expected linux, windows or all")
    files = {p.name.removesuffix(".pkrvars.hcl"): p for p in image_files(images_dir)}
    if not files:
        raise ConfigError(f"no image definitions (*.pkrvars.hcl) in {images_dir}")
    if names:
        missing = [n for n in names if n not in files]
        if missing:
            raise ConfigError(
                f"unknown --image {missing[0]!r}: {images_dir} has {', '.join(sorted(files))}"
            )
        chosen = [files[n] for n in dict.fromkeys(names)]
    else:
        chosen = list(files.values())
    root = images_dir.resolve().parent
    images = [load_image_file(p, repo_root=root) for p in chosen]
    if os_name in OS_TYPES:
        images = [i for i in images if i.os == os_name]
        if names and not images:
            raise ConfigError(f"none of the images asked for is a {os_name} image")
    return images
