"""Benchmark: simulated devices → Mosquitto → ``workbench gateway`` → lake (IoT issue, point 10).

    python benchmarks/ingest_mqtt.py [--devices 200] [--rate 26] [--duration 60] [--simulators 1] [--gateways 1]

1. A device registry with ``--devices`` smart meters (own credentials), the broker configuration
   generated from it (per-device ACLs), a private ``mosquitto`` on a free port, and a lake whose
   meter registry holds the same meters (cumulative kWh registers).
2. ``workbench gateway`` as its own process (QoS 1 persistent session, plain subscription,
   batches, acknowledgement after storing) — ``--gateways`` processes, each its own session,
   storing partition ``k/N`` of the devices (every gateway receives every message).
3. ``--simulators`` processes of ``workbench devices simulate --load`` (disjoint device sets): every
   message a smart-meter payload of 3 readings, QoS 1, ``--rate`` messages/s per device, for
   ``--duration`` seconds.  Published and PUBACK-acknowledged counts come from the simulators.
4. When the simulators are done, the lake is read until everything acknowledged is stored (or
   ``--drain`` seconds pass).  Printed: sustained messages/s and readings/s (acknowledged by the
   broker over the simulators' run time, and stored by the gateway over its storing time), p50/p99
   latency (device timestamp → the batch's ``finished_at``, when its curated rows were committed),
   loss (acknowledged readings not in the lake) and duplicates (rows stored twice) — both must be
   0 — and the CPU of broker, gateway(s) and simulator(s) in % of one core (2 cores = 200 %).

Anchor (reference): ThingsBoard on one 2-vCPU node, 5,000 msg/s = 15,000 data points/s at 95 % CPU.
Target on this 2-core machine, broker and load generator included: ≥ 5,000 msg/s sustained for
60 s, zero loss, p99 < 1 s.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd

PREFIX = "88.123.4567"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def mosquitto_exe() -> str:
    exe = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None)
    if exe is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's mosquitto …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "mosquitto"], check=False, capture_output=True)
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if exe is None or not os.access(exe, os.X_OK):
        raise SystemExit("mosquitto is not installed (Debian package 'mosquitto')")
    return exe


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def setup(work: Path, n: int, port: int, autosave_on_changes: int = 0):
    from workbench.devices import DeviceRegistry
    from workbench.devices.broker import DEFAULT_PLATFORM_USERS, write_broker_config
    from workbench.devices.registry import write_credentials
    from workbench.lake.store import Lake

    reg_url = f"sqlite:///{work / 'registry.db'}"
    reg = DeviceRegistry(reg_url, prefix=PREFIX)
    ids = [f"B{i:05d}" for i in range(n)]
    creds = reg.provision_many([{"device_id": d, "type": "electricity_meter", "node_id": "F01",
                                 "quantities": {"register": "kWh"}} for d in ids])
    users = {**DEFAULT_PLATFORM_USERS, **{f"platform-gateway-{k}": "gateway" for k in range(2, 9)}}
    files = write_broker_config(reg, work / "broker", port=port, platform_users=users,
                                user="root" if os.geteuid() == 0 else None, log_types=("error", "warning", "notice"),
                                **({"autosave_on_changes": True, "autosave_interval": autosave_on_changes}
                                   if autosave_on_changes else {}))
    creds.update(files.new_credentials)
    write_credentials(work / "credentials.json", creds)
    lake = Lake(work / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ids, "node_id": "F01", "unit": "kWh", "item": "grid",
                                       "source": "purchased_electricity", "register": "cumulative"}))
    reg.dispose()
    return reg_url, files, creds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--rate", type=float, default=26.0, help="messages/s per device (default 26)")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--simulators", type=int, default=1, help="simulator processes (default 1)")
    ap.add_argument("--gateways", type=int, default=1, help="gateway processes (partitions k/N of the devices)")
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--batch-interval", type=float, default=0.25)
    ap.add_argument("--drain", type=float, default=120.0)
    ap.add_argument("--autosave-on-changes", type=int, default=0, metavar="N",
                    help="the broker saves its state every N changes (default: every second)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 devices × 10 msg/s for 5 s")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.devices, args.rate, args.duration, args.simulators = 20, 10.0, 5.0, 1
    from workbench.lake.store import Lake

    exe = mosquitto_exe()
    work = Path(tempfile.mkdtemp(prefix="wb-bench-mqtt-"))
    port = free_port()
    procs: list[subprocess.Popen] = []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    try:
        t0 = time.perf_counter()
        reg_url, files, creds = setup(work, args.devices, port, args.autosave_on_changes)
        print(f"setup: {args.devices} devices registered, broker config and lake meters in "
              f"{time.perf_counter() - t0:.1f} s ({work})", flush=True)
        broker = subprocess.Popen([exe, "-c", str(files.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        procs.append(broker)
        wait_port(port)
        gw_logs = []
        for k in range(args.gateways):
            user = "platform-gateway" if k == 0 else f"platform-gateway-{k + 1}"
            log = work / f"gateway-{k + 1}.log"
            gw_logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "workbench.cli", "gateway", "--broker", f"mqtt://127.0.0.1:{port}",
                 "--lake", str(work / "lake"), "--registry", reg_url, "--username", user,
                 "--partition", f"{k}/{args.gateways}",
                 "--batch-size", str(args.batch_size), "--batch-interval", str(args.batch_interval)],
                cwd=ROOT, env={**env, "WB_GATEWAY_PASSWORD": creds[user]}, stdout=open(log, "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 30
        while not all("subscribed to" in p.read_text(errors="replace") for p in gw_logs):
            if time.monotonic() > deadline:
                raise SystemExit("gateway did not subscribe:\n" + gw_logs[0].read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        per = -(-args.devices // args.simulators)
        sims = []
        for k in range(args.simulators):
            sims.append(subprocess.Popen(
                [sys.executable, "-m", "workbench.cli", "devices", "simulate", "--broker", f"mqtt://127.0.0.1:{port}",
                 "--db", reg_url, "--credentials", str(work / "credentials.json"), "--load",
                 "--rate", str(args.rate), "--duration", str(args.duration), "--skip", str(k * per),
                 "--count", str(per), "--json"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True))
        procs.extend(sims)
        print(f"running: {args.simulators} simulator process(es) × {per} devices × {args.rate:g} msg/s "
              f"(target {args.devices * args.rate:,.0f} msg/s) for {args.duration:g} s; {args.gateways} gateway(s)",
              flush=True)
        gateways = procs[1:1 + args.gateways]
        cpu0 = {"broker": cpu_seconds(broker.pid), "gateways": sum(cpu_seconds(p.pid) for p in gateways)}
        t_run = time.monotonic()
        cpu1: dict = {}

        def sample_cpu():           # just before the simulators exit: the run's own CPU
            while all(s.poll() is None for s in sims):
                cpu1.update(broker=cpu_seconds(broker.pid), gateways=sum(cpu_seconds(p.pid) for p in gateways),
                            simulators=sum(cpu_seconds(s.pid) for s in sims), at=time.monotonic())
                time.sleep(0.5)

        import threading

        sampler = threading.Thread(target=sample_cpu, daemon=True)
        sampler.start()
        results = []
        for s in sims:
            out, _ = s.communicate(timeout=args.duration + 300)
            line = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
            results.append(json.loads(line[-1]) if line else {})
        sampler.join(5)
        wall = max(cpu1.get("at", t_run) - t_run, 1e-9)
        cpu = {k: round(100 * (cpu1[k] - cpu0.get(k, 0.0)) / wall, 1) for k in ("broker", "gateways", "simulators")
               if k in cpu1}
        published = sum(r.get("published", 0) for r in results)
        acked = sum(r.get("acked", 0) for r in results)
        readings_acked = sum(r.get("readings_acked", 0) for r in results)
        elapsed = max((r.get("elapsed_s", 0) for r in results), default=0) or args.duration
        lake = Lake(work / "lake")

        def stored():
            if "readings" not in lake.tables():
                return 0, 0
            r = lake.sql("SELECT count(*) AS n, count(DISTINCT (meter_id, ts, quantity)) AS d FROM readings")
            return int(r["n"][0]), int(r["d"][0])

        t_drain = time.monotonic()
        while stored()[1] < readings_acked and time.monotonic() - t_drain < args.drain:
            time.sleep(0.5)
        n, d = stored()
        drain_s = time.monotonic() - t_drain
        for p in procs[1:1 + args.gateways]:
            p.send_signal(signal.SIGTERM)
        for p in procs[1:1 + args.gateways]:
            p.wait(30)
        lat = lake.sql("""
            SELECT epoch_ms(CAST(b.finished_at AS TIMESTAMPTZ)) - epoch_ms(timezone('Asia/Shanghai', r.ts)) AS ms
            FROM readings r JOIN batches b USING (batch_id)""") if n else pd.DataFrame({"ms": []})
        # the registers' consumption counted once: per meter Σ consumption = last − first reading
        check = lake.sql("""
            WITH r AS (SELECT meter_id, arg_max(value, ts) - arg_min(value, ts) AS span FROM readings GROUP BY ALL),
                 c AS (SELECT meter_id, sum(value) AS total FROM consumption GROUP BY ALL)
            SELECT count(*) AS meters, count(*) FILTER (WHERE abs(coalesce(c.total, 0) - r.span) > 1e-6 * (1 + r.span))
                   AS wrong FROM r LEFT JOIN c USING (meter_id)""") if n else pd.DataFrame({"wrong": [0]})
        batches = lake.batches()
        b = batches[batches["source"] == "mqtt"]
        span = (pd.to_datetime(b["finished_at"]).max() - pd.to_datetime(b["received_at"]).min()).total_seconds() \
            if len(b) else float("nan")
        res = {
            "devices": args.devices, "rate_per_device": args.rate, "duration_s": round(elapsed, 1),
            "simulators": args.simulators, "gateways": args.gateways, "published_msgs": published,
            "acked_msgs": acked, "acked_readings": readings_acked,
            "msgs_per_s": round(acked / elapsed, 1), "readings_per_s": round(readings_acked / elapsed, 1),
            "stored_readings": d, "stored_rows": n, "stored_readings_per_s": round(d / span, 1) if span else None,
            "loss": readings_acked - d, "duplicates": n - d, "drain_s": round(drain_s, 1),
            "latency_p50_ms": round(float(lat["ms"].quantile(0.5)), 1) if len(lat) else None,
            "latency_p90_ms": round(float(lat["ms"].quantile(0.90)), 1) if len(lat) else None,
            "latency_p99_ms": round(float(lat["ms"].quantile(0.99)), 1) if len(lat) else None,
            "latency_max_ms": round(float(lat["ms"].max()), 1) if len(lat) else None,
            "consumption_wrong_meters": int(check["wrong"][0]),
            "batches": len(b), "quarantined": int(b["rows_quarantined"].sum()) if len(b) else 0,
            # % of one core while the load ran (simulators include their start-up); 2 cores = 200 %
            "cpu_broker_pct": cpu.get("broker"), "cpu_gateways_pct": cpu.get("gateways"),
            "cpu_simulators_pct": cpu.get("simulators"),
            "cpu_total_pct": round(sum(cpu.values()), 1) if cpu else None,
        }
        print()
        for k, v in res.items():
            print(f"  {k:>22}: {v}")
        ok = res["msgs_per_s"] >= 5000 and res["loss"] == 0 and res["duplicates"] == 0 and \
            res["consumption_wrong_meters"] == 0 and res["quarantined"] == 0 and \
            (res["latency_p99_ms"] or 1e9) < 1000
        print(f"\ntarget (≥ 5,000 msg/s for 60 s, 0 loss, 0 duplicates, p99 < 1 s): {'met' if ok else 'NOT met'}")
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
