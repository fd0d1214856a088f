"""The calibrated confidence of the invoice reader (connectors.invoice_calibration): the numpy
fitting functions on data with a known answer, the shipped model, the fallback without it.
The model itself is fitted and measured on hundreds of OCR'd bills by benchmarks/invoice_calibration.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from connectors import invoice_calibration as cal
from connectors import invoice_ocr as ocr
from connectors.invoice_ocr import FIELDS, OcrBox, extract_fields


def test_fit_logistic_recovers_known_weights():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(20_000), rng.normal(size=20_000), rng.normal(size=20_000)])
    w_true = np.array([0.5, 2.0, -1.0])
    y = rng.random(20_000) < 1 / (1 + np.exp(-X @ w_true))
    w = cal.fit_logistic(X, y, l2=1e-6)
    assert np.allclose(w, w_true, atol=0.08), w


def test_fit_isotonic_pools_adjacent_violators():
    xs, ys = cal.fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]), prior=0.0)
    assert xs == [0.1, 0.3, 0.4] and ys == [0.0, 0.5, 1.0]           # (1, 0) pooled to ½
    xs, ys = cal.fit_isotonic(np.array([0.2, 0.9]), np.array([1, 1]), prior=1.0)
    assert xs == [0.9] and ys == [pytest.approx(2.5 / 3)]            # 2 right of 2: shrunk, not 1
    assert cal._apply_isotonic([0.2, 0.6], [0.1, 0.9], 0.4) == pytest.approx(0.5)   # interpolated


def test_fit_is_calibrated_on_data_with_a_known_probability():
    """Features whose probability of being right is known: the fitted model's confidence, binned,
    matches the observed share of right answers on fresh data, and the threshold keeps ≥ 99.7 %."""
    rng = np.random.default_rng(7)

    def draw(n):
        out = []
        for _ in range(n):
            ocr_min = float(1 - rng.beta(0.6, 12))                    # mostly near 1, a tail of weak reads
            page = float(1 - rng.beta(0.5, 40))
            f = {"ocr_min": ocr_min, "ocr_mean": min(1.0, ocr_min + 0.01), "label_cert": 1.0, "parse_cert": 1.0,
                 "tier": 1, "how": "right", "agree": 1, "page_quality": page, "n_chars": 8}
            logit = -3.0 + 1.6 * cal._logit(ocr_min) + 0.5 * cal._logit(page)
            out.append(("quantity", f, bool(rng.random() < 1 / (1 + np.exp(-logit)))))
        return out

    model = cal.fit(draw(6000))
    fresh = draw(6000)
    p = np.array([model.predict(fld, f) for fld, f, _ in fresh])
    y = np.array([r for *_, r in fresh], dtype=float)
    for lo, hi in ((0.0, 0.5), (0.5, 0.9), (0.9, 0.99), (0.99, 1.01)):
        sel = (p >= lo) & (p < hi)
        if sel.sum() >= 100:
            assert abs(p[sel].mean() - y[sel].mean()) < 0.05, (lo, hi, p[sel].mean(), y[sel].mean())
    trusted = p >= model.threshold
    assert trusted.sum() > 1000 and y[trusted].mean() >= 0.99


def test_shipped_model():
    doc = json.loads(cal.MODEL_PATH.read_text(encoding="utf-8"))
    assert doc["features"] == list(cal.FEATURES) and set(doc["weights"]) == set(FIELDS)
    assert cal.MODEL_PATH.stat().st_size < 20_000                     # a small data file, no training at run time
    model = cal.load_model()
    assert model is not None and 0.9 <= model.threshold < 1.0 and ocr.DEFAULT_THRESHOLD == model.threshold
    assert model.meta["samples"] > 1000
    base = {"ocr_mean": 0.999, "label_cert": 1.0, "parse_cert": 1.0, "tier": 1, "how": "right", "agree": 1,
            "page_quality": 0.9999, "n_chars": 8}
    for fld in ("quantity", "amount", "account_no"):
        ps = [model.predict(fld, {**base, "ocr_min": v}) for v in (0.5, 0.8, 0.95, 0.999)]
        assert ps == sorted(ps) and ps[0] < ps[-1], (fld, ps)       # a weaker digit, a lower confidence
        assert ps[-1] >= model.threshold                            # a clean read is trusted


def test_without_the_model_the_heuristic_is_used():
    boxes = [OcrBox("本期电量：9,850 kWh", 0.9, [[40, 100], [300, 100], [300, 124], [40, 124]]),
             OcrBox("国家电网电费", 0.99, [[40, 20], [200, 20], [200, 44], [40, 44]])]
    try:
        cal.use_model(None)
        cal._MODEL.append(None)                                      # as if the file were missing
        out = extract_fields(boxes, (1000, 700))
        assert out["quantity"]["confidence"] == out["quantity"]["heuristic"] == pytest.approx(0.9)
    finally:
        cal.use_model(None)                                          # reread the shipped file
    out = extract_fields(boxes, (1000, 700))
    assert out["quantity"]["confidence"] != out["quantity"]["heuristic"]
