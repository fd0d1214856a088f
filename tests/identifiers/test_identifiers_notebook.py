"""notebooks/identifiers.ipynb through papermill: registers the demo boundary on a LocalNode and shows
resolved records as HTML tables."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from notebook_run import execute_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "identifiers.ipynb"
PREFIX = "88.123.4567"


def test_identifiers_notebook_is_parameterised_and_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "prefix" in params[0].source and "db = None" in params[0].source
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_identifiers_notebook_through_papermill(tmp_path, demo_data):

    from workbench.identifiers.store import HandleStore

    out = tmp_path / "identifiers.ipynb"
    db = f"sqlite:///{tmp_path / 'idnode.db'}"
    execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        parameters={"boundary_csv": str(demo_data / "boundary.csv"), "db": db,
                                    "facility": "F01", "meter": "M0002"})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    plain = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)

    def table_of(handle):
        found = [h for h in html if f"<code>{handle}</code>" in h and "wb-handle-record" in h]
        assert found, f"no HTML table of {handle}"
        return found[0]

    facility = table_of(f"{PREFIX}/node.F01")
    for needle in ("索引 index", "类型 type", "值 value", "时间戳 timestamp", "公开 public",
                   "<b>kind</b>: facility", "<b>name_zh</b>: 熟料生产线", "<code>88.123.4567/node.ENT</code>",
                   'href="https://carbon.example.com/nodes/F01"'):
        assert needle in facility
    assert '{"' not in facility                                       # DESC decoded, not raw JSON
    meter = table_of(f"{PREFIX}/meter.M0002")
    assert "<b>kind</b>: meter" in meter and "<code>88.123.4567/node.F01.W01.P01</code>" in meter
    table_of(f"{PREFIX}/node.ENT")                                     # top of the parent chain
    # the chain, the batch counts and the reverse look-ups
    assert f"{PREFIX}/meter.M0002  [meter]" in text and f"{PREFIX}/node.ENT  [enterprise]" in text
    assert "URL https://carbon.example.com/nodes/F01 → ['88.123.4567/node.F01']" in text
    assert "'new': " in plain and "'88.123.4567/node.F01.W01'" in plain
    # registered into the store given as a parameter
    total, _ = HandleStore(db).list(PREFIX)
    n = len((demo_data / "boundary.csv").read_text(encoding="utf-8").strip().splitlines()) - 1
    assert total == n + 1                                              # boundary nodes + the admin handle
