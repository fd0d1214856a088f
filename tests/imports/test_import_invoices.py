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


def test_bill_matched_against_the_master_data_given_as_a_sqlite_file(tmp_path):
    """--registry takes the file as every command does; the bill's account is known → trusted, an
    account the master data does not have → the account waits for review."""
    from workbench.demo.exports import ACCOUNTS, CORPUS_ENTERPRISE, write_master_data

    img, truth = render("electricity")
    bill = tmp_path / "bill.png"
    bill.write_bytes(to_bytes(img))
    folder = write_master_data(tmp_path / "md")
    registry = tmp_path / "registry.db"
    r = CliRunner().invoke(main, ["registry", "import", str(folder), "--registry", str(registry)])
    assert r.exit_code == 0, r.output
    args = ["import", str(bill), "--dry-run", "--json", "--lake", str(tmp_path / "lake"),
            "--enterprise", CORPUS_ENTERPRISE, "--registry", str(registry)]
    doc = json.loads(CliRunner().invoke(main, args).output)
    assert truth["account_no"] in {a for a, *_ in ACCOUNTS}              # the corpus's master data has it
    assert doc["review"] == [] and doc["stored"] == 1
    assert doc["totals"] == [{"item": "grid", "quantity": truth["quantity"], "unit": "kWh"}]
    # the same bill for an enterprise whose master data has another account: the account is asked for
    (folder / "accounts.csv").write_text("account,supplier\n3309999999,国网湖州供电公司\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["registry", "import", str(folder), "--registry", str(registry),
                                     "--prune"]).exit_code == 0
    doc = json.loads(CliRunner().invoke(main, args).output)
    assert "account_no" in {r["field"] for r in doc["review"]} and doc["stored"] == 0
    r = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "missing.db")])
    assert r.exit_code == 2 and "no such database" in r.output
