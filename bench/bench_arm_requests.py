"""ARM requests of `invoke build --os linux --promote` on a fresh sandbox, counted by the
emulator: a baseline commit against HEAD, in the same run.

Not a test: run it as root on a machine with Packer and debootstrap, from the repository root::

    .venv/bin/python bench/bench_arm_requests.py [--baseline REV] [--head REV] [--routes N]

Each revision is checked out into a temporary git worktree and runs there with its own
imageforge (PYTHONPATH), its own empty sandbox state dir on a free port, and the machine's
rootfs cache (warm after the first build: debootstrap is not what is counted). The emulator's
``/_sandbox/stats`` gives the requests (ARM only, not its admin API); the sandbox is reset
after each run. Replication is paced at 0 s per region, so polls are few and the count is the
client's, not a simulated wait's.

Printed: total requests per revision, the difference, and the routes that changed most.
The baseline default is the last commit before the pipeline became a package (issue 13).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.cli import INVOKE, cli_env, free_port  # noqa: E402

BASELINE = "961703a"
TASK = ("build", "--os", "linux", "--promote")
STATS = """
import json, sys
from pathlib import Path
from imageforge.sandbox import control
from imageforge.sandbox.harness import AdminClient
settings = control.SandboxSettings(state_dir=Path(sys.argv[1]), port=int(sys.argv[2]))
info = control.running(settings)
print(json.dumps(AdminClient(info.url, info.ca_path).call("GET", "/_sandbox/stats")))
"""


def _route(entry: dict) -> str:
    return f"{entry['method']} {entry['route'].rsplit('/providers/', 1)[-1]}"


def count(rev: str) -> tuple[int, Counter[str], str]:
    """(total, requests by route, commit) of one build at ``rev``."""
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-arm-") as scratch:
        base = Path(scratch)
        repo = base / "repo"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(repo), rev],
            check=True,
        )
        try:
            commit = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            (base / "home").mkdir()
            state, port = base / "state", free_port()
            env = cli_env(
                base / "home",
                state,
                port,
                {"PYTHONPATH": str(repo), "INVOKE_IMAGEFORGE_SANDBOX_REPLICATION_SECONDS": "0"},
            )
            try:
                build = subprocess.run(
                    [str(INVOKE), *TASK], cwd=repo, env=env, capture_output=True, text=True,
                    stdin=subprocess.DEVNULL, timeout=1200,
                )  # fmt: skip
                if build.returncode != 0:
                    print((build.stdout + build.stderr)[-4000:])
                    raise SystemExit(f"bench_arm_requests: the build at {rev} failed")
                stats = json.loads(
                    subprocess.run(
                        [sys.executable, "-c", STATS, str(state), str(port)],
                        cwd=repo,
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout  # fmt: skip
                )
            finally:
                subprocess.run(
                    [str(INVOKE), "sandbox.reset"], cwd=repo, env=env, capture_output=True,
                    timeout=300,
                )  # fmt: skip
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(repo)], check=False
            )
    return int(stats["total"]), Counter(_route(e) for e in stats.get("log", [])), commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--routes", type=int, default=12, help="routes to list")
    args = parser.parse_args()
    before, before_routes, before_commit = count(args.baseline)
    after, after_routes, after_commit = count(args.head)
    print(f"`invoke {' '.join(TASK)}` on a fresh sandbox, ARM requests counted by the emulator")
    print(f"  baseline {before_commit}: {before}")
    print(f"  head     {after_commit}: {after}")
    print(f"  change: {after - before:+d} ({(after - before) / before:+.0%})")
    routes = sorted(
        set(before_routes) | set(after_routes),
        key=lambda r: (-(abs(after_routes[r] - before_routes[r])), r),
    )
    print(f"  {'route':<78}{'before':>7}{'after':>7}")
    for route in routes[: args.routes]:
        print(f"  {route[:78]:<78}{before_routes[route]:>7}{after_routes[route]:>7}")


if __name__ == "__main__":
    main()
