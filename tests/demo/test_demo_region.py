"""Tests of the demo regional population (workbench.demo.region, `workbench demo region`)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.cli.main import main
from workbench.demo.region import SECTORS, counties, generate_region

N = 400
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
DECIMALS = {"kWh": 1, "Nm3": 1, "t": 3, "GJ": 2}


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    out = tmp_path_factory.mktemp("region")
    info = generate_region(out, enterprises=N, seed=11)
    t = {name: pd.read_csv(out / f"{name}.csv", dtype={"county_code": str, "city_code": str, "period": str})
         for name in ("enterprises", "intensities", "energy", "output", "value_added", "counties", "sectors")}
    return out, info, t


def test_population_size_and_files(region):
    out, info, t = region
    e = t["enterprises"]
    assert len(e) == N and e.enterprise_id.is_unique and info["counts"]["enterprises"] == N
    for name in ("energy", "output", "value_added"):
        pq = pd.read_parquet(out / f"{name}.parquet")
        assert len(pq) == len(t[name])
    assert len(t["value_added"]) == 12 * N
    assert sorted(t["energy"].period.unique()) == [f"2025-{m:02d}" for m in range(1, 13)]
    assert set(e.sector) == {s.sector for s in SECTORS}  # 400 enterprises reach every sector
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "GB 16780-2021" in readme and "GB 21256-2025" in readme and "illustrative" in readme


def test_counties_are_zhejiangs_county_level_divisions(region):
    _, _, t = region
    c = counties("CN-ZJ")
    assert len(c) == 90 and c.county_code.is_unique and c.city_code.nunique() == 11  # 11 cities, 90 counties [E4]
    assert (c.county_code.str.fullmatch(r"33\d{4}")).all()
    assert (c.city_code == c.county_code.str[:4] + "00").all()
    known = {"330522": "长兴县", "330523": "安吉县", "330502": "吴兴区", "330113": "临平区", "330383": "龙港市",
             "331127": "景宁畲族自治县", "330603": "柯桥区"}
    assert dict(zip(c.county_code, c.county_name_zh)).items() >= known.items()
    assert not {"330103", "330104"} & set(c.county_code)  # 下城区/江干区: merged in 2021
    e = t["enterprises"]
    assert set(e.county_code) <= set(c.county_code) and (e.region == "CN-ZJ").all()
    assert (e.city_code == e.county_code.str[:4] + "00").all()
    assert t["counties"].n_enterprises.sum() == N
    with pytest.raises(ValueError, match="not available"):
        counties("CN-XX")


def test_uscc_and_industry_codes(region):
    e = region[2]["enterprises"]
    for code, county in zip(e.unified_social_credit_code, e.county_code):
        assert code[:2] == "91" and code[2:8] == county
        s = sum(USCC_ALPHABET.index(ch) * pow(3, i, 31) for i, ch in enumerate(code[:17]))
        assert USCC_ALPHABET[(31 - s % 31) % 31] == code[17], code
    assert e.unified_social_credit_code.is_unique
    assert dict(e.groupby("sector").industry_code.agg(lambda x: "/".join(sorted(set(x))))) == {
        "cement": "C3011", "steel": "C3130", "textile_dyeing": "C1713", "textile_weaving": "C1751",
        "furniture": "C2130"}


def test_intensities_within_documented_ranges(region):
    _, _, t = region
    i, s = t["intensities"], t["sectors"]
    e = t["enterprises"].set_index("enterprise_id")
    ranges = s.set_index(["sector", "route", "parameter"])[["low", "high", "unit"]]
    for row in i.itertuples():
        ent = e.loc[row.enterprise_id]
        low, high, unit = ranges.loc[(ent.sector, ent.route, row.parameter)]
        assert float(low) <= row.drawn_value <= float(high), row
        assert row.drawn_unit == unit
        if unit == "kgce/t":  # coal: kgce per t → t of raw coal per t with the enterprise's NCV
            assert row.intensity == pytest.approx(row.drawn_value * 0.0293076 / float(ent.coal_ncv_gj_per_t), rel=1e-4)
            assert 20.5 <= float(ent.coal_ncv_gj_per_t) <= 23.5
        else:
            assert row.intensity == pytest.approx(row.drawn_value, rel=1e-5)
    # centred where sectors.csv says: cement clinker coal near GB 16780 grade 2 (100 kgce/t), σ 4.5
    coal = i[(i.parameter == "intensity:raw_coal/clinker")].drawn_value
    assert len(coal) >= 15 and 98 < coal.mean() < 104
    eaf = i[i.parameter == "intensity:electricity/billet"].drawn_value
    assert len(eaf) >= 3 and (eaf.between(400, 600)).all()


def test_energy_is_intensity_times_output_each_month(region):
    _, _, t = region
    i, o, en = t["intensities"], t["output"], t["energy"]
    o = o.set_index(["enterprise_id", "product", "period"]).sort_index().quantity
    expect = {}
    for row in i.itertuples():
        q = o.loc[(row.enterprise_id, row.product)]
        key = (row.enterprise_id, row.carrier)
        expect[key] = expect.get(key, 0) + row.intensity * q
    assert len(en) == 12 * len(expect)
    for (eid, carrier), g in en.groupby(["enterprise_id", "carrier"]):
        tol = 0.5 * 10.0 ** -DECIMALS[g.unit.iloc[0]] + 1e-9  # the written energy is rounded
        g = g.set_index("period").quantity
        want = expect[(eid, carrier)][g.index]
        assert np.abs(g.to_numpy() - want.to_numpy()).max() <= tol, (eid, carrier)
    assert dict(zip(en.carrier, en.unit)) == {"electricity": "kWh", "natural_gas": "Nm3", "raw_coal": "t",
                                             "purchased_heat": "GJ"}
    assert dict(zip(en.carrier, en["item"])) == {"electricity": "grid", "natural_gas": "natural_gas",
                                                 "raw_coal": "raw_coal", "purchased_heat": "heat"}


def test_value_added_consistent_with_output_and_threshold(region):
    _, _, t = region
    e = t["enterprises"].set_index("enterprise_id")
    o = t["output"].set_index(["enterprise_id", "product"])
    va = t["value_added"].set_index("enterprise_id")
    for eid, ent in e.iterrows():
        q = o.loc[(eid, ent.sales_product)].quantity.to_numpy()
        v = va.loc[eid].value_added_10k_cny.to_numpy()
        assert np.abs(v - ent.value_added_cny_per_unit * q / 1e4).max() <= 0.0006 + 1e-6 * v.max(), eid
        assert ent.value_added_10k_cny == pytest.approx(v.sum(), abs=0.01)
        assert ent.annual_output == pytest.approx(q.sum(), abs=0.01)
    assert (e.revenue_10k_cny >= 2000).all()  # 规上: revenue ≥ 20 M CNY
    assert (t["output"].quantity >= 0).all() and (t["energy"].quantity >= 0).all()
    # the Spring-Festival stop shows: February is every sector's weakest month on average
    mo = t["output"].merge(e[["sector"]], left_on="enterprise_id", right_index=True)
    share = mo.groupby(["sector", "period"]).quantity.sum() / mo.groupby("sector").quantity.sum()
    assert (share.groupby(level=0).idxmin().map(lambda x: x[1]) == "2025-02").all()


def test_deterministic_per_seed_and_stable_in_n(region, tmp_path):
    out, _, t = region
    again = tmp_path / "again"
    generate_region(again, enterprises=N, seed=11)
    for name in ("enterprises", "intensities", "energy", "output", "value_added", "counties", "sectors"):
        assert (out / f"{name}.csv").read_bytes() == (again / f"{name}.csv").read_bytes(), name
    small = tmp_path / "small"
    generate_region(small, enterprises=25, seed=11)
    a = pd.read_csv(small / "energy.csv")
    b = t["energy"][t["energy"].enterprise_id.isin(set(a.enterprise_id))].reset_index(drop=True)
    pd.testing.assert_frame_equal(a.astype(str), b.astype(str))  # enterprise k does not depend on N
    other = tmp_path / "other"
    generate_region(other, enterprises=N, seed=12)
    assert (out / "energy.csv").read_bytes() != (other / "energy.csv").read_bytes()


def test_cli_region(tmp_path):
    res = CliRunner().invoke(main, ["demo", "region", "--enterprises", "30", "--out", str(tmp_path / "r"),
                                    "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "r" / "enterprises.csv")) == 30 and "30 enterprises" in res.output
    bad = CliRunner().invoke(main, ["demo", "region", "--enterprises", "3", "--out", str(tmp_path / "b"),
                                    "--province", "CN-JS"])
    assert bad.exit_code == 2 and "not available" in bad.output
    zero = CliRunner().invoke(main, ["demo", "region", "--enterprises", "0", "--out", str(tmp_path / "z")])
    assert zero.exit_code == 2


def test_sectors_table_documents_every_parameter(region):
    s = region[2]["sectors"]
    assert (s.basis.str.len() > 10).all()
    for sec in SECTORS:
        for r in sec.routes:
            names = set(s[(s.sector == sec.sector) & (s.route == r.name)].parameter)
            assert {f"intensity:{i.carrier}/{i.product}" for i in r.intensities} <= names
            assert f"size:{r.main[0]}" in names and f"value_added:{r.sales}" in names
    assert json.loads(s[(s.sector == "furniture") & (s.parameter == "county_weights")].a.iloc[0])["330523"] == 10.0
