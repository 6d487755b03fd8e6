"""New-target latency through HAProxy, against one replica without it (see bench/README.md).

The set-up of tests/e2e/test_scale_out.py (``tests/e2e/scale_out.py``): HAProxy in front of
two ``fleetwave serve --no-worker`` replicas, two ``fleetwave worker`` processes, PostgreSQL.
It is run twice, each time on a fresh throwaway database with ``--devices`` new simulated
long-polling devices (``fleetwave simulate --long-poll``) that take a staged rollout (3 batches,
no delay, no soak) pushed by a webhook:

1. baseline: the simulators talk to one replica directly (HAProxy and the other replica idle);
2. through HAProxy: the simulators talk to HAProxy, which spreads them over both replicas.

For each it prints p50/p99/max of "batch started → device received its new target" (the
``batch_started`` event's time to the poll that brought the new image, from the simulators'
``--received-log``: one wall clock, this machine's), then the ratio of the p50s and p99s.

    .venv/bin/python bench/scale_out.py                  # 1,000 devices
    .venv/bin/python bench/scale_out.py --devices 2000 --processes 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the shared set-up lives beside the end-to-end test

from tests.e2e.scale_out import (  # noqa: E402
    admin_client,
    cluster,
    create_policy,
    delivery_times,
    percentile,
    push,
    simulators,
    summary,
    wait_until_over,
)

from common import add_database_url_argument, main, throwaway_database  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=1, help="simulator processes")
    parser.add_argument("--poll-interval", type=float, default=10)
    parser.add_argument("--timeout", type=float, default=300, help="seconds for a rollout")
    add_database_url_argument(parser)
    return parser.parse_args()


def measure(args: argparse.Namespace, work: Path, through_haproxy: bool) -> list[float]:
    """One run on a fresh database: seconds from batch started to new target, per device."""
    name = "haproxy" if through_haproxy else "baseline"
    with throwaway_database(args.database_url) as url, cluster(work / name, url) as running:
        base = (
            running.base if through_haproxy else f"http://127.0.0.1:{running.replica_ports['api1']}"
        )
        with (
            admin_client(base) as admin,
            simulators(work / name, base, args.devices, args.processes, args.poll_interval) as sims,
        ):
            create_policy(admin)
            started = time.monotonic()
            rollout_id = push(admin)
            over = wait_until_over(admin, rollout_id, args.timeout)
            took = time.monotonic() - started
            times, missing = delivery_times(admin, rollout_id, sims)
        print(
            f"{name}: rollout {over['status']} in {took:.1f} s, {missing} devices missing; "
            f"batch started → new target: {summary(times)}",
            flush=True,
        )
    return times


def bench(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="fleetwave-bench-scale-out-"))
    print(
        f"{args.devices} long-polling devices in {args.processes} simulator(s), two replicas, "
        f"two workers, PostgreSQL; logs in {work}",
        flush=True,
    )
    baseline = measure(args, work, through_haproxy=False)
    balanced = measure(args, work, through_haproxy=True)
    for share, label in ((0.5, "p50"), (0.99, "p99")):
        direct, through = percentile(baseline, share), percentile(balanced, share)
        print(
            f"ratio {label}: {through / direct:.2f}  (through HAProxy {through:.2f} s / "
            f"one replica directly {direct:.2f} s; {args.devices} devices)"
        )


if __name__ == "__main__":
    sys.exit(main(bench, parse_args()))
