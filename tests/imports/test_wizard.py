"""The import wizard (issue 12, point 7): the same steps as the command, driven by its buttons."""
from __future__ import annotations

import datetime as dt

from workbench.imports.wizard import ImportWizard
from workbench.lake.store import Lake


def _export(path):
    rows = ["采集时间,表计名称,正向有功总电能(kWh)"]
    t0 = dt.datetime(2025, 10, 1)
    for i in range(12):
        rows.append(f"{t0 + dt.timedelta(minutes=15 * i):%Y-%m-%d %H:%M},1#空压机,{500 + 4 * i}")
    path.write_text("\n".join(rows) + "\n", encoding="gbk")
    return path


def test_wizard_previews_imports_and_saves_the_mapping(tmp_path):
    f = _export(tmp_path / "export.csv")
    lake = Lake(tmp_path / "lake")
    wiz = ImportWizard(lake, enterprise="e1", path=f, sender="user:analyst")
    wiz.preview_button.click()
    out = wiz.outcome
    assert out.dry_run and out.plan.kind == "readings" and out.plan.encoding == "gbk"
    # 11 steps of 4 kWh; the meter is new: proposed, its rows held back until registered
    assert out.totals == [{"meter": "1#空压机", "quantity": 44.0, "unit": "kWh", "registered": False}]
    assert out.stored == 0 and "would store 0" in wiz.status.value
    assert not list(Lake(tmp_path / "lake", enterprise="e1").tables())       # a preview writes nothing
    wiz.register_meters.value = True
    wiz.node.value = "plant"
    wiz.mapping.value = str(tmp_path / "m.yaml")
    wiz.save_button.click()
    assert (tmp_path / "m.yaml").read_text(encoding="utf-8").startswith("workbench_import: 1")
    wiz.import_button.click()
    out = wiz.outcome
    assert out.status == "stored" and out.stored == 12 and out.totals == [{"meter": "1#空压机", "quantity": 44.0,
                                                                          "unit": "kWh"}]
    e1 = Lake(tmp_path / "lake", enterprise="e1")
    assert e1.meters().set_index("meter_id").at["1#空压机", "node_id"] == "plant"
    assert float(e1.sql("SELECT sum(value) AS v FROM consumption")["v"].iat[0]) == 44.0
    b = e1.batches()
    assert b["sender"].tolist() == ["user:analyst"]


def test_wizard_shows_a_bad_file_in_one_line(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_bytes(b"\x00\x01\x02garbage")
    wiz = ImportWizard(Lake(tmp_path / "lake"), path=f)
    assert wiz.preview() is None
    assert "bad.csv" in wiz.error and "\n" not in wiz.error and "Error" in wiz.status.value
    wiz.columns.value = "读数=value\n备注=ignore"
    assert wiz.hints()["columns"] == {"读数": "value", "备注": "-"}
