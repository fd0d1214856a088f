"""``workbench import`` on a bill image: read with the invoice connector, trusted fields stored,
doubtful ones queued for review with the image linked (issue 12, points 1, 5, 6)."""
from __future__ import annotations

import json

from click.testing import CliRunner
from invoice_images import degrade, render, to_bytes

from workbench.cli.main import main
from workbench.lake.store import Lake


def test_bill_image_is_imported_or_queued_never_lost(tmp_path):
    img, truth = render("electricity")
    clean = tmp_path / "电费通知单.png"
    clean.write_bytes(to_bytes(img))
    bad = tmp_path / "scan.jpg"
    bad.write_bytes(to_bytes(degrade(img, 5, scale=0.45, angle=2.0, noise=18, quality=30), "JPEG"))
    queue = tmp_path / "review.db"
    lake_args = ["--lake", str(tmp_path / "lake"), "--enterprise", "plant-a", "--review-queue", str(queue), "--json"]
    r = CliRunner().invoke(main, ["import", str(clean), "--dry-run", *lake_args])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["kind"] == "invoice" and not Lake(tmp_path / "lake", enterprise="plant-a").tables()
    for f in (clean, bad):
        r = CliRunner().invoke(main, ["import", str(f), *lake_args])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        # every field is either stored (trusted) or waiting for review — the image is in the lake
        assert doc["status"] == "stored" and doc["batch_id"]
        if doc["review"]:
            assert "wait for review" in doc["message"] and queue.exists()
            assert doc["quarantined"] == 1 and doc["stored"] == 0
        else:
            assert doc["stored"] == 1
            got = {t["item"]: (t["quantity"], t["unit"]) for t in doc["totals"]}
            assert got == {truth["item"]: (truth["quantity"], truth["unit"])}
    lake = Lake(tmp_path / "lake", enterprise="plant-a")
    assert len(lake.batches()) == 2
