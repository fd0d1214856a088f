"""Monthly output and value added in the lake (the denominators of carbon efficiency): the
production connector reshapes a plant's monthly table, the lake checks every row and quarantines
what is wrong, naming row and column."""
from __future__ import annotations

import pandas as pd
import pytest

from connectors import production
from workbench.ingestion import ingest
from workbench.lake.store import Lake

TABLE = """period,node_id,clinker_t,cement_t,value_added_10k_cny
2025-01,F01,132013.24,,
2025-01,F02,,177306.20,
2025-01,ENT,,,3150.5
2025-13,F01,5,,
2025-02,F01,-3,,
2025-02,F09,7,,
2025-02,ENT,,,abc
"""


def test_a_monthly_table_becomes_checked_rows(tmp_path):
    f = tmp_path / "monthly.csv"
    f.write_text(TABLE, encoding="utf-8")
    products = [{"product": "clinker", "column": "clinker_t", "unit": "t"},
                {"product": "cement", "column": "cement_t", "unit": "t"}]
    res = production.read(f, products=products)
    assert "guessed_products" not in res.metadata
    # 7 numbers in the table (empty cells are no rows)
    assert len(res.data) == 7
    lake = Lake(tmp_path / "lake")
    lake.register_boundary(pd.DataFrame({"node_id": ["ENT", "F01", "F02"], "parent_id": ["", "ENT", "ENT"],
                                         "level": ["enterprise", "facility", "facility"]}))
    rep = ingest(lake, res, sender="test")
    assert (rep.rows_curated, rep.rows_quarantined) == (3, 4)
    p = lake.sql("SELECT node_id, measure, product, quantity, unit FROM production ORDER BY node_id")
    assert p.values.tolist() == [["ENT", "value_added", "", 3150.5, "万元"], ["F01", "output", "clinker", 132013.24, "t"],
                                 ["F02", "output", "cement", 177306.2, "t"]]
    q = lake.sql('SELECT row, "column", reason FROM quarantine ORDER BY row')
    assert q.values.tolist() == [[5, "period", "period must be YYYY-MM"], [6, "quantity", "negative"],
                                 [7, "node_id", "node_id is not in the lake's boundary"],
                                 [8, "quantity", "not a finite number"]]
    # without the product list the *_t columns are guessed — and said to be
    guessed = production.read(f)
    assert guessed.metadata["guessed_products"] == ["cement_t", "clinker_t"]


def test_the_demo_loads_its_production_table(demo_data, tmp_path):
    from workbench.demo.load import load_demo

    out = load_demo(demo_data, tmp_path / "lake", enterprise="demo-cement")
    assert out["production"]["status"] == "stored" and out["production"]["rows_quarantined"] == 0
    m = pd.read_csv(demo_data / "monthly.csv")
    lake = Lake(tmp_path / "lake", enterprise="demo-cement")
    s = lake.sql("SELECT measure, product, sum(quantity) AS q FROM production GROUP BY ALL ORDER BY 1, 2")
    got = {(r.measure, r.product): r.q for r in s.itertuples()}
    assert got[("value_added", "")] == pytest.approx(m["value_added_10k_cny"].sum())
    assert got[("output", "clinker")] == pytest.approx(m["clinker_t"].sum())
    assert got[("output", "cement")] == pytest.approx(m["cement_t"].sum())
