"""The verification package (issue 14, point 3): a round trip on a small lake whose every emission is
worked out by hand (tests/verification/verify_lake.py), the recomputation of the hand case, and
tampering — a number changed in each kind of file is detected and named by file, row and column,
whether or not the tamperer also re-signed the manifest; a wrong key, a missing file and an extra
file are refused."""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

import pandas as pd
import pytest
from verify_lake import (
    ELECTRICITY,
    ENT,
    EXPORT,
    GAS,
    LEDGER,
    LIMESTONE,
    SF6,
    TOTAL,
    VALUE_ADDED,
)

from workbench.verification import (
    FORMAT,
    FORMAT_VERSION,
    VerificationError,
    check_package,
    emission_of,
    fingerprint,
    generate_key,
    public_pem,
)
from workbench.verification.keys import sign


# ------------------------------------------------------------------------------------ helpers
def read(path, name) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def frame(path, name) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(read(path, name)), dtype=str, keep_default_na=False)


def names(path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def rewrite(src, dst, changes: dict, *, resign_with=None, drop=(), add=None) -> None:
    """``src`` → ``dst`` with ``changes`` ({name: bytes → bytes}) applied, files dropped or added;
    ``resign_with``: a key that re-hashes the manifest and signs it again (a tamperer with a key)."""
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    for n, fn in changes.items():
        files[n] = fn(files[n])
    for n in drop:
        files.pop(n)
    files.update(add or {})
    if resign_with is not None:
        files["public_key.pem"] = public_pem(resign_with)
        m = json.loads(files["manifest.json"])
        for f in m["files"]:
            if f["path"] in files:
                f["sha256"], f["size"] = hashlib.sha256(files[f["path"]]).hexdigest(), len(files[f["path"]])
        m["signature"]["public_key_fingerprint"] = fingerprint(resign_with)
        body = json.dumps(m, ensure_ascii=False, indent=2).encode()
        files["manifest.json"] = body
        files["manifest.sig"] = json.dumps({"algorithm": "Ed25519", "public_key_fingerprint": fingerprint(resign_with),
                                            "signed_file": "manifest.json", "signature": sign(resign_with, body)}).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in files.items():
            z.writestr(n, b)


def where(result) -> set:
    return {(p.file, p.row, p.column) for p in result.problems}


# ------------------------------------------------------------------------------------ the formulas
def test_recomputation_equals_the_hand_computed_emission():
    """3,000 kWh × 0.5703 tCO2/MWh = 1.7109 tCO2 (and the other cases of the lake, by hand)."""
    assert emission_of("electricity", 3000, "kWh", emission_factor=(0.5703, "tCO2/MWh"))["emission_t"] == \
        pytest.approx(1.7109, rel=1e-12)
    gas = emission_of("fuel", 2.5, "万Nm3", ncv=(389.31, "GJ/(10^4 Nm3)"), carbon_content=(15.3, "tC/TJ"),
                      oxidation_rate=(99, "percent"))
    assert gas["activity_gj"] == pytest.approx(973.275, rel=1e-12)
    assert gas["emission_factor"] == pytest.approx(0.0153 * 0.99 * 44 / 12, rel=1e-12)
    assert gas["emission_t"] == pytest.approx(54.05472022, rel=1e-9) and gas["method"] == "FC×NCV×CC×OF×44/12"
    lime = emission_of("carbonate", 100, "t", emission_factor=(0.4397, "tCO2/t"), purity=0.9)
    assert lime["emission_t"] == pytest.approx(39.573, rel=1e-12) and lime["method"] == "M×P×EF"
    sf6 = emission_of("gas", 0.001, "t", gwp=(23500, "tCO2e/t"))
    assert (sf6["emission_t"], sf6["co2e"]) == (pytest.approx(0.001), pytest.approx(23.5))
    heat = emission_of("heat", 100, "GJ", emission_factor=(0.11, "tCO2/GJ"))
    assert heat["emission_t"] == pytest.approx(11.0)
    site = emission_of("fuel", 10, "t", ncv=(20.0, "GJ/t"), emission_factor=(2.0, "tCO2/t"))
    assert (site["emission_t"], site["method"]) == (pytest.approx(20.0), "FC×EF")
    with pytest.raises(ValueError, match="NCV"):
        emission_of("fuel", 1, "t", carbon_content=(15.3, "tC/TJ"), oxidation_rate=(99, "percent"))


# ------------------------------------------------------------------------------------ round trip
def test_the_package_checks_and_recomputes_the_hand_figures(full_package, signing_key):
    path, res = full_package
    result = check_package(path, public_key=public_pem(signing_key))
    assert result.ok, result.lines()
    assert result.signature_ok and result.key_pinned and result.signer == fingerprint(signing_key)
    assert result.rows_recomputed == 5
    assert result.total_tco2e == pytest.approx(TOTAL, rel=1e-12)
    assert result.total_tco2e == pytest.approx(1.7109 + 54.05472022 + 39.573 - 0.2653 + 23.5, rel=1e-9)
    assert result.files_checked == len(res.manifest["files"])
    totals = json.loads(read(path, "results/totals.json"))
    assert totals["total_tco2e"] == pytest.approx(TOTAL, rel=1e-12)
    assert totals["value_added"] == pytest.approx(VALUE_ADDED)
    assert totals["carbon_efficiency"] == pytest.approx(TOTAL / VALUE_ADDED, rel=1e-12)
    assert totals["by_source"]["exported_electricity"] == pytest.approx(EXPORT)
    assert totals["by_source"]["process"] == pytest.approx(LIMESTONE + SF6)
    assert totals["by_source"]["combustion"] == pytest.approx(GAS)
    assert totals["by_source"]["purchased_electricity"] == pytest.approx(ELECTRICITY)


def test_the_manifest_says_what_the_package_is(full_package, signing_key):
    path, _res = full_package
    m = json.loads(read(path, "manifest.json"))
    assert (m["format"], m["format_version"]) == (FORMAT, FORMAT_VERSION)
    assert m["enterprise"]["enterprise_id"] == ENT and m["year"] == 2026
    assert m["regime"] == "GB/T 32150" and m["editions"] == ["GB/T 32150-2025"]
    assert m["gwp_set"] == "AR5" and m["factor_library_version"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", m["created_at"])
    assert m["software"]["version"] and m["software"]["python"]
    assert m["signature"] == {"algorithm": "Ed25519", "public_key_fingerprint": fingerprint(signing_key),
                              "public_key_file": "public_key.pem", "signature_file": "manifest.sig"}
    # the report's and the notebook's engine are stated, with the reason
    assert m["report"]["engine"] in ("workbench.reports.annual.annual_report", "workbench.reports.inventory.write_outputs")
    assert m["report"]["why"] and m["report"]["files"]
    assert m["notebook"]["engine"].startswith("workbench.reports.run.run_") and m["notebook"]["file"] in names(path)
    # every file but the manifest and its signature, each with its SHA-256 and size
    listed = {f["path"]: f for f in m["files"]}
    assert set(listed) == set(names(path)) - {"manifest.json", "manifest.sig"}
    for p, f in listed.items():
        data = read(path, p)
        assert (f["sha256"], f["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
    sig = json.loads(read(path, "manifest.sig"))
    signing_key.public_key().verify(__import__("base64").b64decode(sig["signature"]), read(path, "manifest.json"))


def test_activity_records_carry_their_raw_file_and_factors_their_provenance(full_package, vlake):
    path, _ = full_package
    tmp, _ = vlake
    act = frame(path, "data/activity.csv")
    ledger_bytes = (tmp / "ledger-2026.csv").read_bytes()
    sha = hashlib.sha256(ledger_bytes).hexdigest()
    assert list(act["item"]) == ["grid", "natural_gas", "limestone", "grid", "sf6"]
    assert set(act["raw_sha256"]) == {sha} and set(act["basis"]) == {"ledger"}
    raw = act["raw_files"].iloc[0]
    assert raw.startswith("raw/") and raw.endswith("/ledger-2026.csv") and read(path, raw) == ledger_bytes
    assert read(path, raw).decode() == LEDGER
    batches = frame(path, "data/batches.csv").set_index("batch_id")
    assert batches.at[act["lake_batch"].iloc[0], "sha256"] == sha
    assert set(batches["role"]) == {"activity", "value_added"}          # the production file too
    fac = frame(path, "data/factors.csv").set_index("factor_id")
    ncv = fac.loc["gbt32151.22-2024:natural_gas:ncv"]
    assert (ncv["value"], ncv["unit"], ncv["document"], ncv["table"], ncv["year"]) == \
        ("389.31", "GJ/(10^4 Nm3)", "GB/T 32151.22-2024", "Table C.1", "2024")
    site = fac.loc[[i for i in fac.index if i.startswith("site:")]]
    assert list(site["value"]) == ["0.5703"] and list(site["unit"]) == ["tCO2/MWh"]
    assert "mee-avg:CN:2023" in fac.index                 # the exported electricity's national factor
    assert frame(path, "data/value_added.csv")["value_added"].astype(float).tolist() == [100.0, 50.0]


def test_the_quick_package_checks_too(quick_package):
    path, res = quick_package
    assert res.manifest["report"]["engine"] is None and res.manifest["notebook"] is None
    assert not [n for n in names(path) if n.startswith(("report/", "notebook/"))]
    result = check_package(path)
    assert result.ok, result.lines()
    assert any("not pinned" in w or "--public-key" in w for w in result.warnings)
    assert result.total_tco2e == pytest.approx(TOTAL, rel=1e-12)


# ------------------------------------------------------------------------------------ tampering
def _row(path, name, col, value) -> int:
    """The spreadsheet row (header = 1) of the first row of ``name`` whose ``col`` is ``value``."""
    df = frame(path, name)
    return int(df.index[df[col] == value][0]) + 2


def _sub(pattern, repl):
    def f(data: bytes) -> bytes:
        text = data.decode("utf-8")
        new, n = re.subn(pattern, repl, text, count=1)
        assert n == 1, (pattern, text[:400])
        return new.encode("utf-8")
    return f


def _csv_cell(key_col, key, col, value):
    """Change one cell of a CSV (by the row whose ``key_col`` is ``key``), keeping everything else."""
    def f(data: bytes) -> bytes:
        df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        df.loc[df[key_col] == key, col] = value
        return df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return f


def _xlsx_total(data: bytes) -> bytes:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(data))
    for ws in wb.worksheets:
        for row in ws.iter_rows(min_row=2):
            label = str(row[0].value or "").lower()
            if label.startswith(("total emissions", "排放总量")):
                row[1].value = (float(row[1].value) + 1.0) if not isinstance(row[1].value, str) \
                    else str(float(row[1].value) + 1.0)
                out = io.BytesIO()
                wb.save(out)
                return out.getvalue()
    raise AssertionError("no total row in the report's workbook")


def _report(path, suffix) -> str:
    return next(n for n in names(path) if n.startswith("report/") and n.endswith(suffix))


#: kind of file → (file in the package (or a function of the package), change, expected (file, row, column))
def _cases(path):
    gas_q = {"item": "natural_gas"}
    ledger, act = "results/ledger.csv", "data/activity.csv"
    gas_rid = frame(path, ledger).set_index("item").at["natural_gas", "record_id"]
    site_id = next(i for i in frame(path, "data/factors.csv")["factor_id"] if i.startswith("site:"))
    html, xlsx = _report(path, ".html"), _report(path, ".xlsx")
    raw = next(n for n in names(path) if n.startswith("raw/") and n.endswith("ledger-2026.csv"))
    nb = next(n for n in names(path) if n.startswith("notebook/"))
    shown = f"{TOTAL:,.1f}"
    return {
        "activity quantity": (act, _csv_cell("record_id", gas_rid, "quantity", "2.6"),
                              (act, _row(path, act, "item", gas_q["item"]), "quantity")),
        "activity site factor": (act, _csv_cell("item", "grid", "emission_factor", "0.5803"),
                                 (act, _row(path, act, "item", "grid"), "emission_factor")),
        "factor value": ("data/factors.csv", _csv_cell("factor_id", "gbt32151.22-2024:natural_gas:ncv", "value", "389.41"),
                         ("data/factors.csv", _row(path, "data/factors.csv", "factor_id",
                                                   "gbt32151.22-2024:natural_gas:ncv"), "value")),
        "site factor value": ("data/factors.csv", _csv_cell("factor_id", site_id, "value", "0.6703"),
                              ("data/factors.csv", _row(path, "data/factors.csv", "factor_id", site_id), "value")),
        "ledger result": (ledger, _csv_cell("record_id", gas_rid, "tco2e", "64.05472022500001"),
                          (ledger, _row(path, ledger, "record_id", gas_rid), "tco2e")),
        "ledger emission": (ledger, _csv_cell("item", "limestone", "emission_t", "40.573"),
                            (ledger, _row(path, ledger, "item", "limestone"), "emission_t")),
        "ledger quantity": (ledger, _csv_cell("item", "limestone", "quantity", "110"),
                            (ledger, _row(path, ledger, "item", "limestone"), "quantity")),
        "ledger copied factor": (ledger, _csv_cell("record_id", gas_rid, "ncv", "389.41"),
                                 (ledger, _row(path, ledger, "record_id", gas_rid), "ncv")),
        "ledger sign": (ledger, _csv_cell("source", "exported_electricity", "sign", "1"),
                        (ledger, _row(path, ledger, "source", "exported_electricity"), "sign")),
        "by source": ("results/by_source.csv", _csv_cell("source", "process", "tco2e", "63.0"),
                      ("results/by_source.csv", _row(path, "results/by_source.csv", "source", "process"), "tco2e")),
        "by facility": ("results/by_facility.csv", _csv_cell("facility", "F01", "total", "117.0"),
                        ("results/by_facility.csv", _row(path, "results/by_facility.csv", "facility", "F01"), "total")),
        "by gas": ("results/by_gas.csv", _csv_cell("gas", "CO2", "tco2e", "90.0"),
                   ("results/by_gas.csv", _row(path, "results/by_gas.csv", "gas", "CO2"), "tco2e")),
        "monthly": ("results/monthly.csv", _csv_cell("period", "2026-04", "process", "24.5"),
                    ("results/monthly.csv", _row(path, "results/monthly.csv", "period", "2026-04"), "process")),
        "carbon efficiency": ("results/efficiency.csv", _csv_cell("period", "2026-03", "carbon_efficiency", "0.5"),
                              ("results/efficiency.csv", _row(path, "results/efficiency.csv", "period", "2026-03"),
                               "carbon_efficiency")),
        "value added": ("data/value_added.csv", _csv_cell("period", "2026-03", "value_added", "110.0"),
                        ("data/value_added.csv", _row(path, "data/value_added.csv", "period", "2026-03"), "value_added")),
        "reconciliation": ("results/reconciliation.csv", _csv_cell("item", "limestone", "datum", "101.0"),
                           ("results/reconciliation.csv", _row(path, "results/reconciliation.csv", "item", "limestone"),
                            "datum")),
        "totals": ("results/totals.json", _sub(r'"total_tco2e": [0-9.]+', '"total_tco2e": 128.57332022500001'),
                   ("results/totals.json", None, "total_tco2e")),
        "report total (HTML)": (html, _sub(rf'(id="total-tco2e"[^>]*>\s*){re.escape(shown)}', r"\g<1>128.6"),
                                (html, None, "#total-tco2e")),
        "report total (XLSX)": (xlsx, _xlsx_total, None),
        "raw file byte": (raw, _sub(r"2\.5,万Nm3", "2.6,万Nm3"), (raw, None, None)),
        "notebook total": (nb, _sub(r"total [\d,]+\.\d+ tCO2e", "total 128.573 tCO2e"), None),
    }


CASES = ["activity quantity", "activity site factor", "factor value", "site factor value", "ledger result",
         "ledger emission", "ledger quantity", "ledger copied factor", "ledger sign", "by source", "by facility",
         "by gas", "monthly", "carbon efficiency", "value added", "reconciliation", "totals", "report total (HTML)",
         "report total (XLSX)", "raw file byte", "notebook total"]


@pytest.fixture(scope="module")
def cases(full_package):
    return _cases(full_package[0])


@pytest.mark.parametrize("resign", [False, True], ids=["hashes", "re-signed"])
@pytest.mark.parametrize("case", CASES)
def test_a_changed_number_is_detected_and_named(case, resign, cases, full_package, signing_key, tmp_path):
    path, _ = full_package
    name, change, expected = cases[case]
    bad = tmp_path / "tampered.zip"
    rewrite(path, bad, {name: change}, resign_with=signing_key if resign else None)
    result = check_package(bad, public_key=public_pem(signing_key))
    assert not result.ok
    got = where(result)
    if not resign:          # the file's hash no longer matches the signed manifest
        assert (name, None, None) in got and result.signature_ok, result.lines()
    else:                   # signed again with the key: only the content gives it away
        assert result.signature_ok and not any("differs from the manifest" in p.message for p in result.problems)
    if expected is None:    # the report's workbook and the notebook: named by file (sheet) and the cell's place
        assert any(p.file.startswith(name) and p.file != name or (p.file == name and p.column) for p in result.problems), \
            result.lines()
    else:
        assert expected in got, result.lines()
    if resign:              # and nothing else is blamed
        assert all(p.file.startswith(name) for p in result.problems), result.lines()


def test_the_report_total_in_the_workbook_is_named_by_sheet_and_row(cases, full_package, signing_key, tmp_path):
    path, _ = full_package
    name, change, _ = cases["report total (XLSX)"]
    bad = tmp_path / "xlsx.zip"
    rewrite(path, bad, {name: change}, resign_with=signing_key)
    result = check_package(bad)
    hit = [p for p in result.problems if p.file.startswith(f"{name} [")]
    assert hit and hit[0].row is not None and hit[0].column, result.lines()


def test_the_notebook_total_is_named_by_cell(cases, full_package, signing_key, tmp_path):
    path, _ = full_package
    name, change, _ = cases["notebook total"]
    bad = tmp_path / "nb.zip"
    rewrite(path, bad, {name: change}, resign_with=signing_key)
    result = check_package(bad)
    assert next(p.column for p in result.problems if p.file == name).startswith("cell "), result.lines()


def test_a_wrong_key_is_refused(full_package, signing_key, tmp_path):
    path, _ = full_package
    other = generate_key()
    result = check_package(path, public_key=public_pem(other))
    assert not result.ok and ("manifest.sig", None, "public_key_fingerprint") in where(result)
    assert fingerprint(signing_key) in result.lines()[0] and fingerprint(other) in result.lines()[0]
    # a package re-signed by someone else, checked against the enterprise's key
    forged = tmp_path / "forged.zip"
    rewrite(path, forged, {"results/totals.json": _sub(r'"ledger_rows": 5', '"ledger_rows": 5 ')}, resign_with=other)
    assert not check_package(forged, public_key=public_pem(signing_key)).ok
    assert check_package(forged).ok            # whole, but by another key: only pinning tells
    assert check_package(forged).signer == fingerprint(other)


def test_a_manifest_changed_after_signing_is_refused(full_package, tmp_path):
    path, _ = full_package
    bad = tmp_path / "manifest.zip"
    rewrite(path, bad, {"manifest.json": _sub(r'"year": 2026', '"year": 2025')})
    result = check_package(bad)
    assert ("manifest.sig", None, "signature") in where(result) and not result.signature_ok


@pytest.mark.parametrize("missing", ["data/factors.csv", "results/ledger.csv", "manifest.sig", "raw"])
def test_a_missing_file_is_named(missing, full_package, tmp_path):
    path, _ = full_package
    target = next(n for n in names(path) if n.startswith("raw/")) if missing == "raw" else missing
    bad = tmp_path / "missing.zip"
    rewrite(path, bad, {}, drop=[target])
    result = check_package(bad)
    assert not result.ok
    assert any(p.file == target and "missing" in p.message or (p.column == "file" and target in p.message)
               for p in result.problems), result.lines()


def test_an_extra_file_is_named(full_package, tmp_path):
    path, _ = full_package
    bad = tmp_path / "extra.zip"
    rewrite(path, bad, {}, add={"data/extra-activity.csv": b"source,item,quantity\ncombustion,raw_coal,1000\n"})
    result = check_package(bad)
    assert ("data/extra-activity.csv", None, None) in where(result)
    assert "not in manifest.json" in result.lines()[0]


def test_what_is_no_package_is_bad_input(tmp_path):
    not_zip = tmp_path / "a.zip"
    not_zip.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(VerificationError, match="not a ZIP file"):
        check_package(not_zip)
    other = tmp_path / "b.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(VerificationError, match="not a verification package"):
        check_package(other)
    with pytest.raises(VerificationError, match="no such file"):
        check_package(tmp_path / "nowhere.zip")
    with pytest.raises(VerificationError, match="not a PEM public key"):
        check_package(other, public_key=b"-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n")


def test_without_the_annual_report_the_inventory_report_is_packaged_and_checked(vlake, signing_key, tmp_path,
                                                                                  monkeypatch):
    """The fallback the manifest names: the inventory report (HTML, XLSX) when the annual report is
    not importable; its total is checked like the annual report's."""
    from workbench.verification import export_package, package

    monkeypatch.setattr(package, "report_engine", lambda: (None, "the annual report is not available here (test)"))
    _, lake = vlake
    out = tmp_path / "fallback.zip"
    res = export_package(lake, ENT, 2026, out, private_key=signing_key, notebook=False)
    rep = res.manifest["report"]
    assert rep["engine"] == "workbench.reports.inventory.write_outputs"
    assert rep["why"].startswith("fallback: the annual report is not available here (test)")
    assert sorted(p.rsplit(".", 1)[-1] for p in rep["files"]) == ["html", "xlsx"]
    assert check_package(out).ok
    html = _report(out, ".html")
    bad = tmp_path / "fallback-tampered.zip"
    rewrite(out, bad, {html: _sub(rf'(id="total-tco2e"[^>]*>\s*){re.escape(f"{TOTAL:,.1f}")}', r"\g<1>1.0")},
            resign_with=signing_key)
    assert (html, None, "#total-tco2e") in where(check_package(bad))
    xlsx = _report(out, ".xlsx")
    rewrite(out, bad, {xlsx: _xlsx_total}, resign_with=signing_key)
    assert any(p.file.startswith(f"{xlsx} [summary") for p in check_package(bad).problems)
