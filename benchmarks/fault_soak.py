"""Soak: a known QoS 1 stream through Mosquitto and `workbench gateway` for minutes while faults
are injected at random moments (issue 10, point 4) — the longer run of tests/devices/test_gateway_faults.py.

    python benchmarks/fault_soak.py [--minutes 10] [--faults 100] [--rate 1000] [--devices 40] [--gateways 1]
    python benchmarks/fault_soak.py --crash 20 [--autosave-interval 1 | --autosave-on-changes 1000]

Default mode: gateway SIGKILLs, broker clean restarts (SIGTERM) and both at once, ``--faults`` of
them at random moments (uniformly 0.5–1.5 × the mean gap) over ``--minutes``; then the lake is
compared with what the broker acknowledged (workbench.devices.faultcheck.verify).  Printed: the
faults by kind, messages published/acknowledged, readings missing, extra and duplicated, meters
whose Σ consumption ≠ last − first reading, PUBACKs "no matching subscribers", and the drain time.
Target: 0 missing, 0 duplicates, 0 wrong meters.

``--crash N``: N broker crashes (SIGKILL) instead — the documented loss window.  Printed: the
acknowledged readings lost per crash, next to the stream rate; the broker saves its state every
``--autosave-interval`` seconds (or every ``--autosave-on-changes`` messages).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--faults", type=int, default=100, help="faults in all (default 100)")
    ap.add_argument("--rate", type=float, default=1000.0, help="messages/s in all (one reading each)")
    ap.add_argument("--devices", type=int, default=40)
    ap.add_argument("--gateways", type=int, default=1, help="gateway processes (partitions k/N)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--crash", type=int, default=0, metavar="N", help="measure N broker crashes (SIGKILL) instead")
    ap.add_argument("--autosave-interval", type=int, default=1)
    ap.add_argument("--autosave-on-changes", type=int, default=0, metavar="N",
                    help="save every N changes instead of every --autosave-interval seconds")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from workbench.devices.faultcheck import run

    crash = args.crash > 0
    n = args.crash if crash else args.faults
    seconds = args.minutes * 60 if not crash else max(30.0, 4.0 * n)
    mean_gap = seconds / (n + 1)
    autosave = {"autosave_interval": args.autosave_on_changes or args.autosave_interval,
                "autosave_on_changes": bool(args.autosave_on_changes)}
    work = Path(tempfile.mkdtemp(prefix="wb-soak-"))
    kinds = ("broker-crash",) if crash else ("gateway-kill", "broker-restart", "both")
    print(f"{'crash window' if crash else 'soak'}: {args.devices} meters, {args.rate:g} msg/s, {args.gateways} "
          f"gateway(s), {n} faults ({', '.join(kinds)}) over {seconds:g} s; broker saves every "
          f"{autosave['autosave_interval']} {'changes' if args.autosave_on_changes else 's'} ({work})", flush=True)
    t0 = time.monotonic()
    try:
        report = run(work, seconds=seconds, faults=kinds, interval=(0.5 * mean_gap, 1.5 * mean_gap),
                     devices=args.devices, gateways=args.gateways, rate=args.rate, seed=args.seed, drain=300,
                     progress=lambda line: print(line, flush=True), **autosave)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    r = report.result
    res = {"seconds": seconds, "wall_s": round(time.monotonic() - t0, 1), "rate": args.rate, "devices": args.devices,
           "gateways": args.gateways, "faults": report.counts(), **r, "drain_s": report.drain_s, **autosave}
    if crash:
        crashes = len(report.faults)
        res["lost_per_crash"] = round(r["missing"] / crashes, 1) if crashes else None
        res["lost_per_crash_ms_of_stream"] = round(1000 * r["missing"] / crashes / args.rate, 1) if crashes else None
    print()
    for k, v in res.items():
        print(f"  {k:>28}: {v}")
    if crash:
        print(f"\nbroker crash: {res['lost_per_crash']} acknowledged readings lost per crash "
              f"(≈ {res['lost_per_crash_ms_of_stream']} ms of the stream)")
    else:
        print(f"\ntarget (0 missing, 0 duplicates, 0 wrong meters): {'met' if report.ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0 if (crash or report.ok) else 1


if __name__ == "__main__":
    sys.exit(main())
