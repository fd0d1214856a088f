"""A small lake of two enterprises built through the ordinary ingest path — shared by the data-status
tests (tests/reports/test_status.py, where every figure is derived by hand) and the apps' browser
tests.  ent-a: meters E0 (main) and E1 in March and April 2026 with two intervals never sent and one
negative value, a gas ledger uploaded twice, bills of 3,000 and 2,000 kWh; ent-b: E0 at 7 kWh per
interval in March."""
from __future__ import annotations

import pandas as pd

from connectors import ConnectorResult, activity_file
from workbench.ingestion import ingest
from workbench.lake.store import Lake

BOUNDARY = pd.DataFrame([("ENT", "", "enterprise", "示例厂", "Demo plant", ""),
                         ("F01", "ENT", "facility", "一车间", "Shop 1", "main_production")],
                        columns=["node_id", "parent_id", "level", "name_zh", "name_en", "classification"])
METERS = pd.DataFrame([("E0", "ENT", "purchased_electricity", "grid", "kWh", "interval", "true"),
                       ("E1", "F01", "purchased_electricity", "grid", "kWh", "interval", "false")],
                      columns=["meter_id", "node_id", "source", "item", "unit", "register", "is_main"])
MARCH, APRIL = 31 * 96, 30 * 96


def _readings(rows: pd.DataFrame, name: str) -> ConnectorResult:
    return ConnectorResult(rows, {"source": "ems", "origin": f"/exports/{name}"}, kind="readings",
                           raw=rows.to_csv().encode(), raw_name=name)


def _series(meter, start, n, value) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="15min", tz="Asia/Shanghai")
    return pd.DataFrame({"meter_id": meter, "ts": ts, "value": value, "unit": "kWh"})


def _bills(rows) -> ConnectorResult:
    inv = pd.DataFrame([{"date": d, "period": p, "supplier": "国网浙江", "account_no": "3301", "item": "grid",
                         "quantity": q, "unit": "kWh", "amount": 1.0e3, "currency": "CNY", "needs_review": False}
                        for d, p, q in rows])
    return ConnectorResult(inv, {"source": "invoice-ocr"}, kind="invoice", raw=repr(rows).encode(),
                           raw_name="bills.pdf")


def build(tmp) -> Lake:
    """The lake root (``tmp / 'lake'``) holding ent-a and ent-b."""
    root = Lake(tmp / "lake")
    for eid in ("ent-a", "ent-b"):
        lk = root.for_enterprise(eid)
        lk.register_boundary(BOUNDARY)
        lk.register_meters(METERS)
    a = root.for_enterprise("ent-a")
    e0 = _series("E0", "2026-03-01", MARCH, 1.0)
    e0 = e0.drop(index=[100, 101])                       # two intervals never sent
    e0.loc[500, "value"] = -1.0                          # one sent negative: quarantined
    march = pd.concat([e0, _series("E1", "2026-03-01", MARCH, 0.5), _series("E9", "2026-03-02", 1, 1.0)],
                      ignore_index=True)
    ingest(a, _readings(march, "march.csv"), sender="alice")
    ingest(a, _readings(_series("E0", "2026-04-01", APRIL, 1.0), "april.csv"), sender="alice")
    ledger = tmp / "ledger.csv"
    ledger.write_text("source,item,quantity,unit,period,node_id,document\n"
                      "combustion,natural_gas,2.5,万Nm3,2026-03,F01,gas ledger\n", encoding="utf-8")
    ingest(a, activity_file.read(ledger), sender="bob")
    ingest(a, activity_file.read(ledger), sender="bob")  # the same file again: a duplicate upload
    ingest(a, _bills([("2026-04-03", "2026-03", 3000.0), ("2026-05-03", "2026-04", 2000.0)]), sender="carol")
    b = root.for_enterprise("ent-b")
    ingest(b, _readings(pd.concat([_series("E0", "2026-03-01", MARCH, 7.0), _series("X9", "2026-03-02", 1, 1.0)],
                                  ignore_index=True), "b.csv"), sender="dave")
    return root
