"""Check a verification package (:mod:`workbench.verification.package`) the way a third-party
verifier does — from the package alone, without the lake.

1. **signature** — ``manifest.sig`` is the Ed25519 signature of ``manifest.json`` by the key whose
   fingerprint it names: the key given (``public_key``, received from the enterprise by another
   channel: *pinned*) or, without one, the ``public_key.pem`` inside the package (which only shows
   the package is whole, not who made it — said in a warning);
2. **files** — every file in the ZIP is in the manifest and every file of the manifest is in the
   ZIP, with its SHA-256 and size;
3. **raw files** — each raw file's SHA-256 is the one the lake recorded when it stored it
   (``data/batches.csv``), and each activity record names batches and hashes that agree;
4. **recomputation** — every ledger row's emission again from its activity record
   (``data/activity.csv``) and its factors (``data/factors.csv``) with the GB/T 32150 formulas
   (:func:`workbench.verification.recompute.emission_of`, the functions of
   :mod:`workbench.accounting` the engine calls) and the regime's signs; the values the ledger
   copies (quantity, NCV, CC, OF, EF, GWP, purity) against their sources; the factor chosen against
   the factor library of this software (same library version: a difference is a problem; another
   version: a warning);
5. **results** — by source, facility, gas and month, carbon efficiency (tCO2e ÷ value added, with
   ``data/value_added.csv``) and product intensities, the totals, the reconciliation (Σ activity =
   the datum) — all from the recomputed rows;
6. **report and notebook** — the total and the figures by source in the report (HTML ``#total-tco2e``,
   the XLSX sheets) and the total and carbon efficiency the executed notebook printed.

Every problem is a :class:`~workbench.core.errors.Problem` naming the file, the row (as a
spreadsheet shows it: the header is row 1) and the column.  Where a value and its copy disagree,
the one that does not reproduce the ledger's emission is named.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from workbench.core.errors import Problem
from workbench.verification.errors import VerificationError
from workbench.verification.evidence import FACTOR_ID_COLUMNS
from workbench.verification.keys import fingerprint, load_public_key, verify_signature
from workbench.verification.package import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PUBLIC_KEY,
    SIGNATURE,
)
from workbench.verification.recompute import emission_of

__all__ = ["CheckResult", "check_package"]

REL = 1e-9          # relative tolerance of a recomputed value (CSV keeps every digit: only sums differ)
ABS = 1e-9          # absolute floor (tCO2e)

LEDGER = "results/ledger.csv"
ACTIVITY = "data/activity.csv"
FACTORS = "data/factors.csv"
BATCHES = "data/batches.csv"
VALUE_ADDED = "data/value_added.csv"


@dataclass
class CheckResult:
    """The outcome of :func:`check_package`: ``ok`` when there is no problem.

    ``problems`` (:class:`~workbench.core.errors.Problem`: file, row, column, message),
    ``warnings`` (text), ``signer`` (the signing key's fingerprint), ``key_pinned`` (checked
    against a key given by the caller), ``signature_ok``, ``files_checked``, ``rows_recomputed``,
    ``total_tco2e`` (recomputed) and ``stated_total`` (the package's), ``manifest``, ``seconds``."""

    path: str
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    signer: str = ""
    key_pinned: bool = False
    signature_ok: bool = False
    files_checked: int = 0
    rows_recomputed: int = 0
    total_tco2e: float | None = None
    stated_total: float | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """One line per problem."""
        return [str(p) for p in self.problems]

    def summary(self) -> str:
        if not self.ok:
            return f"FAILED: {len(self.problems)} problem(s) in {self.path}"
        key = "the given public key" if self.key_pinned else "the key inside the package (not pinned)"
        e = self.manifest.get("enterprise", {})
        return (f"ok: {self.path} — {e.get('enterprise_id', '')} {self.manifest.get('year', '')}, signed by {self.signer} "
                f"({key}); {self.files_checked} files hashed, {self.rows_recomputed} ledger rows recomputed, "
                f"total {self.total_tco2e:,.3f} tCO2e")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "path": self.path,
                "problems": [{"file": p.file, "row": p.row, "column": p.column, "message": p.message,
                              "text": str(p)} for p in self.problems],
                "warnings": list(self.warnings), "signer": self.signer, "key_pinned": self.key_pinned,
                "signature_ok": self.signature_ok, "files_checked": self.files_checked,
                "rows_recomputed": self.rows_recomputed, "total_tco2e": self.total_tco2e,
                "stated_total": self.stated_total, "seconds": round(self.seconds, 4),
                "enterprise": self.manifest.get("enterprise", {}).get("enterprise_id"),
                "year": self.manifest.get("year"), "format_version": self.manifest.get("format_version")}


def _close(a, b, rel=REL, abs_=ABS) -> bool:
    a_nan = a is None or (isinstance(a, float) and math.isnan(a))
    b_nan = b is None or (isinstance(b, float) and math.isnan(b))
    if a_nan or b_nan:
        return a_nan and b_nan
    return abs(float(a) - float(b)) <= max(abs_, rel * max(abs(float(a)), abs(float(b))))


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _show(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "empty"
    return f"{x:.10g}" if isinstance(x, float) else str(x)


class _Package:
    """A package's ZIP and the problems found so far."""

    def __init__(self, path: Path, z: zipfile.ZipFile, result: CheckResult):
        self.path, self.z, self.r = path, z, result
        self.names = [i.filename for i in z.infolist()]
        self._bytes: dict[str, bytes | None] = {}
        self._digests: dict[str, tuple[str, int] | None] = {}

    def problem(self, file, row, column, message) -> None:
        self.r.problems.append(Problem(file, row, column, message))

    def read(self, name: str) -> bytes | None:
        if name not in self._bytes:
            try:
                self._bytes[name] = self.z.read(name) if name in self.names else None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                self.problem(name, None, None, f"damaged in the ZIP ({str(exc)[:60] or 'unreadable'})")
                self._bytes[name] = None
        return self._bytes[name]

    def digest(self, name: str) -> tuple[str, int] | None:
        """(SHA-256, size) of a file, streamed from the ZIP (raw files may be large: never kept)."""
        if name not in self._digests:
            if name in self._bytes and self._bytes[name] is not None:
                data = self._bytes[name]
                self._digests[name] = (hashlib.sha256(data).hexdigest(), len(data))
            elif name not in self.names:
                self._digests[name] = None
            else:
                h, n = hashlib.sha256(), 0
                try:
                    with self.z.open(name) as fh:
                        for chunk in iter(lambda: fh.read(1 << 20), b""):
                            h.update(chunk)
                            n += len(chunk)
                    self._digests[name] = (h.hexdigest(), n)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                    self.problem(name, None, None, f"damaged in the ZIP ({str(exc)[:60] or 'unreadable'})")
                    self._digests[name] = None
        return self._digests[name]

    def csv(self, name: str, required: tuple = ()) -> pd.DataFrame | None:
        data = self.read(name)
        if data is None:
            if name not in self.names:
                self.problem(name, None, None, "missing from the package")
            return None
        if not data.strip():
            return pd.DataFrame(columns=list(required))
        try:
            df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except Exception as exc:  # noqa: BLE001 - any parse failure is a problem of this file
            self.problem(name, None, None, f"not a readable CSV ({str(exc).splitlines()[0][:80]})")
            return None
        for c in required:
            if c not in df.columns:
                self.problem(name, 1, c, "column missing")
                return None
        return df

    def numbers(self, name: str, df: pd.DataFrame, col: str) -> np.ndarray:
        """The column as floats; a cell that is neither empty nor a number is a problem."""
        s = df[col].astype(str).str.strip()
        v = pd.to_numeric(s, errors="coerce")
        bad = v.isna() & s.ne("") & ~s.str.lower().isin(["nan", "none", "<na>"])
        for i in np.flatnonzero(bad.to_numpy())[:20]:
            self.problem(name, int(i) + 2, col, f"'{s.iloc[i]}' is not a number")
        return v.to_numpy(dtype="float64")


# ---------------------------------------------------------------------------------------- entry
def check_package(path, *, public_key=None, library=None) -> CheckResult:
    """Check the verification package at ``path`` (see the module doc).

    ``public_key``: the signer's public key (an ``Ed25519PublicKey``, PEM bytes or a PEM file)
    to pin; ``None`` checks against the key inside the package.  ``library``: the factor library to
    compare the factors with (default: this software's, with the package's GWP set).  A file that
    is no ZIP or no verification package is a :class:`VerificationError`; a package that fails a
    check is a :class:`CheckResult` with problems.
    """
    t0 = time.perf_counter()
    pinned = None
    if public_key is not None:
        pinned = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
    path = Path(path)
    if path.is_dir():
        raise VerificationError(f"{path}: a folder, not a verification package")
    if not path.exists():
        raise VerificationError(f"{path}: no such file")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError):
        raise VerificationError(f"{path}: not a ZIP file (a verification package is the ZIP "
                                "`workbench verify export` writes)") from None
    result = CheckResult(str(path))
    with z:
        pkg = _Package(path, z, result)
        if MANIFEST not in pkg.names:
            raise VerificationError(f"{path}: not a verification package (no {MANIFEST} inside)")
        manifest = _manifest(pkg)
        if manifest is not None:
            result.manifest = manifest
            _signature(pkg, manifest, pinned)
            _files(pkg, manifest)
            _content(pkg, manifest, library)
    result.seconds = time.perf_counter() - t0
    return result


def _manifest(pkg: _Package) -> dict | None:
    data = pkg.read(MANIFEST)
    try:
        m = json.loads(data.decode("utf-8")) if data is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        pkg.problem(MANIFEST, None, None, f"not JSON ({exc.__class__.__name__.replace('JSONDecodeError', 'syntax')})")
        return None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        pkg.problem(MANIFEST, None, "format", f"not a {FORMAT} manifest")
        return None
    v = m.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION or v < 1:
        pkg.problem(MANIFEST, None, "format_version", f"version {v!r}: this software reads version {FORMAT_VERSION}")
        return None
    if not isinstance(m.get("files"), list):
        pkg.problem(MANIFEST, None, "files", "no list of files")
        return None
    return m


def _signature(pkg: _Package, manifest: dict, pinned) -> None:
    r = pkg.r
    raw = pkg.read(SIGNATURE)
    if raw is None:
        if SIGNATURE not in pkg.names:
            pkg.problem(SIGNATURE, None, None, "missing: the manifest is not signed")
        return
    try:
        sig = json.loads(raw.decode("utf-8"))
        algorithm, fp, signature = sig["algorithm"], sig["public_key_fingerprint"], sig["signature"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        pkg.problem(SIGNATURE, None, None, "unreadable (want JSON with algorithm, public_key_fingerprint, signature)")
        return
    if algorithm != "Ed25519":
        pkg.problem(SIGNATURE, None, "algorithm", f"{algorithm!r}: only Ed25519 signatures are accepted")
        return
    r.signer = str(fp)
    stated = (manifest.get("signature") or {}).get("public_key_fingerprint")
    if stated != fp:
        pkg.problem(MANIFEST, None, "signature.public_key_fingerprint",
                    f"{stated} but {SIGNATURE} names the key {fp}")
    if pinned is not None:
        key = pinned
        r.key_pinned = True
        if fingerprint(pinned) != fp:
            pkg.problem(SIGNATURE, None, "public_key_fingerprint",
                        f"the package is signed by key {fp}, not by the given public key {fingerprint(pinned)}")
            return
    else:
        pem = pkg.read(PUBLIC_KEY)
        if pem is None:
            pkg.problem(PUBLIC_KEY, None, None, "missing: no key to check the signature with (give --public-key)")
            return
        try:
            key = load_public_key(pem)
        except VerificationError:
            pkg.problem(PUBLIC_KEY, None, None, "not an Ed25519 public key in PEM")
            return
        if fingerprint(key) != fp:
            pkg.problem(PUBLIC_KEY, None, None, f"its fingerprint {fingerprint(key)} is not the signer's {fp}")
            return
        r.warnings.append(f"signature checked with the key inside the package ({fp}); pin the signer's key "
                          "received by another channel with --public-key")
    r.signature_ok = verify_signature(key, pkg.read(MANIFEST) or b"", str(signature))
    if not r.signature_ok:
        pkg.problem(SIGNATURE, None, "signature", f"does not verify {MANIFEST} with key {fp}: the manifest was "
                                                  "changed after signing, or signed with another key")


def _files(pkg: _Package, manifest: dict) -> None:
    listed = {}
    for i, f in enumerate(manifest["files"]):
        if not isinstance(f, dict) or not {"path", "sha256", "size"} <= set(f):
            pkg.problem(MANIFEST, None, f"files[{i}]", "entry without path, sha256 and size")
            continue
        if f["path"] in listed:
            pkg.problem(MANIFEST, None, f"files[{i}]", f"{f['path']} listed twice")
        listed[f["path"]] = f
    seen = set()
    for name in pkg.names:
        if name in seen:
            pkg.problem(name, None, None, "present twice in the ZIP")
        seen.add(name)
        if name not in listed and name not in (MANIFEST, SIGNATURE) and not name.endswith("/"):
            pkg.problem(name, None, None, f"not in {MANIFEST}: a file added after the package was made")
    for p, f in listed.items():
        if p not in seen:
            pkg.problem(p, None, None, f"missing: {MANIFEST} lists it (SHA-256 {f['sha256']})")
            continue
        d = pkg.digest(p)
        if d is None:
            continue
        pkg.r.files_checked += 1
        got, size = d
        if got != f["sha256"] or size != f["size"]:
            pkg.problem(p, None, None, f"SHA-256 {got} ({size} bytes) differs from the manifest's "
                                       f"{f['sha256']} ({f['size']} bytes): the file was changed")


# ---------------------------------------------------------------------------------------- content
@dataclass
class _Tables:
    activity: pd.DataFrame
    ledger: pd.DataFrame
    factors: pd.DataFrame
    rows: pd.DataFrame = None        # the recomputed rows: record_id, period, facility, source, item, gas, tco2e …
    carbon_efficiency: float = float("nan")
    regime_sources: tuple = ()


def _content(pkg: _Package, manifest: dict, library) -> None:
    from workbench.core.factors import default_library
    from workbench.core.regime import get_regime

    try:
        regime = get_regime(manifest.get("regime"))
    except Exception as exc:  # noqa: BLE001 - an unknown regime is a problem of the package
        pkg.problem(MANIFEST, None, "regime", str(exc))
        return
    try:
        lib = library or default_library(str(manifest.get("gwp_set") or "AR5"))
    except (ValueError, KeyError) as exc:
        pkg.problem(MANIFEST, None, "gwp_set", str(exc))
        lib = default_library()
    act = pkg.csv(ACTIVITY, ("record_id", "quantity", "unit", "item", "source", "period", "lake_batch", "raw_sha256"))
    led = pkg.csv(LEDGER, ("record_id", "quantity", "unit", "item", "source", "period", "facility", "gas",
                           "emission_t", "tco2e", "sign", "method") + tuple(FACTOR_ID_COLUMNS))
    fac = pkg.csv(FACTORS, ("factor_id", "kind", "value", "unit"))
    batches = pkg.csv(BATCHES, ("batch_id", "sha256", "size", "file"))
    if batches is not None and act is not None:
        _raw_files(pkg, batches, act)
    if act is None or led is None or fac is None:
        return
    t = _Tables(act, led, fac, regime_sources=tuple(regime.source_keys))
    _recompute(pkg, t, regime, lib, manifest)
    pkg.r.rows_recomputed = len(t.rows)
    pkg.r.total_tco2e = float(t.rows["tco2e"].sum())
    _results(pkg, t, regime, batches)
    _report(pkg, t, regime)
    _notebook(pkg, t, manifest)


def _raw_files(pkg: _Package, batches: pd.DataFrame, act: pd.DataFrame) -> None:
    """Raw files against the lake's record of them; activity records against the batches."""
    sha = {}
    size = pkg.numbers(BATCHES, batches, "size")
    for i, b in enumerate(batches.itertuples(index=False)):
        sha[b.batch_id] = b.sha256
        d = pkg.digest(b.file)
        if d is None:
            if b.file not in pkg.names:
                pkg.problem(BATCHES, i + 2, "file", f"{b.file}: the raw file of batch {b.batch_id} is not in the package")
            continue
        got, n = d
        if got != b.sha256:
            pkg.problem(b.file, None, None, f"SHA-256 {got} differs from {b.sha256}, the one the lake recorded when it "
                                            f"stored batch {b.batch_id} ({BATCHES} row {i + 2}): the raw file was changed")
        elif not _close(float(n), size[i]):
            pkg.problem(BATCHES, i + 2, "size", f"{_show(size[i])} but the raw file has {n} bytes")
    for j, a in enumerate(act.itertuples(index=False)):
        ids = [x for x in str(a.lake_batch).split(";") if x]
        unknown = [x for x in ids if x not in sha]
        if unknown:
            pkg.problem(ACTIVITY, j + 2, "lake_batch", f"batch {unknown[0]} is not in {BATCHES}")
            continue
        want = sorted({sha[x] for x in ids})
        got = sorted(x for x in str(a.raw_sha256).split(";") if x)
        if ids and got != want:
            pkg.problem(ACTIVITY, j + 2, "raw_sha256", f"{';'.join(got) or 'empty'} but the raw file(s) of batch(es) "
                                                       f"{';'.join(ids)} have SHA-256 {';'.join(want)}")


_FACTOR_UNIT_COLUMN = {"ncv": "ncv_unit", "carbon_content": "carbon_content_unit", "emission_factor": "ef_unit"}
_OVERRIDE_UNIT = {"ncv": "ncv_unit", "carbon_content": "carbon_content_unit", "emission_factor": "ef_unit",
                  "oxidation_rate": None}


def _to_unit(value: float, unit: str, target: str) -> float:
    from workbench.core.units import conversion_factor

    u = "dimensionless" if unit in ("", "fraction") else unit
    tg = "dimensionless" if target in ("", "fraction") else target
    return value * conversion_factor(u, tg)


def _recompute(pkg: _Package, t: _Tables, regime, lib, manifest: dict) -> None:
    """Every ledger row again from its activity record and factors (see the module doc)."""
    act, led, fac = t.activity, t.ledger, t.factors
    a_qty = pkg.numbers(ACTIVITY, act, "quantity")
    a_num = {c: pkg.numbers(ACTIVITY, act, c) for c in ("ncv", "carbon_content", "oxidation_rate", "emission_factor",
                                                           "purity") if c in act}
    l_num = {c: pkg.numbers(LEDGER, led, c) for c in ("quantity", "activity_gj", "ncv", "carbon_content",
                                                         "oxidation_rate", "emission_factor", "purity", "gwp",
                                                         "emission_t", "tco2e", "sign") if c in led}
    f_val = pkg.numbers(FACTORS, fac, "value")
    factors: dict[str, tuple[int, float, str]] = {}
    for k, (fid, unit) in enumerate(zip(fac["factor_id"], fac["unit"])):
        if fid in factors:
            pkg.problem(FACTORS, k + 2, "factor_id", f"{fid} appears twice")
        factors[fid] = (k, f_val[k], unit)
    by_id: dict[str, int] = {}
    for j, rid in enumerate(act["record_id"]):
        if rid in by_id:
            pkg.problem(ACTIVITY, j + 2, "record_id", f"{rid} appears twice")
        by_id[rid] = j
    lib_same = str(manifest.get("factor_library_version", "")) == str(lib.version)
    blamed_factors: dict[tuple, list] = {}
    signs = regime.signs
    out = []
    used = set()
    led_rows, act_rows = led.to_dict("records"), act.to_dict("records")     # (plain dicts: fast per row)
    for i in range(len(led)):
        lrow = i + 2
        L = led_rows[i]
        rid = L["record_id"]
        j = by_id.get(rid)
        if j is None:
            pkg.problem(LEDGER, lrow, "record_id", f"{rid}: no activity record of that id in {ACTIVITY}")
            continue
        used.add(rid)
        A = act_rows[j]
        arow = j + 2
        for c in ("source", "item", "unit", "period", "node_id", "facility", "gas"):
            if c in act and c in led and str(A[c]) != str(L[c]):
                pkg.problem(ACTIVITY, arow, c, f"'{A[c]}' but the ledger ({LEDGER} row {lrow}) accounts '{L[c]}'")
        item, unit, source = str(A["item"]), str(A["unit"]), str(A["source"])
        try:
            category = lib.category(item)
        except Exception:  # noqa: BLE001 - an item this software does not know
            pkg.problem(ACTIVITY, arow, "item", f"'{item}' is not an item of the factor library")
            continue
        if source not in signs:
            pkg.problem(ACTIVITY, arow, "source", f"'{source}' is not a source of {regime.name}")
            continue
        # --- the inputs: (location of the source value, source value) and (ledger column, ledger copy)
        src = {"quantity": a_qty[j]}
        copy = {"quantity": l_num["quantity"][i]}
        where_src = {"quantity": (ACTIVITY, arow, "quantity")}
        units = {}
        ids = {}
        for col, (kind, value_col) in FACTOR_ID_COLUMNS.items():
            fid = str(L[col])
            if not fid:
                continue
            ids[kind] = fid
            if fid not in factors:
                pkg.problem(LEDGER, lrow, col, f"factor {fid} is not in {FACTORS}")
                continue
            k, v, u = factors[fid]
            src[kind], units[kind] = v, u
            where_src[kind] = (FACTORS, k + 2, "value")
            if kind == "emission_factor" and category == "fuel" and "carbon_content" in ids:
                continue                        # (not used with CC and OF)
            # the ledger's copy of the value, in the factor's unit
            lv = l_num.get(value_col, np.full(len(led), np.nan))[i]
            lu = str(L[_FACTOR_UNIT_COLUMN[kind]]) if kind in _FACTOR_UNIT_COLUMN and _FACTOR_UNIT_COLUMN[kind] in led \
                else ("dimensionless" if kind == "oxidation_rate" else u)
            try:
                copy[kind] = _to_unit(lv, lu, u) if not math.isnan(lv) else lv
            except Exception:  # noqa: BLE001 - a unit that does not convert: the copy differs
                copy[kind] = float("nan")
            if fid.startswith("site:") and kind in a_num:       # a site-measured value: the record gives it too
                av = a_num[kind][j]
                au_col = _OVERRIDE_UNIT[kind]
                au = str(A[au_col]) if au_col and au_col in act else "fraction"
                try:
                    av_u = _to_unit(av, au, u)
                except Exception:  # noqa: BLE001 - units that do not convert differ
                    av_u = float("nan")
                if not _close(av_u, v):
                    if _close(copy[kind], v):           # factors.csv and the ledger agree: the record was changed
                        pkg.problem(ACTIVITY, arow, kind, f"{_show(av)} {au} but {FACTORS} row {k + 2} and the ledger "
                                                          f"({LEDGER} row {lrow}) give this site-measured value as "
                                                          f"{_show(v)} {u}")
                    else:
                        pkg.problem(FACTORS, k + 2, "value", f"{_show(v)} {u} but the site-measured value on the record "
                                                             f"({ACTIVITY} row {arow}, column '{kind}') is {_show(av)} {au}")
                        if _close(copy[kind], av_u):
                            src[kind] = av_u
        if category == "carbonate":
            p = a_num.get("purity", np.full(len(act), np.nan))[j]
            src["purity"] = 1.0 if math.isnan(p) else p
            where_src["purity"] = (ACTIVITY, arow, "purity")
            copy["purity"] = l_num.get("purity", np.full(len(led), np.nan))[i]

        def emission(values, category=category, unit=unit, units=units):
            return _emission(category, unit, units, values)

        try:
            res = emission(src)
        except Exception as exc:  # noqa: BLE001 - a unit or a factor missing: named on the ledger row
            pkg.problem(LEDGER, lrow, "method", f"cannot recompute: {str(exc).splitlines()[0][:120]}")
            continue
        sign = signs[source]
        stated_e, stated_t = l_num["emission_t"][i], l_num["tco2e"][i]
        differ = [k for k in src if k in copy and not _close(src[k], copy[k])]
        resolved = dict(src)
        if differ:
            try:
                res_copy = emission({**src, **{k: copy[k] for k in differ}})
            except Exception:  # noqa: BLE001
                res_copy = None
            copies_right = res_copy is not None and _close(res_copy["emission_t"], stated_e) \
                and not _close(res["emission_t"], stated_e)
            for k in differ:
                if copies_right:
                    f, r, c = where_src[k]
                    if f == FACTORS:
                        blamed_factors.setdefault((r, src[k], copy[k]), []).append(lrow)
                    else:
                        pkg.problem(f, r, c, f"{_show(src[k])} but the ledger ({LEDGER} row {lrow}) accounts "
                                             f"{_show(copy[k])}, which reproduces its emission {_show(stated_e)} t")
                else:
                    col = k if k in ("quantity", "purity") else FACTOR_ID_COLUMNS_BY_KIND[k][1]
                    f, r, c = where_src[k]
                    pkg.problem(LEDGER, lrow, col, f"{_show(copy[k])} but {f} row {r} ('{c}') says {_show(src[k])}")
            if copies_right:
                res = res_copy
                resolved.update({k: copy[k] for k in differ})
        co2e = res["co2e"] * sign
        if not _close(res["emission_t"], stated_e):
            pkg.problem(LEDGER, lrow, "emission_t", f"{_show(stated_e)} but {res['method']} gives {_show(res['emission_t'])} "
                                                    f"from {ACTIVITY} row {arow} and {FACTORS}")
        elif not _close(co2e, stated_t):
            pkg.problem(LEDGER, lrow, "tco2e", f"{_show(stated_t)} but {res['method']} × sign {sign:+d} gives "
                                               f"{_show(co2e)} tCO2e")
        if "sign" in l_num and not _close(l_num["sign"][i], float(sign)):
            pkg.problem(LEDGER, lrow, "sign", f"{_show(l_num['sign'][i])} but {regime.name} counts {source} with {sign:+d}")
        if str(L["method"]) != res["method"]:
            pkg.problem(LEDGER, lrow, "method", f"'{L['method']}' but a {category} record is accounted by {res['method']}")
        if res["activity_gj"] is not None and "activity_gj" in l_num and not _close(res["activity_gj"], l_num["activity_gj"][i]):
            pkg.problem(LEDGER, lrow, "activity_gj", f"{_show(l_num['activity_gj'][i])} but FC × NCV gives "
                                                     f"{_show(res['activity_gj'])} GJ")
        if category == "fuel" and "carbon_content" in ids and "emission_factor" in l_num \
                and not _close(res["emission_factor"], l_num["emission_factor"][i]):
            pkg.problem(LEDGER, lrow, "emission_factor", f"{_show(l_num['emission_factor'][i])} but CC × OF × 44/12 gives "
                                                         f"{_show(res['emission_factor'])} tCO2/GJ")
        if "edition" in led and "year" in led:
            try:
                want = regime.edition(int(str(L["period"])[:4]))
                if str(L["edition"]) != want:
                    pkg.problem(LEDGER, lrow, "edition", f"'{L['edition']}' but {L['period']} is reported under {want}")
            except ValueError:
                pkg.problem(LEDGER, lrow, "period", f"'{L['period']}' is not a month")
        _choice(pkg, lib, lib_same, lrow, L, ids, category)
        out.append({"record_id": rid, "row": lrow, "period": str(L["period"]), "facility": str(L["facility"]),
                    "source": source, "item": item, "gas": str(L["gas"]), "quantity": resolved["quantity"],
                    "unit": unit, "tco2e": co2e})
    for (r, v, c), rows in blamed_factors.items():
        pkg.problem(FACTORS, r, "value", f"{_show(v)} but the ledger accounts {_show(c)} on {len(rows)} row(s) "
                                         f"({LEDGER} row {rows[0]}{'…' if len(rows) > 1 else ''}), which reproduces their emissions")
    for j, rid in enumerate(act["record_id"]):
        if rid not in used and rid in by_id and by_id[rid] == j:
            pkg.problem(ACTIVITY, j + 2, "record_id", f"{rid}: an activity record the ledger does not account")
    t.rows = pd.DataFrame(out, columns=["record_id", "row", "period", "facility", "source", "item", "gas", "quantity",
                                        "unit", "tco2e"])


def _emission(category: str, unit: str, units: dict, values: dict) -> dict:
    """:func:`emission_of` with the factor values of ``values`` in the factor units of ``units``."""
    kw = {kind: (values[kind], units[kind]) for kind in ("ncv", "carbon_content", "oxidation_rate", "emission_factor",
                                                         "gwp")
          if kind in values and kind in units and not math.isnan(values[kind])}
    return emission_of(category, values["quantity"], unit, purity=values.get("purity"), **kw)


#: factor kind → (ledger id column, ledger value column)
FACTOR_ID_COLUMNS_BY_KIND = {kind: (col, value) for col, (kind, value) in FACTOR_ID_COLUMNS.items()}


def _choice(pkg, lib, lib_same: bool, lrow: int, L, ids: dict, category: str) -> None:
    """The factor each row names against the one this software's library chooses."""
    for kind, fid in ids.items():
        if fid.startswith("site:"):
            continue
        try:
            want = lib.lookup(str(L["item"]), kind, year=int(str(L["period"])[:4]), region=str(L.get("region", "")) or None)
        except Exception as exc:  # noqa: BLE001 - the library has no such factor
            msg = f"{fid}, but this software's library has no {kind} for {L['item']}: {str(exc)[:80]}"
            (pkg.problem(LEDGER, lrow, FACTOR_ID_COLUMNS_BY_KIND[kind][0], msg) if lib_same else
             pkg.r.warnings.append(f"{LEDGER}, row {lrow}: {msg}"))
            continue
        if want.factor_id != fid:
            msg = f"{fid}, but the library ({lib.version}) chooses {want.factor_id} for {L['item']} {str(L['period'])[:4]}"
            if lib_same:
                pkg.problem(LEDGER, lrow, FACTOR_ID_COLUMNS_BY_KIND[kind][0], msg)
            elif msg not in pkg.r.warnings:
                pkg.r.warnings.append(f"{LEDGER}, row {lrow}: {msg} (the package used library "
                                      f"{pkg.r.manifest.get('factor_library_version')})")


# ---------------------------------------------------------------------------------------- results
def _frame_check(pkg, name, df, key_col, value_cols: list, expected: dict, what: str) -> None:
    """Each row's values (``value_cols``) against ``expected[(key, col)]`` (missing: 0)."""
    nums = {c: pkg.numbers(name, df, c) for c in value_cols if c in df}
    for c in value_cols:
        if c not in df:
            pkg.problem(name, 1, c, "column missing")
    seen = set()
    for i, key in enumerate(df[key_col].astype(str)):
        seen.add(key)
        for c, v in nums.items():
            want = expected.get((key, c), 0.0)
            if not _close(v[i], want, abs_=1e-6):
                pkg.problem(name, i + 2, c, f"{_show(v[i])} but the recomputed ledger gives {_show(want)} {what}")
    for (key, _), want in expected.items():
        if key not in seen and not _close(want, 0.0, abs_=1e-6):
            pkg.problem(name, None, key_col, f"no row for {key} ({_show(want)} {what} recomputed)")


def _intensity_columns(columns) -> list[tuple[str, str]]:
    """(intensity column, output column) pairs of an efficiency table: ``enterprise_tco2e_per_<unit>_<product>``
    with ``output_<product>_<unit>`` (:func:`workbench.inventory.compute._assemble` names them so)."""
    cols = list(columns)
    pairs = []
    for c in cols:
        if not c.startswith("output_"):
            continue
        rest = c[len("output_"):]
        for k in [i for i, ch in enumerate(rest) if ch == "_"]:
            product, unit = rest[:k], rest[k + 1:]
            want = f"enterprise_tco2e_per_{unit}_{product}"
            if want in cols:
                pairs.append((want, c))
                break
    return pairs


def _results(pkg: _Package, t: _Tables, regime, batches) -> None:
    from workbench.accounting import carbon_efficiency, carbon_intensity
    from workbench.core.units import convert

    rows = t.rows
    total = float(rows["tco2e"].sum())
    by_source = rows.groupby("source")["tco2e"].sum().to_dict()
    by_fs = rows.groupby(["facility", "source"])["tco2e"].sum()
    by_ps = rows.groupby(["period", "source"])["tco2e"].sum()
    by_gas = rows.groupby("gas")["tco2e"].sum().to_dict()
    by_fac = rows.groupby("facility")["tco2e"].sum().to_dict()
    by_period = rows.groupby("period")["tco2e"].sum().to_dict()
    sources = regime.source_keys

    df = pkg.csv("results/by_source.csv", ("source", "tco2e"))
    if df is not None:
        _frame_check(pkg, "results/by_source.csv", df, "source", ["tco2e"],
                     {(s, "tco2e"): by_source.get(s, 0.0) for s in sources}, "tCO2e")
    df = pkg.csv("results/by_facility.csv", ("facility",))
    if df is not None:
        exp = {(f, s): float(v) for (f, s), v in by_fs.items()}
        exp.update({(f, "total"): float(v) for f, v in by_fac.items()})
        _frame_check(pkg, "results/by_facility.csv", df, "facility", [s for s in sources if s in df] + ["total"], exp,
                     "tCO2e")
    df = pkg.csv("results/by_gas.csv", ("gas", "tco2e"))
    if df is not None:
        _frame_check(pkg, "results/by_gas.csv", df, "gas", ["tco2e"], {(g, "tco2e"): v for g, v in by_gas.items()},
                     "tCO2e")
    df = pkg.csv("results/monthly.csv", ("period",))
    if df is not None:
        _frame_check(pkg, "results/monthly.csv", df, "period", [s for s in sources if s in df],
                     {(p, s): float(v) for (p, s), v in by_ps.items()}, "tCO2e")
    # value added and carbon efficiency
    va = pkg.csv(VALUE_ADDED, ("period", "value_added"))
    va_of, va_row = {}, {}
    if va is not None:
        v = pkg.numbers(VALUE_ADDED, va, "value_added")
        va_of = dict(zip(va["period"].astype(str), v))
        va_row = {p: i + 2 for i, p in enumerate(va["period"].astype(str))}
        if batches is not None and "lake_batches" in va:
            known = set(batches["batch_id"])
            for i, lb in enumerate(va["lake_batches"]):
                miss = [b for b in str(lb).split(";") if b and b not in known]
                if miss:
                    pkg.problem(VALUE_ADDED, i + 2, "lake_batches", f"batch {miss[0]} is not in {BATCHES}")
    eff = pkg.csv("results/efficiency.csv", ("period", "tco2e", "value_added", "carbon_efficiency"))
    if eff is not None:
        name = "results/efficiency.csv"
        e_t = pkg.numbers(name, eff, "tco2e")
        e_va = pkg.numbers(name, eff, "value_added")
        e_ce = pkg.numbers(name, eff, "carbon_efficiency")
        for i, p in enumerate(eff["period"].astype(str)):
            want_t = float(by_period.get(p, 0.0))
            if not _close(e_t[i], want_t, abs_=1e-6):
                pkg.problem(name, i + 2, "tco2e", f"{_show(e_t[i])} but the recomputed ledger gives {_show(want_t)} tCO2e")
            want_va = va_of.get(p, float("nan"))
            if va is not None and not _close(e_va[i], want_va):
                if _close(e_ce[i], float(carbon_efficiency(want_t, e_va[i]))) and p in va_row:
                    # the results agree with themselves: the value added given as data was changed
                    pkg.problem(VALUE_ADDED, va_row[p], "value_added", f"{_show(want_va)} 万元 but the carbon efficiency "
                                                                       f"({name} row {i + 2}) is computed with {_show(e_va[i])}")
                    want_va = va_of[p] = e_va[i]
                else:
                    pkg.problem(name, i + 2, "value_added", f"{_show(e_va[i])} but {VALUE_ADDED} gives {_show(want_va)} 万元")
            want_ce = float(carbon_efficiency(want_t, want_va))
            if not _close(e_ce[i], want_ce):
                pkg.problem(name, i + 2, "carbon_efficiency", f"{_show(e_ce[i])} but {_show(want_t)} tCO2e ÷ "
                                                              f"{_show(want_va)} 万元 = {_show(want_ce)} tCO2e/万元")
            for col, out_col in _intensity_columns(eff.columns):
                o = _f(eff[out_col].iloc[i]) if str(eff[out_col].iloc[i]).strip() else float("nan")
                got = _f(eff[col].iloc[i]) if str(eff[col].iloc[i]).strip() else float("nan")
                want = float(carbon_intensity(want_t, o))
                if not _close(got, want):
                    pkg.problem(name, i + 2, col, f"{_show(got)} but {_show(want_t)} tCO2e ÷ {_show(o)} = {_show(want)}")
        all_va = [va_of.get(p, float("nan")) for p in eff["period"].astype(str)]
        total_va = float(np.nansum(all_va)) if len(all_va) and not any(math.isnan(x) for x in all_va) else float("nan")
    else:
        total_va = float("nan")
    ce = total / total_va if total_va and total_va > 0 else float("nan")
    t.carbon_efficiency = ce
    # totals.json
    raw = pkg.read("results/totals.json")
    if raw is None:
        if "results/totals.json" not in pkg.names:
            pkg.problem("results/totals.json", None, None, "missing from the package")
    else:
        try:
            tot = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            pkg.problem("results/totals.json", None, None, "not JSON")
            tot = None
        if isinstance(tot, dict):
            pkg.r.stated_total = _f(tot.get("total_tco2e"))

            def chk(path: str, got, want, what="tCO2e", abs_=1e-6):
                g = float("nan") if got is None else _f(got)
                if not _close(g, want, abs_=abs_):
                    pkg.problem("results/totals.json", None, path, f"{_show(g)} but recomputed {_show(want)} {what}")

            chk("total_tco2e", tot.get("total_tco2e"), total)
            for group, exp in (("by_source", {s: by_source.get(s, 0.0) for s in sources}), ("by_gas", by_gas),
                               ("by_facility", by_fac)):
                got = tot.get(group) or {}
                for k in sorted(set(got) | set(exp)):
                    chk(f"{group}.{k}", got.get(k, 0.0), float(exp.get(k, 0.0)))
            chk("value_added", tot.get("value_added"), total_va, "万元")
            chk("carbon_efficiency", tot.get("carbon_efficiency"), ce, "tCO2e/万元", abs_=ABS)
    stated = (pkg.r.manifest.get("summary") or {}).get("total_tco2e")
    if stated is not None and not _close(_f(stated), total, abs_=1e-6):
        pkg.problem(MANIFEST, None, "summary.total_tco2e", f"{_show(_f(stated))} but recomputed {_show(total)} tCO2e")
    # reconciliation: Σ activity of each (period, source, item) = the datum
    rec = pkg.csv("results/reconciliation.csv")
    if rec is not None and len(rec) and {"period", "source", "item", "unit", "datum"} <= set(rec.columns):
        datum = pkg.numbers("results/reconciliation.csv", rec, "datum")
        g = rows.groupby(["period", "source", "item"])
        for i, r in enumerate(rec.itertuples(index=False)):
            key = (str(r.period), str(r.source), str(r.item))
            if key not in g.groups:
                continue
            part = rows.loc[g.groups[key]]
            try:
                q = float(convert(part["quantity"].to_numpy(dtype=float), part["unit"].to_numpy(), str(r.unit)).sum())
            except Exception:  # noqa: BLE001, S112 - units of another kind: not comparable, nothing to check
                continue
            if not _close(q, datum[i], rel=1e-9, abs_=1e-6):
                pkg.problem("results/reconciliation.csv", i + 2, "datum",
                            f"{_show(datum[i])} {r.unit} but the activity records of {' '.join(key)} sum to {_show(q)}")


# ---------------------------------------------------------------------------------------- report, notebook
def _report(pkg: _Package, t: _Tables, regime) -> None:
    total = float(t.rows["tco2e"].sum())
    by_source = t.rows.groupby("source")["tco2e"].sum().to_dict()
    found = False
    pdfs = []
    for name in pkg.names:
        if not name.startswith("report/"):
            continue
        data = pkg.read(name)
        if data is None:
            continue
        low = name.lower()
        if low.endswith((".html", ".htm")):
            html = data.decode("utf-8", "replace")
            for m in re.finditer(r'id="(total-tco2e|total-line)"[^>]*>\s*([^<]+?)\s*<', html):
                found = True
                shown = m.group(2)
                v = _f(shown.replace(",", ""))
                digits = len(shown.split(".")[1]) if "." in shown else 0
                if not abs(v - total) <= 0.5 * 10 ** -digits + 1e-9:
                    pkg.problem(name, None, f"#{m.group(1)}", f"{shown} but the recomputed total is {total:,.{digits}f} tCO2e")
        elif low.endswith(".xlsx"):
            found = _report_xlsx(pkg, name, data, total, by_source, t) or found
        elif low.endswith(".pdf"):
            pdfs.append((name, data))
    for name, data in pdfs:             # the same report as PDF: it must show the total the others show
        if _report_pdf(pkg, name, data, total):
            found = True
        elif found:
            pkg.problem(name, None, None, f"its text does not show the total {total:,.1f} tCO2e that the report's "
                                          "other files show")
    if not found and any(n.startswith("report/") for n in pkg.names):
        pkg.r.warnings.append("the report's total was not located in its files (only their hashes were checked)")


#: the first cell of a report's summary row holding the total (inventory report; annual report zh/en)
_TOTAL_LABELS = ("total emissions", "排放总量")
_SOURCE_HEADS = ("source", "排放源")


def _report_xlsx(pkg, name, data, total, by_source, t) -> bool:
    """The report workbook's figures, sheets recognised by their headers: a summary row labelled as
    the total, a table with one row per source and a tCO2e column, the ledger (record_id, tco2e)."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any failure to open is a problem of the file
        pkg.problem(name, None, None, "not a readable XLSX workbook")
        return True
    found = False
    want_row = dict(zip(t.rows["record_id"], t.rows["tco2e"]))
    try:
        for ws in wb.worksheets:
            where = f"{name} [{ws.title}]"
            first = next(ws.iter_rows(max_row=1, values_only=True), None)
            if not first:
                continue
            head = [str(h).strip() if h is not None else "" for h in first]
            t_col = next((i for i, h in enumerate(head) if h == "tco2e" or h.endswith("tCO2e")), None)
            small = ws.max_row is None or ws.max_row < 200      # (a summary is small; large tables are read
            wanted = ("record_id" in head and "tco2e" in head) or small   # only when they are the ledger)
            if not wanted:
                continue
            rows = list(ws.iter_rows(values_only=True))
            if "record_id" in head and "tco2e" in head:
                ri, vi = head.index("record_id"), head.index("tco2e")
                for r, row in enumerate(rows[1:], start=2):
                    rid = str(row[ri])
                    if rid in want_row and not _close(_f(row[vi]), float(want_row[rid])):
                        pkg.problem(where, r, "tco2e", f"{_show(_f(row[vi]))} but recomputed "
                                                       f"{_show(float(want_row[rid]))} tCO2e for {rid}")
                continue
            if head and head[0].lower() in _SOURCE_HEADS and t_col is not None:
                keys = [str(row[0]) for row in rows[1:] if row and row[0] is not None]
                if len(keys) == len(set(keys)) and set(keys) <= set(t.regime_sources):
                    for r, row in enumerate(rows[1:], start=2):
                        v, want = _f(row[t_col]), float(by_source.get(str(row[0]), 0.0))
                        if not _close(v, want, abs_=1e-6):
                            pkg.problem(where, r, head[t_col], f"{_show(v)} but recomputed {_show(want)} tCO2e")
                continue
            for r, row in enumerate(rows[1:], start=2):
                label = str(row[0] or "").strip().lower() if row else ""
                if len(row) > 1 and label.startswith(_TOTAL_LABELS):
                    found = True
                    v = _f(row[1])
                    if not _close(v, total, abs_=1e-6):
                        pkg.problem(where, r, head[1] if len(head) > 1 else "B",
                                    f"{_show(v)} but the recomputed total is {_show(total)} tCO2e")
    finally:
        wb.close()
    return found


def _report_pdf(pkg, name, data, total) -> bool:
    """Whether the PDF's text shows the total (read page by page until it does: a PDF's text layer is
    slow to parse, and the total is on its first page)."""
    shown = {f"{total:,.{d}f}" for d in (0, 1, 2, 3)} | {f"{total:.{d}f}" for d in (0, 1, 2, 3)}
    try:
        import pdfplumber

        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages:
                text = page.extract_text() or ""
                if any(s in text for s in shown):
                    return True
    except Exception:  # noqa: BLE001 - any failure to read is a problem of the file
        pkg.problem(name, None, None, "not a readable PDF")
        return True                     # (named already)
    pkg.r.warnings.append(f"{name}: the recomputed total {total:,.1f} tCO2e was not found in its text")
    return False


def _notebook(pkg: _Package, t: _Tables, manifest: dict) -> None:
    nb_name = (manifest.get("notebook") or {}).get("file")
    if not nb_name:
        return
    data = pkg.read(nb_name)
    if data is None:
        return
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        pkg.problem(nb_name, None, None, "not a notebook (JSON)")
        return
    total = float(t.rows["tco2e"].sum())
    saw = False
    for ci, cell in enumerate(nb.get("cells", []) if isinstance(nb, dict) else []):
        for o in cell.get("outputs", []) or []:
            text = o.get("text") if o.get("output_type") == "stream" else None
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else str(text)
            for m in re.finditer(r"total ([\d,]+(?:\.(\d+))?) tCO2e", text):
                saw = True
                v = _f(m.group(1).replace(",", ""))
                digits = len(m.group(2) or "")
                if not abs(v - total) <= 0.5 * 10 ** -digits + 1e-9:
                    pkg.problem(nb_name, None, f"cell {ci + 1}", f"prints total {m.group(1)} tCO2e but the recomputed "
                                                                 f"total is {total:,.{digits}f}")
            for m in re.finditer(r"carbon efficiency (-?[\d.]+) tCO2e", text):
                ce = t.carbon_efficiency
                v = _f(m.group(1))
                digits = len(m.group(1).split(".")[1]) if "." in m.group(1) else 0
                if not math.isnan(ce) and not abs(v - ce) <= 0.5 * 10 ** -digits + 1e-12:
                    pkg.problem(nb_name, None, f"cell {ci + 1}", f"prints carbon efficiency {m.group(1)} but the "
                                                                 f"recomputed one is {ce:.{digits}f} tCO2e/万元")
    if not saw:
        pkg.r.warnings.append(f"{nb_name}: no printed total found in the executed notebook (only its hash was checked)")
