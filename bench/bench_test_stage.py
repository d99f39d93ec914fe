"""Benchmark of the test stage: the Linux suite on a sandbox VM against its bare commands.

Not a test: run it as root from the repository root, with the sandbox up and debian-12 built
(``invoke build --image debian-12`` once)::

    .venv/bin/python bench/bench_test_stage.py [--version X.Y.Z] [--runs N]

On one test VM from the version (default: the newest), it prints, per run:

- the suite as ``invoke build`` runs it (``verify.run_suite``, the per-run ssh_config with its
  ControlPath): the suite's own time from its JUnit report, and the wall time with pytest's
  start-up and the closing of the shared connection;
- the same suite with the ssh_config imageforge wrote before (no ControlPath: Testinfra's
  ``ControlMaster=auto`` then multiplexes nothing and every command logs in again), the
  baseline of the same run;
- the commands the suite sent (Testinfra's debug log), replayed back to back over one already
  open multiplexed connection: what the checks cost without pytest and Testinfra.

Target: the suite's own time at most 2x the replay.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imageforge import hostspec, junit, verify  # noqa: E402
from imageforge.config import load_image_file  # noqa: E402

_RUN = re.compile(r"RUN CommandResult\(.*?command=(b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\")")


def _site():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO))
    from invoke import Config

    import tasks

    return tasks._site(type("C", (), {"config": Config(tasks.ns.configuration())})())


def suite_seconds(junit: Path) -> float:
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    return sum(float(s.get("time", 0)) for s in suites)


def run(vm, image_file: Path, version: str, report: Path, config: Path | None):  # type: ignore[no-untyped-def]
    log = report / "testinfra.log"
    os.environ["PYTEST_ADDOPTS"] = f"--log-file={log} --log-file-level=DEBUG"
    started = time.perf_counter()
    result = verify.run_suite(
        f"ssh://{vm.username}@{vm.host}:{vm.port}",
        os="linux",
        image_file=image_file,
        version=version,
        admin_user=vm.username,
        report_dir=report,
        ssh_identity=vm.ssh_key_path,
        ssh_config=config,
        echo=lambda _line: None,
        repo_root=REPO,
    )
    wall = time.perf_counter() - started
    os.environ.pop("PYTEST_ADDOPTS", None)
    if result.exit_code != junit.EXIT_PASSED:
        raise SystemExit(f"the suite did not pass ({result.reason or result.failures}): {report}")
    commands = [ast.literal_eval(m).decode() for m in _RUN.findall(log.read_text())]
    return suite_seconds(result.junit_path), wall, result.passed, commands


def replay(vm, commands: list[str], scratch: Path) -> float:  # type: ignore[no-untyped-def]
    base = [
        "ssh", "-F", "/dev/null", "-i", str(vm.ssh_key_path), "-p", str(vm.port),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", f"UserKnownHostsFile={scratch / 'known_hosts'}", "-o", "LogLevel=ERROR",
        "-o", "ControlMaster=auto", "-o", f"ControlPath={scratch}/cm-%C",
        "-o", "ControlPersist=60s", f"{vm.username}@{vm.host}",
    ]  # fmt: skip
    subprocess.run([*base, "true"], check=True, capture_output=True)  # open the connection
    started = time.perf_counter()
    for command in commands:
        subprocess.run([*base, command], capture_output=True)
    seconds = time.perf_counter() - started
    subprocess.run([*base[:-1], "-O", "exit", base[-1]], capture_output=True)
    return seconds


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=None, help="version to test (default: newest)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    from imageforge.azure import gallery, testvm
    from imageforge.pipeline.session import open_session

    site = _site()
    image_file = REPO / "images" / "debian-12.pkrvars.hcl"
    image = load_image_file(image_file, repo_root=REPO)
    session = open_session(site, "sandbox")
    versions = gallery.list_versions(session, image)
    if not versions:
        raise SystemExit("no debian-12 version in the sandbox: run `invoke build --os linux`")
    version = args.version or versions[-1].name
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-") as tmp:
        scratch = Path(tmp)
        old_config = scratch / "ssh_config.old"
        with testvm.deploy_test_vm(session, image, version, run_id="bench-test-stage") as vm:
            old_config.write_text(hostspec.ssh_config_text(vm.ssh_key_path, scratch / "kh"))
            print(f"debian-12 {version}, test VM {vm.host}:{vm.port}")
            print(f"{'run':>3}  {'suite':>8}  {'wall':>7}  {'old suite':>9}  {'replay':>7}  ratio")
            for index in range(1, args.runs + 1):
                new = run(vm, image_file, version, scratch / f"new{index}", None)
                old = run(vm, image_file, version, scratch / f"old{index}", old_config)
                seconds = replay(vm, new[3], scratch)
                print(
                    f"{index:>3}  {new[0]:>7.2f}s  {new[1]:>6.2f}s  {old[0]:>8.2f}s  "
                    f"{seconds:>6.2f}s  {new[0] / seconds:>4.1f}x  "
                    f"({new[2]} checks, {len(new[3])} commands)"
                )
    print("suite: the JUnit report's time; wall: with pytest's start-up; old suite: the same")
    print("suite with the ssh_config before ControlPath; replay: the suite's commands back to")
    print("back over one open connection. Target: suite <= 2x replay.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
