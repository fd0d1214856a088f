"""connectors.manual: the ipywidgets form (driven without a browser) and manual record files."""
from __future__ import annotations

import json

import pytest

from connectors import ConnectorResult
from connectors.manual import ManualEntryForm, read_manual_file
from workbench.core.activity import ActivityDataError


class Sink:
    def __init__(self, fail: bool = False):
        self.results: list[ConnectorResult] = []
        self.fail = fail

    def __call__(self, result):
        if self.fail:
            raise RuntimeError("lake is read-only")
        self.results.append(result)


def fill(form: ManualEntryForm, **values):
    for k, v in values.items():
        getattr(form, k).value = v


def test_form_choices_come_from_the_factor_library():
    form = ManualEntryForm(Sink())
    labels = {v: k for k, v in form.source.options}
    assert labels["combustion"].startswith("燃料燃烧") and labels["purchased_electricity"].startswith("购入电力")
    items = {v: k for k, v in form.item.options}
    assert items["raw_coal"].startswith("原煤") and "grid" not in items
    form.source.value = "purchased_electricity"
    assert {v: k for k, v in form.item.options}["grid"].startswith("电力")
    assert form.unit.value == "MWh" and "万kWh" in form.unit.options
    form.source.value = "combustion"
    form.item.value = "natural_gas"
    assert form.unit.value == "万Nm3"


def test_good_submission_is_validated_and_ingested():
    sink = Sink()
    form = ManualEntryForm(sink, facilities=["F01", "F02"])
    fill(form, source="combustion", item="raw_coal", quantity="120.5", unit="吨", period="2025年3月",
         facility="F01", document="煤场台账 2025-03 p.12", who="王工")
    form.button.click()  # the same handler a browser click runs
    assert len(sink.results) == 1
    res = sink.results[0]
    assert isinstance(res, ConnectorResult) and res.kind == "activity"
    row = res.data.iloc[0]
    assert (row["source"], row["item"], row["quantity"], row["unit"], row["period"], row["node_id"]) == \
        ("combustion", "raw_coal", 120.5, "吨", "2025-03", "F01")
    assert row["record_id"].startswith("manual-")
    assert res.metadata["sender"] == "王工" and res.metadata["connector"] == "manual"
    raw = json.loads(res.raw.decode("utf-8"))  # the form exactly as submitted
    assert raw["who"] == "王工" and raw["fields"]["quantity"] == "120.5" and raw["fields"]["period"] == "2025年3月"
    assert raw["record_id"] == row["record_id"]
    assert "已提交" in form.status.value
    assert form.quantity.value == "" and form.period.value == "2025年3月"  # ready for the next month/item
    assert form.submitted == [row["record_id"]]


@pytest.mark.parametrize("values, column, message", [
    ({"quantity": "abc"}, "数量", "'abc' is not a number"),
    ({"quantity": "-5"}, "数量", "impossible quantity"),
    ({"unit": "kWh"}, "单位", "does not measure raw_coal"),
    ({"period": "三月"}, "期间", "is not a period"),
])
def test_bad_submission_shows_the_validation_error_and_sends_nothing(values, column, message):
    sink = Sink()
    form = ManualEntryForm(sink, who="王工")
    fill(form, source="combustion", item="raw_coal", quantity="10", unit="t", period="2025-03")
    fill(form, **values)
    assert form.submit() is None
    assert sink.results == []
    text = form.status.value
    assert "manual entry form, row 1, column &#x27;" + column in text  # file / row / column, HTML-escaped
    assert message.replace("'", "&#x27;") in text
    field = {"数量": form.quantity, "单位": form.unit, "期间": form.period}[column]
    assert "solid" in field.layout.border
    assert form.quantity.value == values.get("quantity", "10")  # nothing cleared


def test_who_is_required():
    sink = Sink()
    form = ManualEntryForm(sink)
    fill(form, item="raw_coal", quantity="1", unit="t")
    assert form.submit() is None and sink.results == []
    assert "录入人" in form.status.value and "solid" in form.who.layout.border


def test_ingest_failure_is_shown_and_the_form_kept():
    form = ManualEntryForm(Sink(fail=True), who="王工")
    fill(form, item="raw_coal", quantity="1", unit="t", period="2025-03")
    assert form.submit() is None
    assert "lake is read-only" in form.status.value and form.quantity.value == "1"


def test_read_manual_file_strict_and_lenient(tmp_path):
    p = tmp_path / "手工台账.csv"
    p.write_bytes("来源,品种,数量,单位,期间,录入人,凭证\n"
                  "燃料燃烧,柴油,1.2,吨,2025-03,王工,加油单 0312\n"
                  "购入热力,蒸汽,abc,GJ,2025-03,李工,热计量表\n".encode("gbk"))
    with pytest.raises(ActivityDataError) as ei:
        read_manual_file(p)
    assert (ei.value.row, ei.value.column) == (3, "数量")
    res = read_manual_file(p, strict=False)
    assert res.data["item"].tolist() == ["diesel"] and res.metadata["rejected"]["row"].tolist() == [3]
    assert res.metadata["sender"] == "王工, 李工" and res.metadata["connector"] == "manual"
    assert res.raw == p.read_bytes()


def test_read_manual_xlsx(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["source", "item", "quantity", "unit", "period", "document"])
    ws.append(["purchased_electricity", "grid", 12.5, "MWh", "2025-04", "电费单 04"])
    p = tmp_path / "manual.xlsx"
    wb.save(p)
    res = read_manual_file(p, sender="张三")
    assert res.data["quantity"].tolist() == [12.5] and res.metadata["sender"] == "张三"
    with pytest.raises(ActivityDataError, match="unsupported"):
        read_manual_file(tmp_path / "x.json")
