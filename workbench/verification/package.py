"""The verification package (核查材料包, seed §9.3): one ZIP a third-party verifier can check and
recompute without the lake and without re-keying anything.

Layout (every path listed in ``manifest.json`` with its SHA-256 and size)::

    manifest.json            format and version, enterprise, year, regime and editions, GWP set,
                             factor library version, creation time, software version, which report
                             and notebook engine made the report, the signer's key fingerprint, files
    manifest.sig             Ed25519 signature of manifest.json's bytes (JSON: algorithm,
                             public_key_fingerprint, signature in base64)
    public_key.pem           the signer's public key (a verifier should pin the one received by
                             another channel: ``workbench verify check --public-key``)
    README.md                what is inside and how to check it (zh/en)
    data/activity.csv        the activity record of every ledger row: identifiers, quantity and unit
                             as recorded, site-measured factors, basis, lake batch, raw SHA-256, raw file
    data/batches.csv         the lake's record of every batch the records came from (raw name,
                             SHA-256, size, source, sender, received/stored) and the raw file's path
    data/factors.csv         the factors used, with provenance (document, table, year, region,
                             verified) and why each was chosen
    data/value_added.csv     value added per month (万元) and the batches it came from
    raw/<batch>/<name>       the raw files, byte for byte as the lake stored them
    results/ledger.csv       the ledger (one row per activity record: factors, tCO2, tCO2e, method)
    results/by_source.csv · by_facility.csv · by_gas.csv · monthly.csv · efficiency.csv ·
    reconciliation.csv · totals.json
    report/…                 the report (the annual GHG report when it is available, else the
                             inventory report; the manifest says which and why)
    notebook/….ipynb         the executed notebook

:func:`export_package` writes it; :func:`workbench.verification.check.check_package` checks it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import inspect
import json
import math
import os
import platform
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workbench.core.factors import default_library
from workbench.inventory.compute import compute_inventory_from_lake
from workbench.verification.errors import VerificationError
from workbench.verification.evidence import collect, fmt
from workbench.verification.keys import fingerprint, load_private_key, public_pem, sign

__all__ = ["FORMAT", "FORMAT_VERSION", "ExportResult", "export_package", "report_engine", "sha256_hex"]

FORMAT = "workbench-verification-package"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class ExportResult:
    """What :func:`export_package` wrote: ``path``, the ``manifest`` (a dict), the signer's key
    ``fingerprint`` and the wall time of each step in seconds (``seconds``)."""

    path: Path
    manifest: dict
    fingerprint: str
    seconds: dict = field(default_factory=dict)


def report_engine():
    """``(annual_report, None)`` when :mod:`workbench.reports.annual` can be imported, else
    ``(None, why)`` — the package then carries the inventory report
    (:func:`workbench.reports.inventory.write_outputs`) and says so in its manifest."""
    try:
        mod = importlib.import_module("workbench.reports.annual")
        return mod.annual_report, None
    except (ImportError, AttributeError) as exc:
        return None, f"the annual report (workbench.reports.annual) is not available here ({exc})"


class _Writer:
    """The package's ZIP, written as its files come (one raw file in memory at a time), each file's
    SHA-256 and size noted for the manifest."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.listing: dict[str, dict] = {}

    def put(self, name: str, data: bytes) -> None:
        if name in self.listing:
            raise VerificationError(f"{name}: two files of the package would have the same name")
        self.zip.writestr(name, data)
        self.listing[name] = {"path": name, "sha256": sha256_hex(data), "size": len(data)}

    def files(self) -> list[dict]:
        return [self.listing[p] for p in sorted(self.listing)]


def _csv(df: pd.DataFrame) -> bytes:
    df = df.copy()
    df.attrs = {}
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _num(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _git_commit() -> str:
    try:
        here = Path(__file__).resolve().parents[2]
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5,
                           check=False)
        return r.stdout.strip() if r.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _call(fn, *args, **candidates):
    """``fn(*args, …)`` with those of the keyword ``candidates`` its signature takes."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(*args, **candidates)
    return fn(*args, **{k: v for k, v in candidates.items() if k in params})


def _report_files(paths) -> list[Path]:
    """The report's files from an ``AnnualReport.paths`` or ``write_outputs`` result (a dict or a list)."""
    items = paths.values() if isinstance(paths, dict) else (paths or [])
    return [Path(p) for p in items if p and Path(p).is_file()]


def _notebook_file(result, folder: Path) -> Path | None:
    if isinstance(result, dict):
        nb = result.get("notebook") or next((v for v in result.values() if str(v).endswith(".ipynb")), None)
        if nb:
            return Path(nb)
    elif isinstance(result, (str, os.PathLike)) and str(result).endswith(".ipynb"):
        return Path(result)
    found = sorted(folder.rglob("*.ipynb"))
    return found[0] if found else None


def _readme(manifest: dict, inv) -> str:
    e = manifest["enterprise"]
    return f"""# 核查材料包 / Verification package

{e.get('name_zh') or ''} {e.get('name_en') or ''} ({e['enterprise_id']}) · {manifest['year']} ·
{manifest['regime']} ({', '.join(manifest['editions'])}) · GWP {manifest['gwp_set']} ·
factor library {manifest['factor_library_version']}

排放总量 / Total emissions: {fmt(inv.total_tco2e)} tCO2e · 碳效 / carbon efficiency:
{fmt(inv.summary.get('carbon_efficiency'), 4)} tCO2e/万元 · {len(inv.ledger)} ledger rows

## 内容 / Contents
- `data/activity.csv` 活动数据及其来源（湖批次、原始文件、SHA-256）/ activity records with their lake batch,
  raw file and SHA-256
- `data/factors.csv` 排放因子及来源（文件、表号、年份、选用理由）/ factors with provenance and why each was chosen
- `data/batches.csv`, `raw/` 原始文件（入湖时的字节）/ the raw files as the lake stored them
- `data/value_added.csv` 增加值 / value added (万元)
- `results/` 计算结果：台账、分源、分设施、分气体、月度、碳效、核对 / ledger, by source, facility, gas,
  month, carbon efficiency, reconciliation, totals
- `report/`, `notebook/` 报告与已执行的 notebook / the report and the executed notebook
- `manifest.json` 每个文件的 SHA-256 / every file's SHA-256; `manifest.sig` Ed25519 签名 / signature
  (key {manifest['signature']['public_key_fingerprint']})

## 核查 / Check
    workbench verify check THIS.zip --public-key SIGNER.pub

验证签名与每个文件的哈希，并仅用本包数据（不读数据湖）按 GB/T 32150 公式逐行重算每一项排放（活动数据 ×
排放因子），与台账、汇总、报告逐项比对。/ Verifies the signature and every hash, then recomputes every
emission from this package's own data (activity × factor, the GB/T 32150 formulas) and compares it with
the ledger, the summaries and the report, row by row.
"""


def _contents(w: _Writer, tmp: Path, lake, lk, enterprise: str, year: int, annual, why_not: str, *, report: bool,
              notebook: bool, registry, gwp: str, language: str, seconds: dict, t0: float):
    """Write every file but the manifest's into ``w``; (inventory, evidence, totals, report info,
    notebook info)."""
    start, end = f"{year}-01", f"{year}-12"
    # ---- the inventory and the report (the annual report's own inventory when it makes one)
    if report and annual is not None:
        ar = _call(annual, lake, enterprise, year, output_dir=tmp / "report", language=language, registry=registry,
                   gwp=gwp)
        inv = ar.inventory
        report_paths = _report_files(ar.paths)
        report_info = {"engine": "workbench.reports.annual.annual_report",
                       "why": "the annual GHG report (GB/T 32150) is available", "language": language}
        seconds["inventory_and_report"] = time.perf_counter() - t0
    else:
        inv = compute_inventory_from_lake(lk, enterprise, start, end, registry=registry, gwp=gwp)
        seconds["inventory"] = time.perf_counter() - t0
        report_paths = []
        report_info = {"engine": None, "why": why_not}
        if report:
            from workbench.reports.inventory import write_outputs

            t = time.perf_counter()
            out = write_outputs(inv, tmp / "report")
            report_paths = [Path(out[k]) for k in ("html", "xlsx") if k in out]
            report_info = {"engine": "workbench.reports.inventory.write_outputs",
                           "why": f"fallback: {why_not}; the inventory report of the same months instead",
                           "language": "zh/en"}
            seconds["report"] = time.perf_counter() - t
    for p in report_paths:
        w.put(f"report/{p.name}", p.read_bytes())
    report_info["files"] = [f"report/{p.name}" for p in sorted(report_paths)]
    # ---- the evidence: activity records, batches, raw files (one in memory at a time), factors, value added
    t = time.perf_counter()
    ev = collect(lk, enterprise, start, end, inventory=inv)
    for b in ev.batches.itertuples():
        _, data = ev.raw_file(b.batch_id)
        w.put(b.file, data)
        del data
    w.put("data/activity.csv", _csv(ev.activity))
    w.put("data/batches.csv", _csv(ev.batches))
    factors = inv.factors_used.copy()
    if "year" in factors:                    # a data year, not a float (site-measured factors have none)
        factors["year"] = pd.to_numeric(factors["year"], errors="coerce").round().astype("Int64")
    w.put("data/factors.csv", _csv(factors))
    w.put("data/value_added.csv", _csv(ev.value_added))
    seconds["evidence"] = time.perf_counter() - t
    # ---- the results
    w.put("results/ledger.csv", _csv(inv.ledger))
    w.put("results/by_source.csv", _csv(inv.by_source()))
    w.put("results/by_facility.csv", _csv(inv.by_facility().rename_axis("facility").reset_index()))
    w.put("results/by_gas.csv", _csv(pd.DataFrame(sorted(inv.summary["by_gas"].items()), columns=["gas", "tco2e"])))
    w.put("results/monthly.csv", _csv(inv.monthly().rename_axis("period").reset_index()))
    w.put("results/efficiency.csv", _csv(inv.efficiency))
    w.put("results/reconciliation.csv", _csv(inv.meter_check if inv.meter_check is not None else pd.DataFrame()))
    s = inv.summary
    totals = {"total_tco2e": _num(s["total_tco2e"]),
              "by_source": {k: _num(v) for k, v in s["by_source"].items()},
              "by_gas": {k: _num(v) for k, v in s["by_gas"].items()},
              "by_facility": {k: _num(v) for k, v in s["by_facility"].items()},
              "value_added": _num(s.get("value_added")), "carbon_efficiency": _num(s.get("carbon_efficiency")),
              "ledger_rows": len(inv.ledger),
              "units": {"tco2e": "tCO2e", "value_added": "万元", "carbon_efficiency": "tCO2e/万元"}}
    w.put("results/totals.json", json.dumps(totals, ensure_ascii=False, indent=2).encode("utf-8"))
    # ---- the executed notebook
    nb_info = None
    if notebook:
        t = time.perf_counter()
        nb_dir = tmp / "notebook"
        run = importlib.import_module("workbench.reports.run")
        lake_text = str(lake.base_url)
        reg_url = getattr(registry, "url", None) if registry is not None else None
        if report_info.get("engine") == "workbench.reports.annual.annual_report" and hasattr(run, "run_annual_notebook"):
            result = _call(run.run_annual_notebook, enterprise=enterprise, enterprise_id=enterprise, year=year,
                           lake=lake_text, output_dir=nb_dir, language=language, registry=reg_url, progress=False,
                           formats=("json",))
            nb_info = {"engine": "workbench.reports.run.run_annual_notebook",
                       "why": "the annual report's notebook, executed for its figures (formats: json; the "
                              "report's files in report/ come from the same machinery in the exporting process)"}
        else:
            result = run.run_inventory_notebook(period_start=start, period_end=end, lake=lake_text,
                                                enterprise_id=enterprise, registry=reg_url, output_dir=nb_dir,
                                                gwp=gwp, progress=False)
            nb_info = {"engine": "workbench.reports.run.run_inventory_notebook",
                       "why": "the inventory notebook of the same months"
                              + ("" if (report_info.get("engine") or "").endswith("annual_report") else
                                 f" (fallback: {why_not})")}
        nb = _notebook_file(result, nb_dir)
        if nb is None or not nb.is_file():
            raise VerificationError(f"the notebook run wrote no executed notebook under {nb_dir}")
        w.put(f"notebook/{nb.name}", nb.read_bytes())
        nb_info["file"] = f"notebook/{nb.name}"
        seconds["notebook"] = time.perf_counter() - t
    return inv, ev, totals, report_info, nb_info


def export_package(lake, enterprise: str, year: int, out_zip, *, private_key, report: bool = True,
                   notebook: bool = True, registry=None, gwp: str = "AR5", language: str = "zh",
                   passphrase=None, created_at: _dt.datetime | None = None) -> ExportResult:
    """Write the verification package of ``enterprise``'s ``year`` (January–December) to ``out_zip``.

    Parameters
    ----------
    lake : Lake
        The lake root (or the enterprise's lake); read only.
    enterprise : str
        The enterprise id.
    year : int
        The reporting year.
    out_zip : path
        The ZIP to write (replaced atomically when it exists).
    private_key : Ed25519PrivateKey or path
        The signing key, or its PEM file (``passphrase`` when encrypted).
    report, notebook : bool
        Include the report (the annual GHG report when :mod:`workbench.reports.annual` is
        importable, else the inventory report) and the executed notebook.
    registry : MasterData, optional
        Master data for the enterprise's record and boundary (default: the lake's own).
    gwp, language :
        The GWP set of the inventory; the report's language (annual report only).

    Returns
    -------
    :class:`ExportResult`.  The manifest's ``report`` and ``notebook`` entries name the engine that
    made each and why.
    """
    t0 = time.perf_counter()
    seconds: dict = {}
    key = private_key if isinstance(private_key, Ed25519PrivateKey) else load_private_key(private_key,
                                                                                           passphrase=passphrase)
    try:
        year = int(year)
    except (TypeError, ValueError):
        raise VerificationError(f"year {year!r}: not a year") from None
    if not 1900 <= year <= 2200:
        raise VerificationError(f"year {year}: not a reporting year")
    lk = lake.for_enterprise(enterprise)
    out_zip = Path(out_zip)
    annual, why_not = report_engine() if report else (None, "no report asked for")
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    part = out_zip.with_name(out_zip.name + ".part")
    w = _Writer(part)
    try:
        with tempfile.TemporaryDirectory(prefix="verify-export-") as tmp:
            inv, ev, totals, report_info, nb_info = _contents(
                w, Path(tmp), lake, lk, enterprise, year, annual, why_not, report=report, notebook=notebook,
                registry=registry, gwp=gwp, language=language, seconds=seconds, t0=t0)
        # ---- manifest and signature
        t = time.perf_counter()
        fp = fingerprint(key)
        w.put(PUBLIC_KEY, public_pem(key))
        from workbench import __version__

        led = inv.ledger
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "enterprise": {"enterprise_id": enterprise, "name_zh": inv.enterprise.get("name_zh", ""),
                           "name_en": inv.enterprise.get("name_en", "")},
            "year": year, "period_start": inv.period_start, "period_end": inv.period_end,
            "regime": inv.regime.name, "editions": sorted(set(led["edition"])) if len(led) else [],
            "gwp_set": led.attrs.get("gwp_set", gwp),
            "factor_library_version": led.attrs.get("factor_library_version") or default_library(gwp).version,
            "created_at": (created_at or _dt.datetime.now(_dt.UTC)).isoformat(timespec="seconds"),
            "software": {"name": "carbon-efficiency-workbench", "version": __version__,
                         "python": platform.python_version(), "git_commit": _git_commit()},
            "report": report_info, "notebook": nb_info,
            "raw_files": "the raw file of every lake batch a ledger row came from, and of those holding the value added",
            "summary": {"total_tco2e": totals["total_tco2e"], "carbon_efficiency": totals["carbon_efficiency"],
                        "ledger_rows": len(led), "raw_files": len(ev.batches)},
            "signature": {"algorithm": "Ed25519", "public_key_fingerprint": fp, "public_key_file": PUBLIC_KEY,
                          "signature_file": SIGNATURE},
        }
        w.put("README.md", _readme(manifest, inv).encode("utf-8"))
        manifest["files"] = w.files()
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        signature = {"algorithm": "Ed25519", "public_key_fingerprint": fp, "signed_file": MANIFEST,
                     "signature": sign(key, manifest_bytes)}
        w.zip.writestr(MANIFEST, manifest_bytes)
        w.zip.writestr(SIGNATURE, json.dumps(signature, indent=2).encode("utf-8"))
        w.zip.close()
        os.replace(part, out_zip)
    except BaseException:
        w.zip.close()
        part.unlink(missing_ok=True)
        raise
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return ExportResult(out_zip, manifest, fp, seconds)
