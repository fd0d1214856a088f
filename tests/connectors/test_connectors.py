from connectors import Connector, ConnectorResult, activity_file
from workbench.inventory.quickcalc import template_path


def test_activity_file_connector_returns_data_and_provenance():
    res = activity_file.read(template_path("example"))
    assert isinstance(res, ConnectorResult)
    assert len(res.data) == 8 and res.metadata["records"] == 8
    assert len(res.metadata["sha256"]) == 64 and res.metadata["connector"] == "activity_file"
    assert {"source", "item", "quantity", "unit", "row", "origin"} <= set(res.data.columns)


def test_connector_protocol():
    class Dummy:
        name = "dummy"

        def read(self, source, **options):
            return ConnectorResult(None, {})

    assert isinstance(Dummy(), Connector)
