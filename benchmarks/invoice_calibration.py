"""Invoice reader: regenerate the corpus of rendered bills, refit the calibrated confidence, measure it.

    .venv/bin/python benchmarks/invoice_calibration.py [--seeds 240] [--workers 2] [--cache DIR]
                                                       [--no-write] [--shipped]

1. Corpus.  ``--seeds`` random bills (tests/invoice_images.py: six layouts — electricity notice,
   gas notice, heat/steam settlement, water bill, VAT e-invoice of any commodity, compact
   statement — Noto Sans / Serif / Sans Mono CJK SC, random label synonyms, suppliers, customers,
   accounts, numbers and dates).  Each seed is OCR'd clean and once scanned (blur, noise, rotation,
   low resolution, JPEG: ``mild`` for even seeds, ``harsh`` for odd ones).  The OCR boxes are cached
   per image in ``--cache`` (OCR is the expensive part, ~2–3 s per page on one core), so a refit
   after a change of the field reader costs seconds.
2. Features per field (:func:`connectors.invoice_calibration.features`) from
   :func:`connectors.invoice_ocr.extract_fields`, labels = the value equals the truth.
3. Split by seed: seeds ``% 5 != 0`` fit the model (logistic regression per field on the
   features, then isotonic regression on out-of-fold predictions), seeds ``% 5 == 0`` are held out
   (half of them scanned mildly, half harshly).
   The threshold: the smallest confidence at which the out-of-fold trusted fields are ≥ 99.7 %
   right.  The model is written to ``connectors/data/invoice_calibration.json`` (a few kB; read
   at import, no training at run time) unless ``--no-write``.  ``--shipped`` fits nothing: the
   model in that file is measured (its held-out seeds, ``% 5 == 0``, are held out at any
   ``--seeds``, so a larger corpus measures the shipped model on more bills it never saw).
4. On the held-out seeds, at the shipped threshold: per field, the accuracy of trusted fields
   and the share of right fields that are trusted, clean and scanned; the calibration curve
   (confidence bin vs observed accuracy) as ``docs/img/invoice_calibration.png`` and a table in
   ``docs/invoices.md`` (between the ``calibration:begin/end`` markers).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "workbench" / "invoice_corpus"


def _variant_image(seed: int, variant: str):
    import invoice_images as ii

    img, truth, meta = ii.random_bill(seed)
    scan = None
    if variant != "clean":
        img, scan = ii.scan(img, seed, level=variant)
    return img, truth, {**meta, "variant": variant, "scan": scan}


def variants_of(seed: int) -> list[str]:
    return ["clean", "mild" if seed % 2 == 0 else "harsh"]


def _ocr_one(job):
    seed, variant, cache = job
    path = Path(cache) / f"{seed:05d}-{variant}.json"
    if path.exists():
        return str(path), 0.0
    from connectors import invoice_ocr as ocr

    img, truth, meta = _variant_image(seed, variant)
    t0 = time.perf_counter()
    boxes = ocr.ocr_image(img.convert("RGB"))
    dt = time.perf_counter() - t0
    doc = {"seed": seed, "variant": variant, "size": list(img.size), "truth": truth, "meta": meta, "ocr_s": dt,
           "boxes": [{"text": b.text, "score": b.score, "quad": b.quad, "char_scores": b.char_scores} for b in boxes]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return str(path), dt


def build_corpus(seeds: int, cache: Path, workers: int) -> list[dict]:
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WORKBENCH_OCR_THREADS", "1")   # one onnxruntime thread per worker process
    jobs = [(s, v, str(cache)) for s in range(seeds) for v in variants_of(s)]
    todo = [j for j in jobs if not (cache / f"{j[0]:05d}-{j[1]}.json").exists()]
    t0 = time.perf_counter()
    if todo:
        print(f"OCR of {len(todo)} images ({len(jobs) - len(todo)} cached) with {workers} worker(s) …", flush=True)
        times = []
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for k, (_, dt) in enumerate(pool.map(_ocr_one, todo, chunksize=1), 1):
                times.append(dt)
                if k % 25 == 0:
                    print(f"  {k}/{len(todo)}  {time.perf_counter() - t0:.0f} s", flush=True)
        print(f"OCR: {len(todo)} images in {time.perf_counter() - t0:.0f} s wall, "
              f"{np.mean(times):.2f} s per image on one core", flush=True)
    return [json.loads((cache / f"{s:05d}-{v}.json").read_text(encoding="utf-8")) for s, v, _ in jobs]


def _right(value, truth) -> bool:
    if value is None or truth is None:
        return value is None and truth is None
    if isinstance(truth, float):
        return isinstance(value, (int, float)) and abs(float(value) - truth) <= 1e-6 * max(1.0, abs(truth))
    return value == truth


def _known_for(doc: dict) -> dict | None:
    """Master data for a third of the bills (the truth among look-alikes), none for the rest."""
    import random

    seed = doc["seed"]
    if seed % 3:
        return None
    import invoice_images as ii

    rng = random.Random(seed + 99)
    others = [ii.random_bill(s)[1] for s in rng.sample(range(10_000, 20_000), 4)]
    t = doc["truth"]
    return {"supplier": [t["supplier"], *(o["supplier"] for o in others)],
            "customer": [t["customer"], *(o["customer"] for o in others)],
            "account_no": [t["account_no"], *(o["account_no"] for o in others)]}


def read_doc(doc: dict) -> dict:
    """extract_fields on a cached OCR page → {field: (value, confidence, features)}."""
    from connectors.invoice_ocr import FIELDS, OcrBox, extract_fields

    boxes = [OcrBox(b["text"], b["score"], b["quad"], b["char_scores"]) for b in doc["boxes"]]
    out = extract_fields(boxes, tuple(doc["size"]), known=_known_for(doc))
    return {f: (out[f]["value"], out[f]["confidence"], out[f]["features"]) for f in FIELDS}


def samples_of(docs: list[dict]) -> list[tuple]:
    """(doc, field, value, truth, right, confidence, features) for every field read or expected."""
    from connectors.invoice_ocr import FIELDS

    rows = []
    for doc in docs:
        got = read_doc(doc)
        for f in FIELDS:
            value, conf, feats = got[f]
            truth = doc["truth"].get(f)
            if value is None and truth is None:
                continue          # not printed, not read: nothing to trust or review
            rows.append((doc, f, value, truth, _right(value, truth), conf, feats))
    return rows


def report(rows: list[tuple], threshold: float) -> tuple[str, dict]:
    """Per field and variant: accuracy of trusted fields, share of right fields trusted."""
    from connectors.invoice_ocr import FIELDS

    lines = []
    summary = {}
    header = ("| field | clean: trusted right | clean: right trusted | scanned: trusted right | "
              "scanned: right trusted | n (clean/scanned) |")
    lines += [header, "|---|---|---|---|---|---|"]

    def stats(sel):
        trusted = [r for r in sel if r[2] is not None and r[5] >= threshold]
        right = [r for r in sel if r[4]]
        acc = sum(r[4] for r in trusted) / len(trusted) if trusted else float("nan")
        cover = sum(1 for r in right if r[5] >= threshold) / len(right) if right else float("nan")
        return acc, cover, len(trusted), len(right), len(sel)

    for f in (*FIELDS, "all"):
        sel = [r for r in rows if f == "all" or r[1] == f]
        c = stats([r for r in sel if r[0]["variant"] == "clean"])
        d = stats([r for r in sel if r[0]["variant"] != "clean"])
        summary[f] = {"clean": c, "scanned": d}
        name = f"**{f}**" if f == "all" else f
        lines.append(f"| {name} | {c[0]:.2%} ({c[2]}) | {c[1]:.2%} ({c[3]}) | {d[0]:.2%} ({d[2]}) | "
                     f"{d[1]:.2%} ({d[3]}) | {c[4]}/{d[4]} |")
    for level in ("mild", "harsh"):
        sel = [r for r in rows if r[0]["variant"] == level]
        summary[level] = stats(sel)
    return "\n".join(lines), summary


def curve(rows: list[tuple], bins=(0, .5, .7, .8, .9, .95, .975, .99, .995, .999, 1.0001)) -> list[tuple]:
    """(bin low, bin high, n, mean confidence, observed accuracy) over fields that were read."""
    read = [r for r in rows if r[2] is not None]
    out = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = [r for r in read if lo <= r[5] < hi]
        if sel:
            out.append((lo, min(hi, 1.0), len(sel), float(np.mean([r[5] for r in sel])),
                        float(np.mean([r[4] for r in sel]))))
    return out


def plot(cv: list[tuple], path: Path, title: str) -> None:
    """The calibration curve, whole range and the top (0.9–1) where the threshold lives."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 4.2), dpi=120)
    for k, (lo, label) in enumerate(((0.0, "all confidences"), (0.9, "zoom: 0.9 – 1"))):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.plot([lo, 1], [lo, 1], color="0.7", lw=1, ls="--", label="perfect calibration")
        pts = [c for c in cv if c[3] >= lo]
        ax.plot([c[3] for c in pts], [c[4] for c in pts], marker="o", color="tab:blue", label="held-out bills")
        for c in pts:
            ax.annotate(f"n={c[2]}", (c[3], c[4]), textcoords="offset points", xytext=(-14, -14), fontsize=7,
                        color="0.3")
        pad = (1 - lo) * 0.03
        ax.set_xlim(lo - pad, 1 + pad)
        ax.set_ylim(lo - pad, 1 + pad)
        ax.set_xlabel("confidence (bin mean)")
        ax.set_ylabel("observed accuracy")
        ax.set_title(label, fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def summary_lines(rows: list[tuple], summary: dict, threshold: float) -> list[str]:
    """Plain-language figures under the table: per scan level, and the bound on the error rate."""
    out = []
    for level, name in (("clean", "clean renders"), ("mild", "mild scans"), ("harsh", "harsh scans")):
        if level == "clean":
            acc, cover, nt, nr, n = summary["all"]["clean"]
        else:
            acc, cover, nt, nr, n = summary[level]
        sel = [r for r in rows if r[0]["variant"] == level]
        read_right = sum(r[4] for r in sel) / len(sel) if sel else float("nan")
        wrong = round(nt * (1 - acc)) if nt else 0
        bound = f"; 0 wrong of {nt}: at 95 % confidence the error rate is below {3 / nt:.2%} (rule of three)" \
            if nt and wrong == 0 else ""
        out.append(f"* {name}: {n} fields, {read_right:.2%} read right; trusted {nt}, of which {acc:.2%} right "
                   f"({wrong} wrong){bound}; {cover:.2%} of the right fields trusted")
    return out


def write_docs(table: str, cv: list[tuple], meta: dict, doc_path: Path, lines: list[str] = ()) -> None:
    begin, end = "<!-- calibration:begin -->", "<!-- calibration:end -->"
    curve_md = ["| confidence bin | fields | mean confidence | observed accuracy |", "|---|---|---|---|"]
    curve_md += [f"| [{lo:.3f}, {hi:.3f}) | {n} | {mc:.4f} | {acc:.4f} |" for lo, hi, n, mc, acc in cv]
    block = "\n".join([
        begin,
        f"Measured {_dt.date.today().isoformat()} by `benchmarks/invoice_calibration.py --seeds {meta['seeds']}"
        f"{meta.get('flags', '')}` ({meta['images']} OCR'd pages: {meta['seeds']} bills, each clean and scanned; "
        + (f"{meta['fitted']}, " if meta.get("fitted") else f"fitted on {meta['train_seeds']} bills, ")
        + f"measured on the {meta['test_seeds']} held-out ones), threshold "
        f"**{meta['threshold']}**, rapidocr {meta['engine']}.",
        "",
        "Per field, on the held-out bills: *trusted right* = share of the fields at or above the "
        "threshold whose value equals the truth (count of trusted fields); *right trusted* = share "
        "of the fields read right that are trusted (count of right fields).",
        "",
        table,
        "",
        *lines,
        "",
        "Calibration curve (held-out bills, every field that was read):",
        "",
        "![calibration curve](img/invoice_calibration.png)",
        "",
        *curve_md,
        end,
    ])
    text = doc_path.read_text(encoding="utf-8") if doc_path.exists() else f"# Invoices\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    a, b = text.index(begin), text.index(end) + len(end)
    doc_path.write_text(text[:a] + block + text[b:], encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=240)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--no-write", action="store_true", help="measure only; do not write the model or the docs")
    ap.add_argument("--ocr-only", action="store_true", help="build the OCR cache and stop")
    ap.add_argument("--cached-only", action="store_true", help="use only the pages already in the cache")
    ap.add_argument("--shipped", action="store_true", help="measure the shipped model (no refit; the docs are updated)")
    args = ap.parse_args(argv)
    if args.cached_only:
        docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.cache.glob("*.json"))]
        have = {}
        for d in docs:
            have.setdefault(d["seed"], set()).add(d["variant"])
        docs = [d for d in docs if have[d["seed"]] >= set(variants_of(d["seed"])) and d["seed"] < args.seeds]
    else:
        docs = build_corpus(args.seeds, args.cache, args.workers)
    if args.ocr_only:
        return 0
    from connectors import invoice_calibration as cal
    from connectors import invoice_ocr as ocr

    seeds = sorted({d["seed"] for d in docs})
    train = [d for d in docs if d["seed"] % 5 != 0]
    test = [d for d in docs if d["seed"] % 5 == 0]
    t0 = time.perf_counter()
    if args.shipped:
        cal.use_model(None)
        model = cal.load_model()
        fitted = f"the shipped model (fitted {model.meta.get('date')} on {model.meta.get('seeds')} seeds' training bills)"
    else:
        cal.use_model(None)
        cal._MODEL.append(None)  # features are the model's input: read them without a model
        train_rows = samples_of(train)
        samples = [(r[1], r[6], r[4]) for r in train_rows if r[2] is not None]
        model = cal.fit(samples)
        model.meta.update(date=_dt.date.today().isoformat(), seeds=len(seeds),
                          engine=ocr.engine_info().get("version"))
        fitted = None
    cal.use_model(model)
    test_rows = samples_of(test)
    print(f"{fitted or f'fitted on {len(samples)} fields of {len(train)} pages'}, measured on {len(test_rows)} "
          f"fields of {len(test)} held-out pages in {time.perf_counter() - t0:.1f} s; threshold {model.threshold}")
    table, summary = report(test_rows, model.threshold)
    print(table)
    print("\n".join(summary_lines(test_rows, summary, model.threshold)))
    cv = curve(test_rows)
    print("confidence bin → observed accuracy (held-out):")
    for lo, hi, n, mc, acc in cv:
        print(f"  [{lo:.3f}, {hi:.3f})  n={n:4d}  mean conf {mc:.4f}  accuracy {acc:.4f}")
    wrong = [r for r in test_rows if r[2] is not None and not r[4] and r[5] >= model.threshold]
    for r in wrong:
        print(f"  trusted but wrong: seed {r[0]['seed']} {r[0]['variant']} {r[0]['meta']['layout']} {r[1]}: "
              f"{r[2]!r} (truth {r[3]!r}) conf {r[5]:.4f}")
    if not args.no_write:
        if not args.shipped:
            cal.MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
            cal.MODEL_PATH.write_text(json.dumps(model.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
        plot(cv, ROOT / "docs" / "img" / "invoice_calibration.png",
             f"Invoice fields: confidence vs accuracy ({len(test)} held-out pages)")
        write_docs(table, cv, {"date": model.meta["date"], "seeds": len(seeds), "images": len(docs),
                               "train_seeds": len({d['seed'] for d in train}),
                               "test_seeds": len({d['seed'] for d in test}), "threshold": model.threshold,
                               "engine": model.meta["engine"], "fitted": fitted,
                               "flags": " --shipped" if args.shipped else ""}, ROOT / "docs" / "invoices.md",
                   summary_lines(test_rows, summary, model.threshold))
        print(f"wrote {cal.MODEL_PATH.relative_to(ROOT)}, docs/img/invoice_calibration.png, docs/invoices.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
