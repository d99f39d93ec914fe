"""Copying and removing image trees, with progress.

Captured images are immutable: nothing ever writes into an image directory after capture
(VMs run on an overlay whose upper layer takes every write, see vm.py). That makes hard links
a safe way to copy an image within one filesystem: a replica shares the inodes of its source,
costs no data blocks, and deleting either leaves the other whole. Across filesystems, or when a
file has reached the filesystem's link limit, files are copied (content, owner, mode, times,
extended attributes).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from imageforge.errors import SandboxError


def count_entries(root: Path) -> int:
    """Number of entries (files, directories, links) below ``root``."""
    total = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                total += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
    return total


def copy_tree(
    src: Path,
    dest: Path,
    progress: Callable[[int], None] | None = None,
    *,
    link: bool = True,
) -> None:
    """Copy the tree ``src`` into the new directory ``dest`` reporting percent done (0..100).

    With ``link`` (the default), regular files are hard-linked when ``src`` and ``dest`` are
    on one filesystem; otherwise they are copied. Progress is reported by entry count, each
    value once and increasing, ending with 100.
    """
    total = max(count_entries(src), 1)
    done = 0
    reported = -1
    link = link and os.stat(src).st_dev == os.stat(dest.parent).st_dev
    copied_inodes: dict[tuple[int, int], str] = {}

    def tick() -> None:
        nonlocal done, reported
        done += 1
        percent = min(99, done * 100 // total)
        if progress is not None and percent > reported:
            reported = percent
            progress(percent)

    if progress is not None:
        reported = 0
        progress(0)
    os.mkdir(dest)
    directories: list[tuple[Path, Path, os.stat_result]] = [(src, dest, os.lstat(src))]
    stack = [(src, dest)]
    while stack:
        source_dir, target_dir = stack.pop()
        with os.scandir(source_dir) as entries:
            for entry in entries:
                source = Path(entry.path)
                target = target_dir / entry.name
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    os.mkdir(target)
                    directories.append((source, target, info))
                    stack.append((source, target))
                elif stat.S_ISLNK(info.st_mode):
                    os.symlink(os.readlink(source), target)
                    os.lchown(target, info.st_uid, info.st_gid)
                    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
                elif stat.S_ISREG(info.st_mode):
                    _copy_file(source, target, info, link, copied_inodes)
                else:  # devices, fifos, sockets
                    os.mknod(target, info.st_mode, info.st_rdev)
                    _copy_meta(source, target, info)
                tick()
    for source_dir, directory, info in reversed(directories):
        _copy_meta(source_dir, directory, info)
    if progress is not None:
        progress(100)


def _copy_file(
    source: Path,
    target: Path,
    info: os.stat_result,
    link: bool,
    copied_inodes: dict[tuple[int, int], str],
) -> None:
    if link:
        try:
            os.link(source, target)
            return
        except OSError as err:
            if err.errno != errno.EMLINK:
                raise
    inode = (info.st_dev, info.st_ino)
    if info.st_nlink > 1 and inode in copied_inodes:
        os.link(copied_inodes[inode], target)  # keep the source's own hard links
        return
    shutil.copyfile(source, target, follow_symlinks=False)
    _copy_meta(source, target, info)
    if info.st_nlink > 1:
        copied_inodes[inode] = str(target)


def _copy_meta(source: Path, target: Path, info: os.stat_result) -> None:
    """Owner first (chown clears setuid bits and file capabilities), then mode, xattrs, times."""
    os.lchown(target, info.st_uid, info.st_gid)
    shutil.copystat(source, target, follow_symlinks=False)


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it, never crossing into another filesystem.

    ``rm --one-file-system`` refuses to descend into a mount point, so a mount that leaked
    out of a VM's namespace could never take host files with it; the removal then fails and
    says so.
    """
    if not path.exists() and not path.is_symlink():
        return
    result = subprocess.run(
        ["rm", "-rf", "--one-file-system", "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or path.exists():
        detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "still there"
        raise SandboxError(f"could not remove {path}: {detail}")
