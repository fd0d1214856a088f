"""Score ``workbench import`` on a corpus of realistic exports with ground truth (issue 12, point 8).

    python benchmarks/import_corpus.py [--seed 0] [--keep DIR] [--only SUBSTRING] [--json OUT.json]

1. :func:`workbench.demo.exports.generate_corpus` writes the corpus (≥ 34 files: meter vendors' CSV
   layouts, encodings, merged-header workbooks, the 205-1 statistics form, ERP exports, ledgers,
   production tables, bills as images and PDFs, and deliberately contradictory files) and its truth
   into a temporary folder.
2. Every file goes through ``workbench import FILE --dry-run --json --lake L --enterprise E``
   (``--register-meters`` when the command offers it: the corpus's meters are new to the lake) —
   once with no hints, once with the truth's hints (files that need none count the same run twice).
   A bill's hint is the enterprise's master data (``--registry``: its accounts and suppliers, loaded
   by ``workbench registry import`` from the corpus's ``master_data/``), as a user would have it.
3. A run is **right** when the command succeeds, the kind is the truth's, the totals are the
   truth's (same meters/items; each quantity within 1e-6 relative after converting the command's
   unit to the truth's with the workbench's pint registry; a reported total of 0 for something the
   truth does not list is ignored) and the quarantined count is the truth's.  A run is **flagged**
   when the command refused the file (exit ≠ 0), quarantined rows, or printed warnings.  A run
   **stored wrong without a flag** reported a total that differs from the truth (or a total for a
   wrong kind) while it was not flagged — the figure that must be 0.

Prints one line per file and the three figures: the share right with no hints, the share right
with the truth's hints, and the number of files stored wrong without a flag.  When the command
does not exist yet (no ``--dry-run`` in ``workbench import --help``), says so and lists the corpus.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workbench.demo.exports import CORPUS_ENTERPRISE as ENTERPRISE  # noqa: E402
from workbench.demo.exports import REGISTRY_HINT, generate_corpus  # noqa: E402

RTOL = 1e-6
PRODUCT_ALIASES = {"熟料": "clinker", "水泥": "cement", "增加值": "value_added", "工业增加值": "value_added",
                   "value_added_10k_cny": "value_added"}


# ------------------------------------------------------------------------------- the command

def workbench_exe() -> list[str]:
    exe = Path(sys.executable).with_name("workbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "workbench.cli"]


def command_help(cmd: list[str]) -> str:
    try:
        res = subprocess.run([*cmd, "import", "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"<cannot run {' '.join(cmd)}: {exc}>"
    return res.stdout + res.stderr


def run_import(cmd: list[str], path: Path, lake: Path, extra: list[str], timeout: float) -> dict:
    """One ``workbench import`` run → {rc, json (or None), stderr (last lines), seconds}."""
    args = [*cmd, "import", str(path), "--dry-run", "--json", "--lake", str(lake), "--enterprise", ENTERPRISE, *extra]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        rc, out, err = res.returncode, res.stdout, res.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = -1, "", f"timed out after {timeout:.0f} s"
    obj = None
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    if obj is None and out.strip().startswith("{"):
        try:
            obj = json.loads(out)
        except json.JSONDecodeError:
            obj = None
    if isinstance(obj, dict) and "files" in obj and len(obj["files"]) == 1:
        obj = obj["files"][0]
    tail = " | ".join(err.strip().splitlines()[-2:])
    return {"rc": rc, "json": obj, "stderr": tail, "seconds": time.perf_counter() - t0,
            "args": args[len(cmd) + 1:], "path": str(path)}


# ------------------------------------------------------------------------------- comparison

def _norm_name(text) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip()


def _item_key(name, library) -> str:
    s = _norm_name(name)
    if s in PRODUCT_ALIASES:
        return PRODUCT_ALIASES[s]
    try:
        return library.item_code(s)
    except Exception:  # noqa: BLE001 - an unknown name is compared as written
        return s


def _total_key(t: dict, library) -> str | None:
    if t.get("meter") not in (None, ""):
        return "meter:" + _norm_name(t["meter"])
    if t.get("item") not in (None, ""):
        return "item:" + _item_key(t["item"], library)
    return None


def _convert(quantity: float, unit: str, to_unit: str) -> float | None:
    from workbench.core.units import conversion_factor

    for a, b in ((unit, to_unit), (str(unit).replace("m3", "Nm3").replace("立方米", "Nm3"), to_unit)):
        try:
            return float(quantity) * conversion_factor(a, b)
        except Exception:  # noqa: BLE001 - pint and unit errors: not convertible
            continue
    return None


def compare_totals(got: list, want: list, library) -> list[str]:
    """Differences between reported and true totals, as short texts (empty = equal)."""
    diffs = []
    g = {}
    for t in got or []:
        k = _total_key(t, library)
        if k is None:
            diffs.append(f"a total without meter or item: {t}")
            continue
        if k in g:   # the same meter/item twice (e.g. several periods): add up in the first unit
            q = _convert(t.get("quantity", 0), t.get("unit", ""), g[k]["unit"])
            g[k] = {**g[k], "quantity": g[k]["quantity"] + (q if q is not None else math.nan)}
        else:
            g[k] = dict(t)
    w = {_total_key(t, library): t for t in want}
    for k, t in w.items():
        if k not in g:
            diffs.append(f"{k.split(':', 1)[1]}: missing (truth {t['quantity']:,.6g} {t['unit']})")
            continue
        got_q, got_u = g[k].get("quantity"), g[k].get("unit", "")
        if got_q is None or (isinstance(got_q, float) and math.isnan(got_q)):
            diffs.append(f"{k.split(':', 1)[1]}: no quantity (truth {t['quantity']:,.6g} {t['unit']})")
            continue
        q = _convert(got_q, got_u, t["unit"])
        if q is None:
            diffs.append(f"{k.split(':', 1)[1]}: {got_q:,.6g} {got_u} not convertible to {t['unit']}")
        elif not math.isclose(q, t["quantity"], rel_tol=RTOL, abs_tol=1e-9):
            diffs.append(f"{k.split(':', 1)[1]}: {got_q:,.6g} {got_u} ≠ {t['quantity']:,.6g} {t['unit']}")
    for k, t in g.items():
        if k not in w and (t.get("quantity") or 0) != 0:
            diffs.append(f"{k.split(':', 1)[1]}: not in the truth ({t.get('quantity'):,.6g} {t.get('unit')})")
    return diffs


def judge(run: dict, truth: dict, hinted: bool, library) -> dict:
    """right / flagged / stored-wrong-without-a-flag of one run, with the reasons."""
    obj = run["json"] if isinstance(run.get("json"), dict) else {}
    want_totals = truth["totals"] if hinted or "totals_without_hints" not in truth else truth["totals_without_hints"]
    want_q = truth["quarantined"] if hinted else truth.get("quarantined_without_hints", truth["quarantined"])
    refused = run["rc"] != 0 or not obj or "error" in obj
    quarantined = obj.get("quarantined", 0)
    quarantined = len(quarantined) if isinstance(quarantined, list) else int(quarantined or 0)
    warnings = obj.get("warnings") or []
    flagged = refused or quarantined > 0 or bool(warnings)
    problems = []
    if refused:
        msg = obj.get("error") or run["stderr"] or f"exit {run['rc']}"
        path = run["path"]
        problems.append("refused: " + msg.replace(path + ", ", "").replace(path + ": ", "").replace(path, "FILE")[:160])
    else:
        if obj.get("kind") != truth["kind"]:
            problems.append(f"kind {obj.get('kind')} ≠ {truth['kind']}")
        problems += compare_totals(obj.get("totals"), want_totals, library)
        if quarantined != want_q:
            problems.append(f"quarantined {quarantined} ≠ {want_q}")
    right = not problems
    wrong_totals = False
    if not refused:   # a total that differs, or rows stored as another kind of data
        wrong_totals = bool(compare_totals(obj.get("totals"), want_totals, library)) or (
            obj.get("kind") != truth["kind"] and bool(obj.get("stored")))
    return {"right": right, "flagged": flagged, "refused": refused, "stored_wrong_unflagged": bool(wrong_totals and not flagged),
            "problems": problems, "kind": obj.get("kind"), "encoding": obj.get("encoding"),
            "quarantined": quarantined, "warnings": warnings, "totals": obj.get("totals"),
            "guesses": obj.get("guesses"), "quarantine": (obj.get("quarantine") or [])[:5], "rc": run["rc"], "seconds": round(run["seconds"], 2), "args": run["args"]}


# ------------------------------------------------------------------------------- main

def _mark(flag: bool) -> str:
    return "yes" if flag else "no"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="Write the corpus here (and keep it) instead of a temp dir.")
    ap.add_argument("--only", default=None, help="Only files whose name contains one of these (comma-separated).")
    ap.add_argument("--json", dest="json_out", type=Path, default=None, help="Write every run's details here.")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args(argv)

    from workbench.core.factors import default_library

    library = default_library()
    with tempfile.TemporaryDirectory(prefix="import-corpus-") as tmp:
        corpus = args.keep or Path(tmp) / "corpus"
        truth = generate_corpus(corpus, seed=args.seed)
        if args.only:
            truth = [t for t in truth if any(s and s in t["file"] for s in args.only.split(","))]
        cmd = workbench_exe()
        help_text = command_help(cmd)
        if "--dry-run" not in help_text or "FILES" not in help_text.upper():
            print(f"`workbench import FILE… --dry-run --json` is not available yet ({' '.join(cmd)} import --help "
                  f"shows no FILE argument with --dry-run); nothing scored.  The corpus ({len(truth)} files) at {corpus}:")
            for t in truth:
                print(f"  {t['file']:<40} {t['kind']:<11} {str(t['encoding']):<10} hints: {' '.join(t['hints']) or '-'}")
            return 0
        common = ["--register-meters"] if "--register-meters" in help_text else []
        # the bills' hint: the enterprise's master data (its accounts and suppliers), as a user loads it
        registry = Path(tmp) / "registry.db"
        subprocess.run([*cmd, "registry", "import", str(corpus / "master_data"), "--registry", str(registry)],
                       check=True, capture_output=True, text=True)
        for t in truth:
            t["hints"] = [str(registry) if h == REGISTRY_HINT else h for h in t["hints"]]
        results = []
        for t in truth:
            path = corpus / t["file"]
            lake = Path(tmp) / "lakes" / t["file"].replace(".", "_")
            plain = run_import(cmd, path, lake, common, args.timeout)
            j0 = judge(plain, t, hinted=False, library=library)
            if t["hints"]:
                hinted = run_import(cmd, path, lake, [*common, *t["hints"]], args.timeout)
                j1 = judge(hinted, t, hinted=True, library=library)
            else:
                j1 = j0
            results.append({"file": t["file"], "truth": t, "no_hints": j0, "with_hints": j1})
            print(f"  … {t['file']:<40} no hints: {'right' if j0['right'] else 'wrong'}"
                  f"{'' if not t['hints'] else ', with hints: ' + ('right' if j1['right'] else 'wrong')}"
                  f"  ({j0['seconds'] + (j1['seconds'] if t['hints'] else 0):.1f} s)", file=sys.stderr, flush=True)

    n = len(results)
    print()
    print(f"{'file':<40} {'kind':<11} {'right, no hints':<16} {'right, hints':<13} {'wrong unflagged':<16} what was wrong "
          "(no hints | with hints)")
    for r in results:
        t, a, b = r["truth"], r["no_hints"], r["with_hints"]
        hints = "-" if not t["hints"] else _mark(b["right"])
        swu = a["stored_wrong_unflagged"] or b["stored_wrong_unflagged"]
        why = "; ".join(a["problems"])[:150]
        if t["hints"] and not b["right"]:
            why += " | " + "; ".join(b["problems"])[:150]
        trap = " (trap)" if t["trap"] else ""
        print(f"{t['file']:<40} {t['kind']:<11} {_mark(a['right']) + trap:<16} {hints:<13} {_mark(swu):<16} {why}")
    right0 = sum(r["no_hints"]["right"] for r in results)
    right1 = sum(r["with_hints"]["right"] for r in results)
    wrong = sum(r["no_hints"]["stored_wrong_unflagged"] or r["with_hints"]["stored_wrong_unflagged"] for r in results)
    need = sum(bool(r["truth"]["hints"]) for r in results)
    print()
    print(f"files: {n} ({need} need hints, {sum(r['truth']['trap'] for r in results)} traps)")
    print(f"right with no hints:            {right0}/{n} = {right0 / n:.0%}" if n else "no files")
    print(f"right with the truth's hints:   {right1}/{n} = {right1 / n:.0%}" if n else "")
    print(f"stored wrong without a flag:    {wrong}  (must be 0)")
    text = [r for r in results if r["truth"]["encoding"]]
    def enc_right(r):   # GB18030 decodes GBK files identically: either name is right for a GBK file
        got, want = r["no_hints"]["encoding"], r["truth"]["encoding"]
        return got == want or (want == "gbk" and got == "gb18030")
    reported = [r for r in text if r["no_hints"]["encoding"] is not None]
    enc_ok = sum(enc_right(r) for r in reported)
    print(f"encoding detected (text files): {enc_ok}/{len(reported)} of those that report one "
          f"({len(text) - len(reported)} of {len(text)} refused before)"
          + "".join(f"\n  {r['file']}: {r['no_hints']['encoding']} ≠ {r['truth']['encoding']}" for r in text
                    if r["no_hints"]["encoding"] is not None and not enc_right(r)))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
