"""Calibrated confidence of the invoice reader: features → probability that a field is right.

The OCR engine's own scores say how sure it is of each *character*; what a reviewer needs is how
likely the *field* is right.  For every field :func:`connectors.invoice_ocr.extract_fields`
describes its reading with features (:func:`vector`): the OCR score of the value's characters
(weakest and mean), the label's specificity and tier, the parse certainty, whether the value was
read right of its label or below a header or inferred, how many boxes agree and whether another
reading disagrees, the cross-checks (quantity × unit price ≈ amount, net + tax ≈ amount), the match
with the caller's master data, the page's overall OCR quality and the value's length.

The model, fitted by ``benchmarks/invoice_calibration.py`` on the project's own rendered bills
(several layouts, fonts and scan degradations), is a logistic regression per field on those
features followed by one isotonic map (pool-adjacent-violators on out-of-fold predictions) to
probabilities; its parameters are the small JSON file ``connectors/data/invoice_calibration.json``,
read once — nothing is trained or downloaded at run time.  Without the file the reader falls back
to its heuristic confidence (weakest character × parse certainty).

The fitting functions (:func:`fit_logistic`, :func:`fit_isotonic`, :func:`fit`) are plain numpy.
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FEATURES", "MODEL_PATH", "Model", "fit", "fit_isotonic", "fit_logistic", "load_model", "use_model", "vector"]

MODEL_PATH = Path(__file__).resolve().parent / "data" / "invoice_calibration.json"
FEATURES = ("bias", "logit_ocr_min", "logit_ocr_mean", "label_cert", "parse_cert", "tier1", "below", "inferred",
            "agree", "rival", "others", "xc_hold", "xc_fail", "known_exact", "known_snapped", "logit_page",
            "n_chars", "hint_conflict", "xc_hold_generic", "xc_hold_logit_ocr_min")


def _logit(p: float, lo: float = 1e-3, hi: float = 1 - 1e-4) -> float:
    p = min(max(float(p), lo), hi)
    return math.log(p / (1 - p))


def vector(f: dict) -> np.ndarray:
    """The feature vector (:data:`FEATURES`) of one field's feature dict."""
    xc = [f.get(k) for k in ("xc_qpa", "xc_att")]
    hold = float(any(v is True for v in xc))
    return np.array([
        1.0,
        _logit(f.get("ocr_min", 0.0)),
        _logit(f.get("ocr_mean", 0.0)),
        float(f.get("label_cert", 0.0)),
        float(f.get("parse_cert", 0.0)),
        float(f.get("tier", 3) == 1),
        float(f.get("how") == "below"),
        float(f.get("how") == "inferred"),
        float(min(max(int(f.get("agree", 0)), 1), 3) - 1),
        float(f.get("rival", 0.0) > 0),
        float(f.get("others", 0) > 0),
        float(any(v is True for v in xc)),
        float(any(v is False for v in xc)),
        float(f.get("known") == "exact"),
        float(f.get("known") == "snapped"),
        _logit(f.get("page_quality", 0.0)),
        min(float(f.get("n_chars", 0)), 40.0) / 10.0,
        float(bool(f.get("hint_conflict"))),
        hold * float(f.get("tier", 3) != 1),          # a table-header value confirmed by the other numbers
        hold * _logit(f.get("ocr_min", 0.0)),          # …which makes a weak digit matter less
    ], dtype=float)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton–Raphson (IRLS); the bias (column 0) is not
    penalised.  Returns the weights."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    n, d = X.shape
    w = np.zeros(d)
    reg = np.full(d, l2)
    reg[0] = 1e-6
    for _ in range(iters):
        p = _sigmoid(X @ w)
        g = X.T @ (p - y) + reg * w
        h = (X * (p * (1 - p))[:, None]).T @ X + np.diag(reg)
        step = np.linalg.solve(h, g)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def fit_isotonic(p: np.ndarray, y: np.ndarray, prior: float = 1.0) -> tuple[list, list]:
    """Monotone map score → probability by pool-adjacent-violators; each block's rate is shrunk
    towards ½ by ``prior`` pseudo-observations ((k + prior/2) / (n + prior)), so a block of 400
    right answers says 0.9988, not 1.  Returns the blocks' (upper score bound, probability)."""
    order = np.argsort(p, kind="mergesort")
    ps, ys = np.asarray(p, float)[order], np.asarray(y, float)[order]
    blocks: list = []  # [sum_y, n, max_p]
    for pi, yi in zip(ps, ys):
        blocks.append([yi, 1.0, pi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, n, mp = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
            blocks[-1][2] = mp
    xs = [b[2] for b in blocks]
    vals = [(b[0] + prior / 2) / (b[1] + prior) for b in blocks]
    vals = list(np.maximum.accumulate(vals))
    return [float(x) for x in xs], [float(v) for v in vals]


def _apply_isotonic(xs: list, ys: list, p: float) -> float:
    if not xs:
        return p
    k = int(np.searchsorted(xs, p, side="left"))
    if k >= len(xs):
        return ys[-1]
    if k == 0:
        return ys[0]
    # interpolate between the blocks' upper bounds (a smoother, still monotone map)
    x0, x1 = xs[k - 1], xs[k]
    t = 0.0 if x1 <= x0 else (p - x0) / (x1 - x0)
    return ys[k - 1] + t * (ys[k] - ys[k - 1])


@dataclass
class Model:
    """Per-field logistic weights + one isotonic map; ``threshold``: the default trust threshold."""

    weights: dict
    iso_x: list
    iso_y: list
    threshold: float
    meta: dict = field(default_factory=dict)

    def has(self, fld: str) -> bool:
        return fld in self.weights

    def raw(self, fld: str, f: dict) -> float:
        return float(_sigmoid(vector(f) @ np.asarray(self.weights[fld], float)))

    def predict(self, fld: str, f: dict) -> float:
        return float(_apply_isotonic(self.iso_x, self.iso_y, self.raw(fld, f)))

    def to_json(self) -> dict:
        return {"features": list(FEATURES), "weights": {k: [round(float(v), 6) for v in w] for k, w in self.weights.items()},
                "isotonic": {"x": [round(v, 6) for v in self.iso_x], "y": [round(v, 6) for v in self.iso_y]},
                "threshold": self.threshold, "meta": self.meta}

    @classmethod
    def from_json(cls, doc: dict) -> Model:
        if list(doc.get("features", [])) != list(FEATURES):
            raise ValueError("calibration file was fitted on other features; rerun benchmarks/invoice_calibration.py")
        return cls(doc["weights"], doc["isotonic"]["x"], doc["isotonic"]["y"], float(doc["threshold"]),
                   doc.get("meta", {}))


_MODEL: list = []
_LOCK = threading.Lock()


def load_model(path: Path | None = None) -> Model | None:
    """The shipped model (read once), or None when the file is missing or stale."""
    if path is not None:
        return Model.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    with _LOCK:
        if not _MODEL:
            try:
                _MODEL.append(Model.from_json(json.loads(MODEL_PATH.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError):
                _MODEL.append(None)
        return _MODEL[0]


def use_model(model: Model | None) -> None:
    """Make ``model`` the one the reader uses in this process (the benchmark, tests); None: reread the file."""
    with _LOCK:
        _MODEL.clear()
        if model is not None:
            _MODEL.append(model)


def fit(samples: list[tuple[str, dict, bool]], *, folds: int = 5, l2: float = 0.3, precision: float = 0.997,
        seed: int = 0) -> Model:
    """Fit the model on ``(field, features, right)`` samples (only fields that were read).

    Logistic regression per field; the isotonic map is fitted on out-of-fold predictions (so it
    sees how the logistic output behaves on bills it was not fitted on); the threshold is the
    smallest confidence at which the out-of-fold trusted fields are ≥ ``precision`` right."""
    rng = np.random.default_rng(seed)
    by_field: dict = {}
    for fld, f, right in samples:
        by_field.setdefault(fld, ([], []))
        by_field[fld][0].append(vector(f))
        by_field[fld][1].append(float(right))
    weights, oof_p, oof_y = {}, [], []
    for fld, (xs, ys) in by_field.items():
        X, y = np.array(xs), np.array(ys)
        weights[fld] = fit_logistic(X, y, l2)
        fold = rng.integers(0, folds, len(y))
        for k in range(folds):
            test = fold == k
            if not test.any() or test.all():
                continue
            w = fit_logistic(X[~test], y[~test], l2)
            oof_p.extend(_sigmoid(X[test] @ w))
            oof_y.extend(y[test])
    oof_p, oof_y = np.array(oof_p), np.array(oof_y)
    iso_x, iso_y = fit_isotonic(oof_p, oof_y)
    cal = np.array([_apply_isotonic(iso_x, iso_y, p) for p in oof_p])
    threshold = 0.99
    for t in np.round(np.arange(0.50, 0.9991, 0.005), 4):
        sel = cal >= t
        if sel.sum() and oof_y[sel].mean() >= precision:
            threshold = float(t)
            break
    return Model(weights, iso_x, iso_y, threshold, {"samples": len(oof_y), "precision_target": precision,
                                                    "fields": {k: len(v[1]) for k, v in by_field.items()}})
