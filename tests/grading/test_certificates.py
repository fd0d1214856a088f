"""The certification store of enterprise grades (issue 14, point 7): only graded enterprises are
submitted, with their evidence and a data-quality score computed by hand here; approve / reject with
who, when and comment and an event in the same transaction; reads filtered by enterprise; the
verification checks a reviewer recorded; ``workbench grade --submit``.  The hand region
(tests/grading/hand_region.py) gives the known grades."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hand_region import write

from workbench.grading import grade_evidence
from workbench.grading.certificates import (
    CertificationError,
    GradeCertificates,
    grade_quality,
    label_quality,
    period_months,
    submit_graded,
)

# Q1 of the hand region (hand_region.py): grades and L worked out there by hand
Q1 = {"F1": (4, 275 / 300), "F2": (2, 660 / 1200), "F3": (5, 165 / 75), "G1": (3, 1.5), "G2": (2, 1.0),
      "H1": (3, 2.0), "Z1": (3, 1.0)}
UNGRADED = {"G3": "value_added_zero", "G4": "value_added_negative", "G5": "value_added_missing",
            "G6": "no_energy_data", "G7": "incomplete_period"}


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    return write(tmp_path_factory.mktemp("cert-region"))


@pytest.fixture
def store(tmp_path):
    s = GradeCertificates(f"sqlite:///{tmp_path / 'certification.db'}")
    yield s
    s.dispose()


def test_only_graded_enterprises_are_submitted_with_their_evidence(region, store):
    out = submit_graded(store, region, "2025-Q1", who="analyst-li")
    got = {c.enterprise_id: (c.grade, c.l) for c in out["submitted"]}
    assert got.keys() == Q1.keys()
    for e, (g, L) in Q1.items():
        assert got[e][0] == g and got[e][1] == pytest.approx(L, rel=1e-12)
    assert dict(out["ungraded"]) == UNGRADED and out["already_pending"] == []
    f1 = store.pending(enterprise="F1")[0]
    assert f1.status == "pending" and f1.created_by == "analyst-li" and f1.created_at and f1.period == "2025-Q1"
    assert f1.k == pytest.approx((275 / 300) / (1100 / 1575), rel=1e-12)                 # K = L / L_ind = 1.3125
    ev = f1.evidence
    assert [r["quantity"] for r in ev["energy"]] == [1000.0, 500.0, 1000.0]              # F1 heat, GJ, by month
    assert [r["value_added_10k_cny"] for r in ev["value_added"]] == [100.0, 100.0, 100.0]
    [heat] = ev["factors"]
    assert (heat["factor_id"], heat["value"], heat["unit"], heat["verified"], heat["records"]) == \
        ("default:heat:emission_factor", 0.11, "tCO2/GJ", True, 3)
    assert "MEE/NDRC" in heat["document"]
    # submitted again while pending: skipped, nothing doubled
    again = submit_graded(store, region, "2025-Q1", who="analyst-li")
    assert again["submitted"] == [] and sorted(again["already_pending"]) == sorted(Q1)
    assert len(store.pending()) == len(Q1)


def test_an_ungraded_row_is_refused(region, store):
    with pytest.raises(CertificationError, match="G7 2025-Q1: not graded \\(incomplete_period\\)"):
        store.submit(grade_evidence(region, "G7", "2025-Q1"), who="analyst")
    with pytest.raises(CertificationError, match="who"):
        store.submit(grade_evidence(region, "F1", "2025-Q1"), who="")
    assert store.list() == []


def test_the_data_quality_score_by_hand(region, store):
    # F1: 3/3 months of value added and energy, 3/3 rows traced, 1/1 factor verified, benchmark of 3 → 100
    # Z1 and G1: the same but a benchmark of 1 and 2 enterprises (< 3) → 4 of 5 checks → 80
    certs = {c.enterprise_id: c for c in submit_graded(store, region, "2025-Q1", who="a")["submitted"]}
    assert certs["F1"].quality == 100.0 and certs["Z1"].quality == 80.0 and certs["G1"].quality == 80.0
    z1 = {c["check"]: c["value"] for c in certs["Z1"].evidence["quality"]["checks"]}
    assert z1 == {"value_added_months": 1.0, "energy_months": 1.0, "traced": 1.0, "verified_factors": 1.0,
                  "benchmark": 0.0}
    # a made-up partial case: VA 2 of 3 months, energy in 1 of 3, 1 of 2 rows traced, 1 of 2 factors
    # verified, benchmark of 5: (2/3 + 1/3 + 1/2 + 1/2 + 1) / 5 = 0.6 → 60
    ev = {"period": "2025-Q1", "row": {"months": 2, "months_expected": 3, "benchmark_n": 5},
          "energy": [{"period": "2025-01", "document": "energy.csv row 2", "emission_factor_id": "a"},
                     {"period": "2025-01", "document": "", "emission_factor_id": "b"}],
          "factors": [{"factor_id": "a", "verified": True}, {"factor_id": "b", "verified": False}]}
    q = grade_quality(ev)
    assert q["score"] == 60.0 and [c["value"] for c in q["checks"]] == [0.6667, 0.3333, 0.5, 0.5, 1.0]


def test_label_quality_by_hand():
    # 1 of 1 month; primary share 800 / 1050; 1 of 2 rows with their raw file's hash; 2 of 3 factors
    # verified with a document; the allocation adds back → (1 + 0.761905 + 0.5 + 0.666667 + 1) / 5 = 78.57
    ev = {"period": "2025-01", "primary_data_share": 800 / 1050,
          "ledger": [{"period": "2025-01", "raw_sha256": "ab" * 32, "factor_ids": "f:ncv;f:cc"},
                     {"period": "2025-01", "raw_sha256": "", "factor_ids": "f:grid"}],
          "factors": [{"factor_id": "f:ncv", "document": "GB/T 32151.8", "verified": True},
                      {"factor_id": "f:cc", "document": "GB/T 32151.8", "verified": True},
                      {"factor_id": "f:grid", "document": "note", "verified": False}],
          "check": {"ledger_tco2e": 1050.0, "allocation_residual_tco2e": 0.0}}
    assert label_quality(ev)["score"] == 78.6
    ev["check"]["allocation_residual_tco2e"] = 0.5                     # does not add back
    assert label_quality(ev, "2025-01/2025-02")["score"] == round(100 * (0.5 + 0.761905 + 0.5 + 2 / 3) / 5, 1)
    assert period_months("2024-11/2025-02") == ("2024-11", "2024-12", "2025-01", "2025-02")
    assert period_months("2025-Q2") == ("2025-04", "2025-05", "2025-06")


def test_decisions_keep_who_when_and_why_and_reads_stay_in_their_enterprise(region, db_url):
    store = GradeCertificates(db_url)
    try:
        out = submit_graded(store, region, "2025-Q1", who="analyst-li", enterprises=["F1", "F2", "Z1"])
        ids = {c.enterprise_id: c.certificate_id for c in out["submitted"]}
        with pytest.raises(CertificationError, match="comment"):
            store.reject(ids["F2"], who="reviewer-zhao", comment="  ")
        ok = store.approve(ids["F1"], who="reviewer-zhao", comment="energy bills seen")
        assert (ok.status, ok.decided_by, ok.comment) == ("approved", "reviewer-zhao", "energy bills seen")
        assert ok.decided_at.endswith("Z")
        no = store.reject(ids["F2"], who="reviewer-zhao", comment="value added of February not evidenced")
        assert no.status == "rejected" and no.comment == "value added of February not evidenced"
        with pytest.raises(CertificationError, match="not pending"):
            store.approve(ids["F2"], who="reviewer-zhao")
        assert [(e["action"], e["from_status"], e["to_status"], e["who"], e["comment"]) for e in
                store.events(ids["F2"])] == [("submit", "", "pending", "analyst-li", ""),
                                             ("reject", "pending", "rejected", "reviewer-zhao",
                                              "value added of February not evidenced")]
        assert [c.enterprise_id for c in store.list(enterprise=["F1", "Z1"])] and \
            {c.enterprise_id for c in store.list(enterprise=["F1", "Z1"])} == {"F1", "Z1"}
        assert [c.enterprise_id for c in store.pending(enterprise="Z1")] == ["Z1"]
        assert store.list(enterprise="F1")[0].evidence == {}                  # the list is light
        with pytest.raises(CertificationError, match="no certificate"):
            store.get(ids["F1"], enterprise="Z1")
        # a rejected grade can be submitted again (data corrected); an approved one as well
        again = submit_graded(store, region, "2025-Q1", who="analyst-li", enterprises=["F2"])
        assert len(again["submitted"]) == 1
    finally:
        store.dispose()


def test_recorded_verification_checks(store):
    assert store.verification_status("ent-r", 2025)["state"] == "not_verified"
    result = {"ok": True, "problems": [], "signer": "sha256:ab", "key_pinned": False, "enterprise": "ent-r",
              "year": 2025, "total_tco2e": 1.7109}
    row = store.record_check(result, who="reviewer-zhao", package="ent-r-2025.zip", package_sha256="cd" * 32)
    assert row["ok"] and row["checked_by"] == "reviewer-zhao"
    st = store.verification_status("ent-r", 2025)
    assert st["state"] == "passed" and "package checked on" in st["text"] and "not pinned" in st["text"]
    store.record_check({**result, "ok": False, "problems": [{"text": "x"}, {"text": "y"}]}, who="r2")
    st = store.verification_status("ent-r", 2025)
    assert st["state"] == "failed" and "2 problem(s)" in st["text"]                  # the latest counts
    assert store.verification_status("ent-r", 2024)["state"] == "not_verified"
    assert store.checks("other") == []
    with pytest.raises(CertificationError, match="no enterprise"):
        store.record_check({"ok": True}, who="r")


def test_workbench_grade_submit(region, tmp_path, monkeypatch):
    from workbench.cli.main import main as cli

    monkeypatch.delenv("WORKBENCH_CERTIFICATION", raising=False)
    db = tmp_path / "sub" / "certification.db"
    r = CliRunner().invoke(cli, ["grade", "--region", str(region), "--period", "2025-Q1", "--submit", "--db", str(db),
                                 "--by", "analyst-li"])
    assert r.exit_code == 0, r.output
    assert "submitted for certification: 7 pending" in r.output and "5 ungraded" in r.output
    r = CliRunner().invoke(cli, ["grade", "--region", str(region), "--period", "2025-Q1", "--submit", "--db", str(db),
                                 "--json"])
    doc = json.loads(r.output)
    assert doc["submitted"]["certificates"] == [] and len(doc["submitted"]["already_pending"]) == 7
    with GradeCertificates(str(db)) as s:
        assert sorted((c.enterprise_id, c.grade, c.created_by) for c in s.pending()) == \
            sorted((e, g, "analyst-li") for e, (g, _) in Q1.items())
    r = CliRunner().invoke(cli, ["grade", "--region", str(region), "--period", "2025-Q1", "--submit",
                                 "--db", "nosuch://x"])
    assert r.exit_code == 2 and "--db: nosuch://x: not a database URL" in r.output
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 8)
    r = CliRunner().invoke(cli, ["grade", "--region", str(region), "--period", "2025-Q1", "--submit", "--db", str(junk)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "junk.db: cannot open the database" in r.output



def test_evidence_from_grades_already_computed_equals_evidence_computed_alone(region):
    """submit_graded grades the region once and hands the grades to grade_evidence: the evidence
    is the same as grade_evidence grading the region itself; grades of another period are refused."""
    from workbench.grading.engine import grade_emissions
    from workbench.grading.errors import GradingError
    from workbench.grading.region import load_region

    em = load_region(region)
    period = "2025-Q1"
    rg = grade_emissions(em, period)
    ok = rg.grades.loc[rg.grades["status"] == "ok", "enterprise_id"].tolist()
    assert ok
    for eid in ok:
        a = grade_evidence(em, eid, period).to_dict()
        b = grade_evidence(em, eid, period, graded=rg).to_dict()
        assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    with pytest.raises(GradingError, match="not of 2025-Q2"):
        grade_evidence(em, ok[0], "2025-Q2", graded=rg)
