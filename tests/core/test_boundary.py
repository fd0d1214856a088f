"""Accounting boundary (workbench.core.boundary): validation, facility and 分项 class look-ups."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.accounting import account
from workbench.core.boundary import CLASSIFICATIONS, LEVELS, Boundary, BoundaryError

NODES = [
    # node_id, parent_id, level, name_zh, classification
    ("ENT", "", "enterprise", "示例水泥公司", ""),
    ("F01", "ENT", "facility", "熟料线", "main_production"),
    ("F01.W01", "F01", "workshop", "窑系统", ""),
    ("F01.W01.P01", "F01.W01", "process", "回转窑", ""),
    ("F01.W01.P01.M1", "F01.W01.P01", "meter", "窑主电表", ""),
    ("F01.W02", "F01", "workshop", "机修", "auxiliary"),
    ("F02", "ENT", "facility", "办公区", "non_production"),
    ("F02.W01", "F02", "workshop", "食堂", ""),
    ("F03", "ENT", "facility", "余热外供", ""),
    ("F03.W01", "F03", "workshop", "蒸汽外供", "external_supply"),
]


def frame(nodes=NODES) -> pd.DataFrame:
    return pd.DataFrame(nodes, columns=["node_id", "parent_id", "level", "name_zh", "classification"])


@pytest.fixture(scope="module")
def b() -> Boundary:
    return Boundary(frame())


def with_rows(*extra, drop=()):
    return frame([n for n in NODES if n[0] not in drop] + list(extra))


# --------------------------------------------------------------------------- valid boundary
def test_enterprise_and_facilities(b):
    assert b.enterprise == "ENT"
    assert b.facilities() == ["F01", "F02", "F03"]
    assert b.children("F01") == ["F01.W01", "F01.W02"]
    assert b.name("F01") == "熟料线"


def test_ancestors(b):
    assert b.ancestors("F01.W01.P01.M1") == ["F01.W01.P01.M1", "F01.W01.P01", "F01.W01", "F01", "ENT"]
    assert b.ancestor_at("F01.W01.P01.M1", "workshop") == "F01.W01"


def test_facility_of(b):
    nodes = ["F01.W01.P01.M1", "F01.W01.P01", "F01.W02", "F01", "F02.W01", "F03.W01", "ENT"]
    assert b.facility_of(nodes).tolist() == ["F01", "F01", "F01", "F01", "F02", "F03", "ENT"]


def test_classification_is_inherited_from_the_nearest_ancestor(b):
    nodes = ["F01.W01.P01.M1", "F01.W01", "F01.W02", "F02.W01", "F03", "F03.W01", "ENT"]
    assert b.classification_of(nodes).tolist() == [
        "main_production",   # meter → process → workshop → F01 (main_production)
        "main_production",   # workshop without its own class → F01
        "auxiliary",         # its own class wins over the facility's
        "non_production",    # from F02
        "",                  # F03 has none, nor has the enterprise
        "external_supply",
        "",
    ]


def test_unknown_node_in_lookups(b):
    with pytest.raises(BoundaryError, match="F99"):
        b.facility_of(["F99"])
    with pytest.raises(BoundaryError, match="F99"):
        b.classification_of(["F01", "F99"])


def test_read_csv(tmp_path):
    p = tmp_path / "boundary.csv"
    frame().assign(name_en="", identifier="").to_csv(p, index=False, encoding="utf-8")
    b = Boundary.read_csv(p)
    assert b.facility_of(["F01.W01.P01.M1"]).tolist() == ["F01"]
    assert b.classification_of(["F02.W01"]).tolist() == ["non_production"]


def test_constants():
    assert LEVELS == ("enterprise", "facility", "workshop", "process", "meter")
    assert set(CLASSIFICATIONS) == {"main_production", "auxiliary", "non_production", "external_supply"}


# --------------------------------------------------------------------------- validation errors
def test_cycle():
    # F04 and F05 point at each other; the enterprise is still the only root
    df = with_rows(("F04", "F05", "facility", "", ""), ("F05", "F04", "facility", "", ""))
    with pytest.raises(BoundaryError, match="cycle"):
        Boundary(df)


def test_self_loop():
    df = with_rows(("W9", "W9", "workshop", "", ""))
    with pytest.raises(BoundaryError, match="cycle"):
        Boundary(df)


def test_unknown_parent():
    df = with_rows(("F01.W09", "F09", "workshop", "", ""))
    with pytest.raises(BoundaryError, match="unknown parent") as exc:
        Boundary(df)
    assert "F01.W09" in str(exc.value)


def test_two_roots():
    df = with_rows(("ENT2", "", "enterprise", "", ""))
    with pytest.raises(BoundaryError, match="exactly one root"):
        Boundary(df)


def test_no_root():
    df = frame([("F01", "F02", "facility", "", ""), ("F02", "F01", "facility", "", "")])
    with pytest.raises(BoundaryError):
        Boundary(df)


def test_root_must_be_the_enterprise():
    df = frame([("F01", "", "facility", "", "")])
    with pytest.raises(BoundaryError, match="enterprise"):
        Boundary(df)


@pytest.mark.parametrize("bad", [
    ("F01.W01.P01.W9", "F01.W01.P01", "workshop", "", ""),   # workshop under a process
    ("F01.F9", "F01", "facility", "", ""),                     # facility under a facility
    ("M9", "F01.W01.P01.M1", "meter", "", ""),                 # meter under a meter
])
def test_bad_level_nesting(bad):
    with pytest.raises(BoundaryError, match="levels must nest") as exc:
        Boundary(with_rows(bad))
    assert bad[0] in str(exc.value)


def test_skipping_a_level_is_allowed():
    b = Boundary(with_rows(("F02.M1", "F02", "meter", "", "")))
    assert b.facility_of(["F02.M1"]).tolist() == ["F02"]


def test_bad_class():
    with pytest.raises(BoundaryError, match="production_main"):
        Boundary(with_rows(("F04", "ENT", "facility", "", "production_main")))


def test_unknown_level():
    with pytest.raises(BoundaryError, match="plant"):
        Boundary(with_rows(("F04", "ENT", "plant", "", "")))


def test_duplicate_ids():
    with pytest.raises(BoundaryError, match="duplicate"):
        Boundary(with_rows(("F01", "ENT", "facility", "", "")))


def test_missing_columns():
    with pytest.raises(BoundaryError, match="level"):
        Boundary(frame().drop(columns="level"))


# --------------------------------------------------------------------------- in the engine
def test_account_with_boundary(b):
    act = pd.DataFrame([
        dict(node_id="F01.W01.P01.M1", source="purchased_electricity", item="grid", quantity=10, unit="MWh", period="2023-01"),
        dict(node_id="F02.W01", source="purchased_heat", item="heat", quantity=100, unit="GJ", period="2023-01"),
        dict(node_id="", source="purchased_heat", item="heat", quantity=1, unit="GJ", period="2023-01"),
    ])
    led = account(act, boundary=b)
    assert led["facility"].tolist() == ["F01", "F02", "ENT"]
    assert led["classification"].tolist() == ["main_production", "non_production", ""]
    assert led["node_id"].tolist() == ["F01.W01.P01.M1", "F02.W01", "ENT"]
    # 10 MWh × 0.5306 (national 2023); 100 GJ × 0.11; 1 GJ × 0.11
    assert led["tco2e"].tolist() == pytest.approx([10 * 0.5306, 100 * 0.11, 1 * 0.11], rel=1e-12)
