"""Render image definitions into plain Packer HCL under build/<image>/.

Jinja2 with StrictUndefined: a template that names an undefined variable fails the render
instead of writing an empty string into HCL. One filter, ``hcl``, turns a Python value into an
HCL expression; strings are quoted with ``\\``, ``"``, ``${`` and ``%{`` escaped, so no value
can break out of its string or start a template interpolation.

Output is deterministic (no timestamps, sorted maps, fixed order) and ``packer fmt`` clean:
templates emit attributes through ``attrs()``, which aligns ``=`` the way ``packer fmt`` does
(runs of single-line attributes align; a multi-line attribute stands alone).

Every difference between Packer < 1.7 and >= 1.7 lives in ``PROFILES``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imageforge import tags
from imageforge.cache import cache_dir
from imageforge.config import ImageDefinition
from imageforge.errors import RenderError
from imageforge.site import Site

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = ("templates", "builders")
#: Rendered files, in the order Packer reads them (it reads every *.pkr.hcl in the folder).
OUTPUT_FILES = {
    "packer.pkr.hcl": "packer.pkr.hcl.j2",
    "variables.pkr.hcl": "variables.pkr.hcl.j2",
    "locals.pkr.hcl": "locals.pkr.hcl.j2",
    "sources.pkr.hcl": "sources.pkr.hcl.j2",
    "build.pkr.hcl": "build.pkr.hcl.j2",
}
#: Variables the build passes on Packer's command line (-var); nothing secret is among them.
BUILD_VARIABLES = (
    "image_version",
    "base_image_version",
    "source_commit",
    "pipeline_run",
    "use_azure_cli_auth",
    "sandbox_host",
    "sandbox_port",
    "sandbox_username",
    "sandbox_private_key_file",
)


@dataclass(frozen=True)
class Profile:
    """What one family of Packer versions needs. The only place the two profiles differ."""

    name: str
    description: str
    #: `packer { required_plugins { azure = ... } }` (Packer >= 1.7 with the external plugin)
    required_plugins: bool
    #: Packer 1.6's built-in azure-arm cannot publish to a gallery without a managed image.
    managed_image: bool
    #: How the gallery destination names its regions: "replication_regions" or "target_region".
    regions_syntax: str
    #: Only in the plugin: trusted launch options, the destination's storage_account_type.
    security_options: bool
    destination_storage_type: bool
    packer_constraint: str
    #: `public_ip_sku` (plugin >= 2.2.0): Azure creates no new Basic public IPs since 2025-03-31.
    public_ip_sku: bool = False
    #: `use_shallow_replication` (the plugin's shallow gallery destination): `--preview` builds.
    shallow_replication: bool = False
    #: `shared_image_gallery_destination.specialized`: Packer 1.6.6 generalizes every capture.
    specialized: bool = False


PROFILES: dict[str, Profile] = {
    "builtin": Profile(
        name="builtin",
        description="Packer < 1.7 (Debian's 1.6.6): built-in azure-arm builder",
        required_plugins=False,
        managed_image=True,
        regions_syntax="replication_regions",
        security_options=False,
        destination_storage_type=False,
        packer_constraint=">= 1.6.6, < 1.7.0",
    ),
    "plugin": Profile(
        name="plugin",
        description="Packer >= 1.9 with the external azure plugin >= 2.2",
        required_plugins=True,
        managed_image=False,
        regions_syntax="target_region",
        security_options=True,
        destination_storage_type=True,
        # Not ">= 1.10": Packer 1.10 and later are under the BSL; 1.9.x is the last MPL-2.0 line.
        packer_constraint=">= 1.9.0",
        shallow_replication=True,
        public_ip_sku=True,
        specialized=True,
    ),
}
#: 2.2.0 is the first release with `public_ip_sku` (default Standard); 2.0.x and 2.1.x always
#: create a Basic public IP (builder/azure/arm/config.go and template_factory.go at each tag).
AZURE_PLUGIN = {"source": "github.com/hashicorp/azure", "version": ">= 2.2.0"}


def profile_for_packer(version: tuple[int, int, int]) -> Profile:
    """The profile that matches a Packer version."""
    return PROFILES["builtin" if version < (1, 7, 0) else "plugin"]


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise RenderError(
            f"unknown --profile {name!r}: expected one of {', '.join(PROFILES)}"
        ) from None


#: Packer template strings used by the build templates (kept here: they contain "{{").
COMMANDS = {
    "linux_execute": "chmod +x {{ .Path }}; {{ .Vars }} sudo -E bash '{{ .Path }}'",
    "windows_sysprep_timeout": 1800,
    # actions/runner-images' restart check: done once servicing has stopped and no shutdown is
    # under way, so the next provisioner does not race Windows Update's post-reboot work.
    "windows_restart_check": (
        'powershell -NoProfile -Command "if ((-not (Get-Process TiWorker -ErrorAction '
        "SilentlyContinue)) -and (-not [System.Environment]::HasShutdownStarted)) "
        "{ Write-Output 'Restart complete' }\""
    ),
}


# -- the hcl filter and formatting helpers ------------------------------------------------


def hcl_string(value: str) -> str:
    """Quote ``value`` as an HCL string literal that Packer reads back as exactly ``value``."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("${", "$${")
        .replace("%{", "%%{")
    )
    return f'"{escaped}"'


def hcl(value: Any) -> str:
    """The one filter: a Python value as an HCL expression (strings quoted and escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return hcl_map(value)
    import jinja2

    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()  # the template's undefined-variable error, not ours
    raise RenderError(f"cannot render {type(value).__name__} value {value!r} as HCL")


@dataclass(frozen=True)
class Expr:
    """An HCL expression written by the template itself (``var.x``, ``local.y``), not quoted."""

    text: str


def _value(value: Any) -> str:
    return value.text if isinstance(value, Expr) else hcl(value)


def hcl_map(mapping: Mapping[str, Any], indent: int = 0) -> str:
    """A multi-line HCL object with sorted, quoted, aligned keys."""
    if not mapping:
        return "{}"
    pad = " " * (indent + 2)
    keys = sorted(mapping)
    width = max(len(hcl_string(k)) for k in keys)
    lines = [f"{pad}{hcl_string(k).ljust(width)} = {_value(mapping[k])}" for k in keys]
    return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"


def hcl_lines(items: Sequence[Any], indent: int = 0) -> str:
    """A multi-line HCL list, one item a line with a trailing comma."""
    pad = " " * (indent + 2)
    return "[\n" + "".join(f"{pad}{_value(v)},\n" for v in items) + " " * indent + "]"


def attrs(pairs: Iterable[tuple[str, Any] | None], indent: int = 2) -> str:
    """Attribute lines aligned as ``packer fmt`` aligns them; ``None`` pairs/values are skipped.

    Values are Python values (quoted by ``hcl``) or ``Expr`` (written as is); a value that is
    already multi-line HCL must be passed as ``Expr``.
    """
    pad = " " * indent
    out: list[str] = []
    group: list[tuple[str, str]] = []

    def flush() -> None:
        if group:
            width = max(len(k) for k, _ in group)
            out.extend(f"{pad}{k.ljust(width)} = {v}" for k, v in group)
            group.clear()

    for pair in pairs:
        if pair is None or pair[1] is None:
            continue
        key, value = pair
        text = _value(value)
        if "\n" in text:
            flush()
            out.append(f"{pad}{key} = {text}")
        else:
            group.append((key, text))
    flush()
    return "\n".join(out)


def source_name(image_name: str) -> str:
    """The Packer source name of an image (a dot would break `source.<type>.<name>`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", image_name)


# -- rendering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderResult:
    image: str
    directory: Path
    files: tuple[Path, ...]
    profile: str
    changed: bool = False


@dataclass
class Renderer:
    """Renders images with one Jinja environment (templates are compiled once).

    Templates are read from ``template_root``, by default the site's root (the repository that
    holds tasks.py, images/ and provisioners/), not from wherever the package is installed.
    """

    site: Site
    template_root: Path | None = None
    _env: Any = field(default=None, init=False, repr=False)

    @property
    def env(self) -> Any:
        if self._env is None:
            import jinja2  # lazy: jinja2 loads only when something is rendered

            root = self.template_root or self.site.root
            bytecode = cache_dir("jinja")
            env = jinja2.Environment(
                bytecode_cache=jinja2.FileSystemBytecodeCache(str(bytecode)) if bytecode else None,
                loader=jinja2.FileSystemLoader([str(root / d) for d in TEMPLATE_DIRS]),
                undefined=jinja2.StrictUndefined,
                autoescape=False,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
            )
            env.filters["hcl"] = hcl
            env.filters["format_path"] = lambda name, prefix: prefix + name
            env.globals.update(
                attrs=attrs,
                Expr=Expr,
                hcl_map=hcl_map,
                hcl_lines=hcl_lines,
                AZURE_PLUGIN=AZURE_PLUGIN,
            )
            self._env = env
        return self._env

    def context(self, image: ImageDefinition, profile: Profile) -> dict[str, Any]:
        site = self.site
        version_tags: dict[str, Any] = {
            tags.check_name(k, where="imageforge.tags"): v for k, v in site.tags.items()
        }
        version_tags.update(
            {
                tags.STAGE: "built",
                tags.IMAGE: image.name,
                tags.SOURCE_COMMIT: Expr("var.source_commit"),
                tags.PIPELINE_RUN: Expr("var.pipeline_run"),
                tags.BASE_IMAGE_VERSION: Expr("var.base_image_version"),
            }
        )
        env: list[Any] = [
            f"IMAGEFORGE_IMAGE={image.name}",
            Expr('"IMAGEFORGE_VERSION=${var.image_version}"'),
            Expr('"IMAGEFORGE_SOURCE_COMMIT=${var.source_commit}"'),
        ]
        if image.os == "linux":
            env.append("IMAGEFORGE_PACKAGES=" + " ".join(image.packages))
        else:
            env.append("IMAGEFORGE_FEATURES=" + ",".join(image.features))
        return {
            "version_tags": version_tags,
            "provisioner_env": env,
            "commands": COMMANDS,
            "image": image,
            "profile": profile,
            "site": {
                "subscription_id": site.subscription(),
                "resource_group": site.resource_group,
                "gallery": site.gallery,
                "location": site.location,
                "tags": dict(sorted(site.tags.items())),
            },
            "definition": asdict(image),
            "sandbox_source": image.os == "linux",
            "source_name": source_name(image.name),
            "site_build_dir": site.build_dir,
        }

    def render_text(self, image: ImageDefinition, profile: Profile) -> dict[str, str]:
        """Render every output file of one image into memory."""
        import jinja2

        ctx = self.context(image, profile)
        texts: dict[str, str] = {}
        for out_name, template_name in OUTPUT_FILES.items():
            try:
                template = self.env.get_template(template_name)
                texts[out_name] = template.render(ctx)
            except jinja2.UndefinedError as exc:
                where = _template_location(exc, template_name)
                raise RenderError(
                    f"{where}: undefined variable while rendering {image.name}: {exc.message}"
                ) from None
            except jinja2.TemplateSyntaxError as exc:
                raise RenderError(
                    f"{exc.filename or template_name}:{exc.lineno}: template syntax error: "
                    f"{exc.message}"
                ) from None
            except jinja2.TemplateNotFound as exc:
                raise RenderError(f"template not found: {exc.name}") from None
        return texts

    def render(self, image: ImageDefinition, profile: Profile, out_dir: Path) -> RenderResult:
        """Render one image into ``out_dir``: all files or none (written atomically)."""
        texts = self.render_text(image, profile)
        return write_outputs(image.name, profile.name, texts, out_dir)


def _template_location(exc: BaseException, default: str) -> str:
    """``file.j2:line`` of the innermost template frame (an included file or macro, too)."""
    tb = exc.__traceback__
    where = default
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{Path(filename).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def write_outputs(
    image: str, profile: str, texts: Mapping[str, str], out_dir: Path
) -> RenderResult:
    """Write rendered files atomically; unchanged files are left untouched."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    changed = False
    for name, text in texts.items():
        target = out_dir / name
        data = text.encode("utf-8")
        if target.exists() and target.read_bytes() == data:
            written.append(target)
            continue
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        changed = True
        written.append(target)
    for stale in out_dir.glob("*.pkr.hcl"):
        if stale.name not in texts:
            stale.unlink()
            changed = True
    return RenderResult(image, out_dir, tuple(written), profile, changed)
