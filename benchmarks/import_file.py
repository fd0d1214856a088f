"""Benchmark: ``workbench import`` on a big vendor export, against the ingest of the same readings
from a canonical file.

    python benchmarks/import_file.py [--readings 1000000] [--meters 100]

1. Writes one meter export as meter software does — two title lines, GBK, ``采集时间,表计名称,
   正向有功总电能(kWh),反向有功总电能(kWh)``, ``2025/10/01 00:15`` timestamps, cumulative registers
   — and the same readings as a canonical CSV (``meter_id, ts, quantity, value, unit, register``).
2. **import** — :func:`workbench.imports.import_file`: detection (encoding, header rows, columns,
   unit, register type from the data), meters proposed and registered, the full ingest; once as
   ``--dry-run`` (every pipeline step, nothing written) and once for real, each into a fresh lake.
3. **baseline** — ``connectors.files.read_csv`` of the canonical file and
   ``workbench.ingestion.ingest`` (what a user with a perfectly shaped file and a registered meter
   list gets).
Prints seconds and readings/s of each, and the import/baseline ratio.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors import files  # noqa: E402
from workbench.imports import import_file  # noqa: E402
from workbench.ingestion import ingest  # noqa: E402
from workbench.lake.store import Lake  # noqa: E402


def make_files(out: Path, n: int, meters: int, seed: int = 3) -> tuple[Path, Path, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    per = -(-n // meters)
    ts = pd.date_range("2025-10-01", periods=per, freq="15min")
    names = [f"{m + 1}#回路" for m in range(meters)]
    step = rng.gamma(2.0, 1.5, size=(per, meters)).round(2)
    reg = (rng.uniform(1000, 90000, size=meters) + np.cumsum(step, axis=0)).round(2)
    mid = np.tile(np.asarray(names, dtype=object), per)
    t = np.repeat(ts.strftime("%Y/%m/%d %H:%M").to_numpy(dtype=object), meters)
    v = reg.reshape(-1)
    vendor = out / "vendor.csv"
    body = pd.DataFrame({"采集时间": t, "表计名称": mid, "正向有功总电能(kWh)": v, "反向有功总电能(kWh)": 0.0})
    with open(vendor, "wb") as fh:
        fh.write("XX公司 能耗监测系统 电能数据导出\r\n导出时间：2025-11-01 08:00\r\n".encode("gbk"))
        fh.write(body.to_csv(index=False, lineterminator="\r\n").encode("gbk"))
    canon = out / "canonical.csv"
    pd.DataFrame({"meter_id": mid, "ts": np.repeat(ts.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object), meters),
                  "quantity": "active_energy", "value": v, "unit": "kWh", "register": "cumulative"}) \
        .to_csv(canon, index=False)
    register = pd.DataFrame({"meter_id": names, "node_id": "plant", "unit": "kWh", "register": "cumulative"})
    return vendor, canon, register


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--meters", type=int, default=100)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-import-bench-"))
    try:
        vendor, canon, register = make_files(tmp, a.readings, a.meters)
        n = a.readings
        print(f"{n:,} readings, {a.meters} meters; vendor export {vendor.stat().st_size / 1e6:.1f} MB (GBK)")
        t0 = time.perf_counter()
        dry = import_file(vendor, lake=Lake(tmp / "dry"), enterprise="ent-a", dry_run=True, register_new_meters=True)
        t_dry = time.perf_counter() - t0
        t0 = time.perf_counter()
        real = import_file(vendor, lake=Lake(tmp / "real"), enterprise="ent-a", register_new_meters=True, sender="bench")
        t_real = time.perf_counter() - t0
        lake = Lake(tmp / "base", enterprise="ent-a")
        lake.register_meters(register)
        t0 = time.perf_counter()
        rep = ingest(lake, files.read_csv(canon, kind="readings"), sender="bench")
        t_base = time.perf_counter() - t0
        assert real.stored == rep.rows_curated == n, (real.stored, rep.rows_curated)
        assert abs(sum(x["quantity"] for x in real.totals) - sum(x["quantity"] for x in dry.totals)) < 1e-6
        print(f"import --dry-run   {t_dry:8.2f} s  {n / t_dry:12,.0f} readings/s")
        print(f"import             {t_real:8.2f} s  {n / t_real:12,.0f} readings/s")
        print(f"baseline (canonical read_csv + ingest) {t_base:8.2f} s  {n / t_base:12,.0f} readings/s")
        print(f"ratio import/baseline: {t_real / t_base:.2f}×")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
