"""The init of one sandbox VM.

This file is run as a script by the host's Python (standard library only, so it does not need
imageforge to be importable), always inside namespaces that ``unshare(1)`` created for it:

``vminit.py run CONFIG``
    PID 1 of the VM's own PID namespace, in its own mount, UTS and IPC namespaces with private
    propagation. It mounts the VM's overlay root and its /proc, /sys (read-only), /dev (a tmpfs
    with the usual nodes and its own devpts instance), /dev/shm and /run (tmpfs) -- all in the
    private mount namespace, so none of it is visible in the host's /proc/mounts and all of it
    disappears with the namespace. It sets the hostname in the UTS namespace, applies the
    osProfile at first boot (as waagent/cloud-init do; a VM from a specialized image has none,
    keeps the image's identity and takes its hostname from the image's /etc/hostname) and
    then runs the image's own sshd,
    chrooted, restarting it if it dies and reaping orphans as an init must. SIGTERM stops
    every process of the VM; when this process dies, the kernel kills every process in the
    PID namespace.

The configuration is a JSON file written by ``vm.py``; progress and errors go to stdout/stderr,
which the backend points at the VM's console log.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

#: PATH of every process started inside the VM.
VM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Where the image records which instance (VM) it was last provisioned for (as cloud-init
#: keeps /var/lib/cloud/instance): a VM booted from a captured image is a new instance and
#: gets its osProfile applied again.
INSTANCE_FILE = "var/lib/imageforge/instance-id"

#: Character devices of the VM's /dev: name -> (major, minor, mode).
DEVICES = {
    "null": (1, 3, 0o666),
    "zero": (1, 5, 0o666),
    "full": (1, 7, 0o666),
    "random": (1, 8, 0o666),
    "urandom": (1, 9, 0o666),
    "tty": (5, 0, 0o666),
}

DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to leave the supervision loop."""


def log(message: str) -> None:
    """Write one line to the console log."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    sys.stderr.write(f"[{stamp}] vminit: {message}\n")
    sys.stderr.flush()


def mount(fstype: str, source: str, target: Path, options: str = "") -> None:
    """``mount -t fstype -o options source target`` (raises CalledProcessError on failure)."""
    argv = ["mount", "-t", fstype]
    if options:
        argv += ["-o", options]
    subprocess.run([*argv, source, str(target)], check=True)


def bind_read_only(path: Path) -> None:
    """Make ``path`` a read-only bind mount of itself."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)


def overlay_options(lowers: list[str], upper: str, work: str) -> str:
    """The overlayfs mount options of a VM's root: its upper dir over its lowers (top first).

    Directory renames and metadata-only changes are copied up in full (no redirects, no
    metacopy) and no inode index is kept, so an upper dir is a self-contained layer that a
    captured image can stack over the same lowers, in any later mount.
    """
    return (
        f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},"
        "redirect_dir=off,metacopy=off,index=off"
    )


def setup_root(config: dict) -> Path:
    """Mount the VM's root and its pseudo filesystems; return the root path."""
    root = Path(config["root"])
    if config.get("mode", "overlay") == "overlay":
        options = overlay_options(config["lowers"], config["upper"], config["work"])
        mount("overlay", "overlay", root, options)
    else:  # copy mode: the VM's own full copy is its root
        subprocess.run(["mount", "--bind", config["disk"], str(root)], check=True)
    mount("proc", "proc", root / "proc", "nosuid,nodev,noexec")
    bind_read_only(root / "proc/sys")
    mount("sysfs", "sysfs", root / "sys", "ro,nosuid,nodev,noexec")
    dev = root / "dev"
    mount("tmpfs", "tmpfs", dev, "mode=755,nosuid,size=8m")
    for name, (major, minor, mode) in DEVICES.items():
        os.mknod(dev / name, stat.S_IFCHR | mode, os.makedev(major, minor))
        os.chmod(dev / name, mode)
    for name, target in DEV_LINKS.items():
        os.symlink(target, dev / name)
    (dev / "pts").mkdir()
    (dev / "shm").mkdir()
    mount("devpts", "devpts", dev / "pts", "newinstance,ptmxmode=0666,mode=620,gid=5,nosuid,noexec")
    mount("tmpfs", "tmpfs", dev / "shm", "mode=1777,nosuid,nodev")
    run = root / "run"
    run.mkdir(exist_ok=True)
    mount("tmpfs", "tmpfs", run, "mode=755,nosuid,nodev,size=64m")
    (run / "sshd").mkdir(mode=0o755)
    (run / "lock").mkdir()
    os.chmod(run / "lock", 0o1777)
    # The VM shares the host's network namespace: it resolves names as the host does.
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    try:
        resolv.write_bytes(Path("/etc/resolv.conf").read_bytes())
    except OSError as err:
        log(f"cannot copy /etc/resolv.conf: {err}")
    return root


def chroot_env() -> dict[str, str]:
    """The environment of processes started inside the VM."""
    return {"PATH": VM_PATH, "HOME": "/root", "LANG": "C.UTF-8"}


def in_chroot(root: Path, argv: list[str]) -> int:
    """Run ``argv`` chrooted into ``root``; return its exit status."""
    result = subprocess.run(
        argv, preexec_fn=lambda: _enter(root), env=chroot_env(), stdin=subprocess.DEVNULL
    )
    return result.returncode


def _enter(root: Path) -> None:
    os.chroot(root)
    os.chdir("/")


def first_boot(root: Path, config: dict) -> None:
    """Apply the osProfile the way waagent/cloud-init do on a new instance's first boot.

    Hostname (/etc/hostname, /etc/hosts), a fresh machine id, the admin user (home dir, bash,
    passwordless sudo via /etc/sudoers.d/waagent as waagent writes it, authorized_keys), then
    the instance marker. A VM without an osProfile (``hostname`` None: a specialized image)
    is not provisioned at all. SSH host keys are regenerated on every boot when missing; the
    RSA one comes from the backend's pool of keys made ahead of time when it passed one.
    """
    hostname = config["hostname"]
    marker = root / INSTANCE_FILE
    current = marker.read_text().strip() if marker.exists() else ""
    if hostname is None:
        log("no osProfile (specialized image): the VM keeps the image's identity")
    elif current != config["instance_id"]:
        log(f"first boot of instance {config['instance_id']}: applying osProfile")
        (root / "etc/hostname").write_text(hostname + "\n")
        _write_hosts(root / "etc/hosts", hostname)
        machine_id = root / "etc/machine-id"
        if machine_id.is_symlink() or machine_id.exists():
            machine_id.unlink()
        machine_id.write_text(os.urandom(16).hex() + "\n")
        machine_id.chmod(0o444)
        _provision_user(root, config["admin_username"], config["ssh_public_keys"])
        _write_ovf_env(root, hostname, config["admin_username"], config["ssh_public_keys"])
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(config["instance_id"] + "\n")
    if config.get("host_key_dir"):
        _install_host_key(root, Path(config["host_key_dir"]))
    if in_chroot(root, ["ssh-keygen", "-A"]) != 0:
        raise RuntimeError("ssh-keygen -A failed")


def _install_host_key(root: Path, pooled: Path) -> None:
    """Install the RSA host key the backend made ahead of time, unless the VM has one; the
    pooled copy is removed either way, so the private key lives only in the VM's /etc/ssh."""
    try:
        target = root / "etc/ssh/ssh_host_rsa_key"
        if not (target.exists() or target.is_symlink()):
            for name, mode in (("ssh_host_rsa_key", 0o600), ("ssh_host_rsa_key.pub", 0o644)):
                data = (pooled / name).read_bytes()
                fd = os.open(root / "etc/ssh" / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            log("installed a pre-generated RSA host key")
    finally:
        shutil.rmtree(pooled, ignore_errors=True)


def _write_ovf_env(root: Path, hostname: str, user: str, keys: list[str]) -> None:
    """Leave the provisioning document where waagent keeps it, as Azure's agent does.

    ``waagent -deprovision+user`` reads the admin user's name from it (and deletes the user
    and the file), so a build's last provisioner generalizes the sandbox VM as on Azure.
    """
    public_keys = "".join(
        "<PublicKey><Fingerprint></Fingerprint>"
        f"<Path>/home/{escape(user)}/.ssh/authorized_keys</Path>"
        f"<Value>{escape(key.strip())}</Value></PublicKey>"
        for key in keys
        if key.strip()
    )
    document = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" '
        'xmlns:wa="http://schemas.microsoft.com/windowsazure">'
        "<wa:ProvisioningSection><wa:Version>1.0</wa:Version>"
        '<LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">'
        "<ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>"
        f"<HostName>{escape(hostname)}</HostName><UserName>{escape(user)}</UserName>"
        "<DisableSshPasswordAuthentication>true</DisableSshPasswordAuthentication>"
        f"<SSH><PublicKeys>{public_keys}</PublicKeys></SSH>"
        "</LinuxProvisioningConfigurationSet></wa:ProvisioningSection>"
        "<wa:PlatformSettingsSection><PlatformSettings "
        'xmlns="http://schemas.microsoft.com/windowsazure">'
        "<ProvisionGuestAgent>true</ProvisionGuestAgent></PlatformSettings>"
        "</wa:PlatformSettingsSection></Environment>\n"
    )
    directory = root / "var/lib/waagent"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ovf = directory / "ovf-env.xml"
    ovf.write_text(document)
    ovf.chmod(0o600)


def _write_hosts(path: Path, hostname: str) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if not line.startswith("127.0.1.1")]
    if not any(line.split()[:1] == ["127.0.0.1"] for line in kept if line.strip()):
        kept.insert(0, "127.0.0.1\tlocalhost")
    kept.insert(1, f"127.0.1.1\t{hostname}")
    path.write_text("\n".join(kept) + "\n")


def _provision_user(root: Path, user: str, keys: list[str]) -> None:
    passwd = (root / "etc/passwd").read_text().splitlines()
    if not any(line.split(":", 1)[0] == user for line in passwd):
        status = in_chroot(
            root, ["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", user]
        )
        if status != 0:
            raise RuntimeError(f"useradd {user} failed (exit {status})")
        log(f"created admin user {user}")
    sudoers = root / "etc/sudoers.d/waagent"
    sudoers.parent.mkdir(parents=True, exist_ok=True)
    sudoers.write_text(f"{user} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    # The rest happens chrooted, as the user's files and ids are the image's, not the host's.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            _enter(root)
            entry = pwd.getpwnam(user)
            home = Path(entry.pw_dir)
            ssh = home / ".ssh"
            ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
            authorized = ssh / "authorized_keys"
            present = authorized.read_text().splitlines() if authorized.exists() else []
            lines = [line.strip() for key in keys for line in key.splitlines() if line.strip()]
            wanted = present + [line for line in lines if line not in present]
            authorized.write_text("".join(line + "\n" for line in wanted))
            authorized.chmod(0o600)
            for path in (ssh, authorized):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            code = 0
        except BaseException as err:  # noqa: BLE001 - report anything, then exit the child
            sys.stderr.write(f"vminit: authorized_keys for {user}: {err}\n")
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"could not install authorized_keys for {user}")


def start_sshd(root: Path, address: str, port: int) -> int:
    """Start the image's sshd chrooted, in the foreground, listening on ``address:port``.

    Forked by hand rather than through subprocess.Popen: the supervision loop reaps children
    with ``waitpid(-1)`` and must be the only one to collect sshd's exit status.
    """
    argv = ["/usr/sbin/sshd", "-D", "-e", "-o", f"ListenAddress={address}:{port}"]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            _enter(root)
            os.setsid()
            os.execve(argv[0], argv, chroot_env())
        finally:
            os._exit(127)
    log(f"started sshd (pid {pid}) on {address}:{port}")
    return pid


def stop_all(grace: float = 3.0) -> None:
    """Stop every other process of the PID namespace: SIGTERM, then SIGKILL after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(-1, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.05)


def supervise(root: Path, address: str, port: int) -> int:
    """Keep sshd running and reap orphans until SIGTERM; return the exit status."""
    failures: list[float] = []
    sshd = start_sshd(root, address, port)
    try:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                pid, status = 0, 0
                time.sleep(0.5)
            if pid == sshd:
                log(f"sshd exited (status {os.waitstatus_to_exitcode(status)})")
                now = time.monotonic()
                failures = [t for t in failures if now - t < 30] + [now]
                if len(failures) > 5:
                    log("sshd keeps failing; stopping the VM")
                    stop_all()
                    return 1
                time.sleep(1)
                sshd = start_sshd(root, address, port)
    except Stop:
        log("stopping")
        stop_all()
        return 0


def image_hostname(root: Path) -> str:
    """The hostname the image's /etc/hostname names, or "" when it names none we can set."""
    try:
        name = (root / "etc/hostname").read_text().strip().split("\n")[0].strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return name if 0 < len(name.encode()) <= 64 else ""


def _raise_stop(signum: int, frame: object) -> None:
    raise Stop()


def run(config: dict) -> int:
    """Boot the VM described by ``config`` and supervise it."""
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    log(f"booting VM {config['vm_key']} (pid {os.getpid()} in its namespace)")
    try:
        root = setup_root(config)
        socket.sethostname(config["hostname"] or image_hostname(root) or config["vm_key"])
        first_boot(root, config)
    except Stop:
        return 0
    except (OSError, RuntimeError, subprocess.CalledProcessError) as err:
        log(f"boot failed: {err}")
        return 1
    return supervise(root, config["address"], config["port"])


def main(argv: list[str]) -> int:
    """Entry point: ``vminit.py run CONFIG``."""
    if len(argv) != 3 or argv[1] != "run":
        sys.stderr.write("usage: vminit.py run CONFIG\n")
        return 2
    return run(json.loads(Path(argv[2]).read_text()))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
