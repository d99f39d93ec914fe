"""Packer: find it, learn its version, and run fmt, validate and build through the runner.

``packer build`` never gets ``-force``: on azure-arm it would delete an existing gallery
version of the same name instead of failing.

Commands always carry ``-color=false``; Packer never gets a secret on its command line (it
reads credentials from its environment). The artifact of a build is read from the manifest
post-processor's file, which is removed before each build so a stale one cannot be mistaken
for the new artifact.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageforge.errors import PackerError, ToolError
from imageforge.process import ProcessRunner, SubprocessRunner, run_checked

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
ON_ERROR_MODES = ("cleanup", "abort", "ask", "run-cleanup-provisioner")


@dataclass(frozen=True)
class Artifact:
    builder_type: str
    artifact_id: str
    custom_data: Mapping[str, Any]


@dataclass
class Packer:
    """One Packer binary, run from ``cwd`` (the repository root: provisioner paths are relative)."""

    binary: str = "packer"
    cwd: Path = field(default_factory=Path.cwd)
    runner: ProcessRunner = field(default_factory=SubprocessRunner)
    _path: str | None = field(default=None, init=False, repr=False)
    _version: tuple[int, int, int] | None = field(default=None, init=False, repr=False)
    _asking: threading.Thread | None = field(default=None, init=False, repr=False)

    def path(self) -> str:
        if self._path is None:
            found = shutil.which(self.binary)
            if not found:
                raise PackerError(
                    f"Packer is not installed (no {self.binary!r} on PATH): run `invoke setup` "
                    f"or set imageforge.packer to its path"
                )
            self._path = found
        return self._path

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("CHECKPOINT_DISABLE", "1")  # no phoning home for version checks
        env.pop("PACKER_LOG", None)
        env.update(extra or {})
        return env

    def version(self) -> tuple[int, int, int]:
        if self._asking is not None:
            self._asking.join()
            self._asking = None
        if self._version is None:
            self._version = self._ask_version()
        return self._version

    def version_soon(self) -> None:
        """Start asking Packer its version in a thread (`packer version` takes ~0.1 s), so that
        the caller can do other work meanwhile; ``version()`` waits for the answer. Nothing is
        raised here: when Packer is missing or does not answer, ``version()`` (and ``path()``)
        raise what they always do, where the caller asks."""
        if self._version is not None or self._asking is not None:
            return
        try:
            self.path()
        except PackerError:
            return
        self._asking = threading.Thread(target=self._learn_version, name="imageforge-packer")
        self._asking.start()

    def _learn_version(self) -> None:
        # a failure is left to version(), which asks again and raises it where it is asked
        with contextlib.suppress(Exception):
            self._version = self._ask_version()

    def _ask_version(self) -> tuple[int, int, int]:
        result = self.runner([self.path(), "version"], cwd=self.cwd, env=self.env(), echo=False)
        match = _VERSION.search(result.output)
        if result.returncode != 0 or not match:
            raise PackerError(
                f"cannot tell the version of {self.path()}: {result.output.strip()[:200]}"
            )
        return (int(match[1]), int(match[2]), int(match[3]))

    def fmt_check(self, directory: Path) -> list[str]:
        """Files `packer fmt -check` would change (empty when the folder is fmt clean)."""
        result = self.runner(
            [self.path(), "fmt", "-check", str(directory)], cwd=self.cwd, env=self.env(), echo=False
        )
        if result.returncode == 0:
            return []
        files = [ln.strip() for ln in result.output.splitlines() if ln.strip().endswith(".hcl")]
        return files or [result.output.strip()[:200]]

    def init(self, directory: Path) -> None:
        """`packer init`: install the plugins the folder's ``required_plugins`` name (Packer
        >= 1.7). Plugins already installed are kept; offline, they must be there already."""
        argv = [self.path(), "init", str(directory)]
        result = self.runner(argv, cwd=self.cwd, env=self.env(), echo=False)
        if result.returncode != 0:
            message = " ".join(ln.strip() for ln in result.output.splitlines() if ln.strip())
            raise PackerError(
                f"packer init {directory} failed (the azure plugin must be installable, or "
                f"already in Packer's plugin directory): {message[:400]}"
            )

    def validate(
        self, directory: Path, variables: Mapping[str, str], *, only: str | None = None
    ) -> None:
        argv = [self.path(), "validate", *_var_args(variables)]
        if only:
            argv.append(f"-only={only}")
        argv.append(str(directory))
        result = self.runner(argv, cwd=self.cwd, env=self.env(), echo=False)
        if result.returncode != 0:
            message = " ".join(
                ln.strip()
                for ln in result.output.splitlines()
                if ln.strip() and "source code not available" not in ln
            )
            raise PackerError(f"packer validate {directory} failed: {message[:400]}")

    def build_argv(
        self, directory: Path, variables: Mapping[str, str], *, only: str, on_error: str = "cleanup"
    ) -> list[str]:
        if on_error not in ON_ERROR_MODES:
            raise PackerError(
                f"unknown -on-error mode {on_error!r}: expected {', '.join(ON_ERROR_MODES)}"
            )
        return [
            self.path(),
            "build",
            "-color=false",
            f"-on-error={on_error}",
            f"-only={only}",
            *_var_args(variables),
            str(directory),
        ]

    def build(
        self,
        directory: Path,
        variables: Mapping[str, str],
        *,
        only: str,
        manifest: Path,
        log_path: Path,
        on_error: str = "cleanup",
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Artifact:
        """Run `packer build`; return the artifact recorded in the (fresh) manifest."""
        manifest.unlink(missing_ok=True)
        argv = self.build_argv(directory, variables, only=only, on_error=on_error)
        try:
            run_checked(
                self.runner,
                argv,
                what=f"packer build of {directory.name}",
                cwd=self.cwd,
                env=self.env(env),
                log_path=log_path,
                timeout=timeout,
            )
        except ToolError as exc:
            raise PackerError(
                exc.message.removesuffix(f" (log: {log_path})"), log=str(log_path)
            ) from None
        return read_manifest(manifest, log_path=log_path)


def _var_args(variables: Mapping[str, str]) -> list[str]:
    return [f"-var={key}={value}" for key, value in sorted(variables.items())]


def read_manifest(path: Path, *, log_path: Path | None = None) -> Artifact:
    """The artifact of the last run recorded in a Packer manifest."""
    log = str(log_path) if log_path else None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackerError(f"Packer wrote no manifest at {path}", log=log) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise PackerError(f"cannot read the manifest {path}: {exc}", log=log) from None
    builds = data.get("builds") or []
    run = data.get("last_run_uuid")
    current = [b for b in builds if b.get("packer_run_uuid") == run] or builds[-1:]
    if not current:
        raise PackerError(f"the manifest {path} records no build", log=log)
    build = current[-1]
    return Artifact(
        build.get("builder_type", ""), build.get("artifact_id", ""), build.get("custom_data") or {}
    )


def variables_for(
    *,
    version: str,
    source_commit: str,
    pipeline_run: str,
    use_azure_cli_auth: bool,
    base_image_version: str | None = None,
    preview: bool = False,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The -var values of a build: none of them secret. ``preview`` only when set (the
    templates default it to false), so an ordinary build's argv does not change."""
    variables = {
        "image_version": version,
        **({"base_image_version": base_image_version} if base_image_version else {}),
        **({"preview": "true"} if preview else {}),
        "source_commit": source_commit,
        "pipeline_run": pipeline_run,
        "use_azure_cli_auth": "true" if use_azure_cli_auth else "false",
    }
    variables.update(extra or {})
    return variables


def redacted_argv(argv: Sequence[str]) -> list[str]:
    """An argv safe to print: any -var whose name looks secret is masked (defence in depth)."""
    out = []
    for arg in argv:
        if arg.startswith("-var=") and re.search(
            r"secret|password|token|key=", arg.split("=", 2)[1] + "=", re.I
        ):
            name = arg.split("=", 2)[1]
            arg = f"-var={name}=***"
        out.append(arg)
    return out
