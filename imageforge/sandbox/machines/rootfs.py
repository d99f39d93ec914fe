"""The sandbox's base root filesystems: a debootstrapped Debian tree per suite, built once.

A base tree lives at ``<cache_dir>/<suite>-<digest>/`` where the digest covers the package list,
the debootstrap variant and the recipe version below, so changing what an image contains builds
a new tree instead of silently reusing an old one. A build runs debootstrap into a temporary
directory next to the final one and renames it into place only when it is complete, so a
crashed or interrupted build never leaves a tree that looks finished. Concurrent builders (two
threads, two emulators, two test sessions on one machine) serialise on a file lock.

The mirror is not hard-coded: it comes from the host's apt sources (deb822
``/etc/apt/sources.list.d/*.sources`` and one-line ``sources.list`` files), and the image's own
apt sources point at the same mirror, so provisioners can ``apt-get install`` inside a VM.

Base trees are never modified or deleted after the rename: VMs run on an overlay with the base
tree as its lowest layer, and captured images name the base tree they were made over (see
``vm.py`` and ``layers.py``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from imageforge.errors import SandboxError

#: What an Azure Debian image has that the project needs, on top of debootstrap's minbase.
#: waagent is Debian's Azure Linux agent (``waagent -force -deprovision+user`` generalizes).
PACKAGES: tuple[str, ...] = (
    "apt-utils",
    "ca-certificates",
    "gnupg",
    "iproute2",
    "openssh-server",
    "procps",
    "python3",
    "sudo",
    "systemd-timesyncd",
    "waagent",
)

VARIANT = "minbase"

#: Bump when the way a base tree is prepared changes, so old caches are not reused.
RECIPE_VERSION = "1"

#: Where apt keeps the Debian archive keyring (in the host and in the image).
ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

#: Prefix of every temporary directory in the cache (``reap`` removes stale ones).
TMP_PREFIX = ".tmp-"

#: Seconds a debootstrap may take before it is considered hung.
DEBOOTSTRAP_TIMEOUT = 1800

SOURCES_FILES = (Path("/etc/apt/sources.list"),)
SOURCES_DIR = Path("/etc/apt/sources.list.d")


@dataclass(frozen=True)
class AptSource:
    """One apt source entry: a mirror URI, its suites and components."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None


def parse_deb822(text: str) -> list[AptSource]:
    """Parse deb822 ``.sources`` text into the ``deb`` entries it enables."""
    entries: list[AptSource] = []
    for stanza in _stanzas(text):
        types = stanza.get("types", "").split()
        if "deb" not in types or stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        signed_by = stanza.get("signed-by", "").strip() or None
        if signed_by and "\n" in signed_by:  # an inline key block: not a path we can reuse
            signed_by = None
        for uri in stanza.get("uris", "").split():
            entries.append(AptSource(uri.rstrip("/"), suites, components, signed_by))
    return entries


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if raw[0] in " \t" and key is not None:
            current[key] += "\n" + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_one_line(text: str) -> list[AptSource]:
    """Parse classic one-line ``sources.list`` text (``deb [opts] uri suite comp...``)."""
    entries: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        signed_by = None
        rest = line[4:].strip()
        if rest.startswith("["):
            options, _, rest = rest[1:].partition("]")
            for option in options.split():
                name, _, value = option.partition("=")
                if name == "signed-by":
                    signed_by = value
        parts = rest.split()
        if len(parts) < 2:
            continue
        entries.append(AptSource(parts[0].rstrip("/"), (parts[1],), tuple(parts[2:]), signed_by))
    return entries


def host_apt_sources(
    files: tuple[Path, ...] = SOURCES_FILES, directory: Path = SOURCES_DIR
) -> list[AptSource]:
    """Read every apt source the host has configured, in apt's order."""
    entries: list[AptSource] = []
    paths = list(files)
    if directory.is_dir():
        paths += sorted(directory.glob("*.list")) + sorted(directory.glob("*.sources"))
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        entries += parse_deb822(text) if path.suffix == ".sources" else parse_one_line(text)
    return entries


def image_sources(suite: str, host: list[AptSource]) -> list[AptSource]:
    """The apt sources a ``suite`` image gets: the host's mirrors, for that suite.

    Entries for the suite itself and its ``-updates``/``-security`` companions are taken as the
    host has them. When the host runs another suite, its mirrors are reused with the requested
    suite's names.
    """
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    chosen: list[AptSource] = []
    for entry in host:
        suites = tuple(s for s in entry.suites if s in wanted)
        if suites:
            chosen.append(AptSource(entry.uri, suites, entry.components, entry.signed_by))
    if chosen:
        return chosen
    for entry in host:
        if not entry.suites or entry.suites[0].startswith("/"):
            continue  # flat repositories cannot be re-targeted
        security = "security" in entry.uri or any(s.endswith("-security") for s in entry.suites)
        suites = (f"{suite}-security",) if security else (suite, f"{suite}-updates")
        if all(existing.uri != entry.uri for existing in chosen):
            chosen.append(AptSource(entry.uri, suites, entry.components or ("main",), None))
    return chosen


def debootstrap_mirror(suite: str, sources: list[AptSource]) -> str:
    """The mirror debootstrap fetches ``suite`` from: the first source that carries it."""
    for entry in sources:
        if suite in entry.suites:
            return entry.uri
    raise SandboxError(
        f"no apt source on this machine carries Debian suite {suite!r}; "
        f"add a mirror to /etc/apt/sources.list.d/ (deb822) or /etc/apt/sources.list"
    )


def render_deb822(sources: list[AptSource], root: Path | None = None) -> str:
    """Render sources as a deb822 file; Signed-By is kept when ``root`` has that keyring."""
    stanzas = []
    for entry in sources:
        lines = [
            "Types: deb",
            f"URIs: {entry.uri}",
            f"Suites: {' '.join(entry.suites)}",
            f"Components: {' '.join(entry.components or ('main',))}",
        ]
        keyring = entry.signed_by or ARCHIVE_KEYRING
        if root is None or (root / keyring.lstrip("/")).exists():
            lines.append(f"Signed-By: {keyring}")
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def cache_key(suite: str, packages: tuple[str, ...] = PACKAGES, variant: str = VARIANT) -> str:
    """The cache directory name of a base tree: ``<suite>-<digest of what it contains>``."""
    recipe = "\n".join([RECIPE_VERSION, variant, *sorted(packages)])
    return f"{suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


class RootfsCache:
    """Builds and hands out base root filesystems under one cache directory. Thread-safe."""

    def __init__(self, cache_dir: Path, *, packages: tuple[str, ...] = PACKAGES) -> None:
        self.cache_dir = Path(cache_dir)
        self.packages = packages
        self._lock = threading.Lock()

    def path(self, suite: str) -> Path:
        """Where the base tree of ``suite`` lives (whether or not it is built yet)."""
        return self.cache_dir / cache_key(suite, self.packages)

    def ensure(self, suite: str) -> Path:
        """Return the base tree of ``suite``, building it first if the cache lacks it."""
        final = self.path(suite)
        if _complete(final):
            return final
        with self._lock:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with _FileLock(self.cache_dir / f"{final.name}.lock"):
                if _complete(final):  # another builder finished while we waited
                    return final
                self._remove_stale(final.name)
                self._build(suite, final)
        return final

    def reap(self) -> list[str]:
        """Remove temporary build directories no builder holds; return their paths."""
        reaped: list[str] = []
        if not self.cache_dir.is_dir():
            return reaped
        for lock_path in sorted(self.cache_dir.glob("*.lock")):
            name = lock_path.name[: -len(".lock")]
            lock = _FileLock(lock_path, blocking=False)
            if not lock.acquire():
                continue  # a build is running
            try:
                reaped += self._remove_stale(name)
            finally:
                lock.release()
        return reaped

    def _remove_stale(self, name: str) -> list[str]:
        removed = []
        for stale in self.cache_dir.glob(f"{TMP_PREFIX}{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(str(stale))
        return removed

    def _build(self, suite: str, final: Path) -> None:
        if shutil.which("debootstrap") is None:
            raise SandboxError(
                "debootstrap is not installed; the sandbox builds its Debian base images with it "
                "(install the Debian package: apt-get install debootstrap)"
            )
        host = host_apt_sources()
        sources = image_sources(suite, host)
        mirror = debootstrap_mirror(suite, sources)
        tmp = self.cache_dir / f"{TMP_PREFIX}{final.name}-{os.getpid()}-{time.monotonic_ns()}"
        debs = self.cache_dir / "debs"
        debs.mkdir(exist_ok=True)
        log = self.cache_dir / f"{final.name}.log"
        argv = [
            "debootstrap",
            f"--variant={VARIANT}",
            f"--include={','.join(self.packages)}",
            f"--cache-dir={debs}",
            suite,
            str(tmp),
            mirror,
        ]
        started = time.monotonic()
        try:
            with log.open("w") as out:
                out.write(f"# {' '.join(argv)}\n")
                out.flush()
                result = subprocess.run(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=DEBOOTSTRAP_TIMEOUT,
                    check=False,
                )
            if result.returncode != 0:
                raise SandboxError(
                    f"debootstrap of Debian {suite} from {mirror} failed "
                    f"(exit {result.returncode}; log: {log})"
                )
            prepare_base(tmp, sources)
            with log.open("a") as out:
                out.write(f"# built in {time.monotonic() - started:.1f}s\n")
            os.rename(tmp, final)
        except subprocess.TimeoutExpired as err:
            raise SandboxError(
                f"debootstrap of Debian {suite} timed out after {DEBOOTSTRAP_TIMEOUT}s (log: {log})"
            ) from err
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def prepare_base(root: Path, sources: list[AptSource]) -> None:
    """Turn a fresh debootstrap tree into a generalized, marketplace-like base image.

    The apt sources point at the host's mirror (deb822, as Debian 12 images have them); SSH
    host keys, the machine id, the hostname and resolv.conf are removed so every VM gets its
    own at first boot, as a generalized Azure image would; downloaded packages are dropped.
    """
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    sources_dir = root / "etc/apt/sources.list.d"
    sources_dir.mkdir(parents=True, exist_ok=True)
    (sources_dir / "debian.sources").write_text(render_deb822(sources, root))
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    machine_id = root / "etc/machine-id"
    machine_id.unlink(missing_ok=True)
    machine_id.write_text("")
    machine_id.chmod(0o444)
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
        for path in root.glob(pattern):
            path.unlink()


def _complete(path: Path) -> bool:
    """A base tree exists only once complete (it is renamed into place); check it is whole."""
    return (path / "etc/os-release").exists() and (path / "usr/sbin/sshd").exists()


class _FileLock:
    """An exclusive ``flock`` on a file; released when closed (or when the process dies)."""

    def __init__(self, path: Path, *, blocking: bool = True) -> None:
        self.path = path
        self.blocking = blocking
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> _FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
