"""Identifier data model (workbench.identifiers.model): identifiers, Handle values/records,
typed carbon fields, suffix schemes and boundary mirroring."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from workbench.core.boundary import Boundary
from workbench.identifiers import (
    ADMIN_INDEX,
    DEFAULT_SCHEMES,
    HandleRecord,
    HandleValue,
    HandleValueError,
    IdentifierError,
    SuffixScheme,
    SuffixSchemeError,
    admin_value,
    carbon_value,
    decode_json_value,
    desc_value,
    parse_identifier,
    parse_permissions,
    permissions_string,
    records_from_boundary,
    ref_value,
    url_value,
)

TS = "2020-03-10T16:06:41Z"
PREFIX = "88.123.4567"
# the reference's example value object (identifiers-and-iot.md, "Handle.net JSON REST API")
REFERENCE_VALUE = ('{"index": 1, "type": "URL", "data": {"format": "string", "value": "…"}, "ttl": 86400,\n'
                   '"timestamp": "2020-03-10T16:06:41Z"}')
REFERENCE_ADMIN = '{"format":"admin","value":{"handle":"0.NA/88.123.4567","index":200,"permissions":"011111110011"}}'


def canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------- identifiers
@pytest.mark.parametrize("text, prefix, suffix", [
    ("88.123.4567/node.ENT", "88.123.4567", "node.ENT"),
    ("88.709.911/123", "88.709.911", "123"),
    ("88.101.0042/001", "88.101.0042", "001"),
    ("88.100.24/admin", "88.100.24", "admin"),
    ("88.123.4567/a/b", "88.123.4567", "a/b"),              # Handle: split at the first '/'
    ("88.123.4567/水泥.P·O42.5", "88.123.4567", "水泥.P·O42.5"),  # printable non-ASCII allowed
    ("0.NA/88.123.4567", "0.NA", "88.123.4567"),            # prefix admin handle
])
def test_valid_identifiers(text, prefix, suffix):
    i = parse_identifier(text)
    assert (i.prefix, i.suffix) == (prefix, suffix)
    assert str(i) == text


@pytest.mark.parametrize("text, problem", [
    ("", "empty"),
    ("88.123.4567", "missing '/'"),
    ("/abc", "empty prefix"),
    ("88.123.4567/", "empty suffix"),
    ("86.123.4567/x", "must start with '88'"),
    ("88.12a.4567/x", "not numeric"),
    ("88..4567/x", "empty segment"),
    ("88.123/x", "numeric segments"),
    ("88.12345678901.1/x", "more than 10 digits"),
    ("88.123.4567/a b", "whitespace"),
    ("88.123.4567/a\u3000b", "whitespace"),
    ("88.123.4567/a\x07b", "control"),
    ("88.123.4567/a\u200bb", "control"),
    ("88.123.4567/" + "x" * 256, "more than 255"),
    ("88.123.4567/" + "碳" * 86, "258 bytes"),
    (" 88.123.4567/x", "must start with '88'"),
    ("0.NA/node.ENT", "must start with '88'"),
])
def test_invalid_identifiers_name_text_and_problem(text, problem):
    with pytest.raises(IdentifierError) as exc:
        parse_identifier(text)
    msg = str(exc.value)
    assert problem in msg
    assert repr(text) in msg or text == ""


def test_suffix_length_limit_is_bytes():
    assert parse_identifier("88.123.4567/" + "x" * 255).suffix == "x" * 255
    assert parse_identifier("88.123.4567/" + "碳" * 85)      # 255 bytes
    with pytest.raises(IdentifierError):
        parse_identifier(123)


def test_key_is_ascii_case_insensitive_and_display_keeps_original():
    a = parse_identifier("88.123.4567/Meter.M0001")
    b = parse_identifier("88.123.4567/meter.m0001")
    assert a == b and hash(a) == hash(b)
    assert a.key == "88.123.4567/meter.m0001"
    assert str(a) == "88.123.4567/Meter.M0001"
    assert len({a, b}) == 1
    # only ASCII is folded
    assert parse_identifier("88.123.4567/Ä").key == "88.123.4567/Ä"
    assert parse_identifier("0.na/88.1.2") == parse_identifier("0.NA/88.1.2")
    assert parse_identifier("0.NA/88.1.2").is_admin
    assert parse_identifier(a) is a


# --------------------------------------------------------------------------- Handle values
def test_value_json_matches_reference_byte_for_byte():
    ref = json.loads(REFERENCE_VALUE)
    v = HandleValue(index=1, type="URL", data={"format": "string", "value": "…"}, timestamp=TS)
    assert canon(v.to_json()) == canon(ref)
    assert canon(HandleValue.from_json(ref).to_json()) == canon(ref)
    assert HandleValue.from_json(ref) == v


def test_plain_string_data_and_string_index_accepted():
    v = HandleValue.from_json({"index": "3", "type": "URL", "data": "http://example.org/x"})
    assert v.index == 3
    assert v.data == {"format": "string", "value": "http://example.org/x"}
    assert v.ttl == 86400
    assert v.timestamp.endswith("Z") and len(v.timestamp) == 20


def test_enterprise_node_auth_key_ignored_and_unknown_keys_rejected():
    v = HandleValue.from_json({"index": 1, "type": "URL", "data": {"format": "string", "value": "x"},
                               "auth": "…", "timestamp": TS})
    assert "auth" not in v.to_json()
    with pytest.raises(HandleValueError, match="unknown keys"):
        HandleValue.from_json({"index": 1, "type": "URL", "data": "x", "colour": "red"})


@pytest.mark.parametrize("kwargs, problem", [
    ({"index": 0}, "index 0"),
    ({"index": -1}, "index -1"),
    ({"index": True}, "not a positive integer"),
    ({"index": 1.5}, "not a positive integer"),
    ({"type": ""}, "type"),
    ({"type": "A B"}, "whitespace"),
    ({"data": {"format": "text", "value": "x"}}, "unknown data format"),
    ({"data": {"format": "string"}}, "data must be"),
    ({"data": {"format": "string", "value": 3}}, "must be text"),
    ({"data": {"format": "base64", "value": "@@@"}}, "invalid base64"),
    ({"data": {"format": "hex", "value": "abc"}}, "hex"),
    ({"data": {"format": "admin", "value": {"handle": "0.NA/88.1.2", "index": 200}}}, "admin data"),
    ({"data": {"format": "admin", "value": {"handle": "0.NA/88.1.2", "index": 200, "permissions": "01"}}},
     "12 characters"),
    ({"data": {"format": "vlist", "value": [{"handle": "bad", "index": 1}]}}, "vlist entry"),
    ({"ttl": -5}, "ttl"),
    ({"timestamp": "2020-03-10 16:06:41"}, "timestamp"),
    ({"timestamp": "2020-02-30T16:06:41Z"}, "not a real date"),
])
def test_invalid_values(kwargs, problem):
    base = {"index": 1, "type": "URL", "data": {"format": "string", "value": "x"}, "timestamp": TS}
    with pytest.raises(HandleValueError, match=problem):
        HandleValue(**{**base, **kwargs})


def test_other_formats_round_trip():
    for data in ({"format": "base64", "value": "aGVsbG8="}, {"format": "hex", "value": "0A1b"},
                 {"format": "key", "value": "AAAA"},
                 {"format": "vlist", "value": [{"handle": "88.100.24/admin", "index": 300}]},
                 {"format": "site", "value": {"version": 1, "servers": []}}):
        v = HandleValue(index=5, type="X", data=data, timestamp=TS)
        assert HandleValue.from_json(json.loads(json.dumps(v.to_json()))) == v


def test_non_default_permissions_and_references_serialised():
    v = HandleValue(index=300, type="HS_SECKEY", data={"format": "string", "value": "s"}, timestamp=TS,
                    pub_read=False, references=[{"handle": "88.1.2/x", "index": 1}])
    j = v.to_json()
    assert j["permissions"] == "1100" and j["references"] == [{"handle": "88.1.2/x", "index": 1}]
    assert HandleValue.from_json(j) == v


def test_hs_admin_shape_matches_reference():
    v = admin_value(PREFIX, timestamp=TS)
    assert v.index == ADMIN_INDEX == 100 and v.type == "HS_ADMIN"
    assert json.dumps(v.data, separators=(",", ":")) == REFERENCE_ADMIN
    # pyhandle sends the HS_ADMIN index as a string
    back = HandleValue.from_json({**v.to_json(), "index": "100"})
    assert back == v


def test_admin_permission_bits():
    p = parse_permissions("011111110011")
    assert p["add_handle"] and p["delete_handle"] and p["read_value"] and p["add_admin"]
    assert not p["add_derived_prefix"] and not p["list_handles"]
    assert permissions_string() == "011111110011"
    assert permissions_string(list_handles=True) == "111111110011"
    assert permissions_string(add_handle=False) == "011111110010"
    with pytest.raises(HandleValueError, match="unknown"):
        permissions_string(fly=True)


# --------------------------------------------------------------------------- records
def test_record_index_allocation_and_lookup():
    rec = HandleRecord("88.123.4567/node.ENT")
    a = rec.add(type="URL", data="http://a", timestamp=TS)
    b = rec.add(type="URL", data="http://b", timestamp=TS)
    assert (a.index, b.index) == (1, 2)
    rec.add(admin_value(PREFIX, timestamp=TS))
    assert rec.next_index() == 3
    assert rec.next_index(100) == 101         # 100 is HS_ADMIN's
    assert rec.next_index(200) == 201         # 200, 300 reserved by convention
    for i in range(3, 100):
        rec.add(type="DESC", data=str(i), timestamp=TS)
    assert rec.next_index() == 101
    assert [v.index for v in rec.by_type("URL")] == [1, 2]
    assert rec.first("HS_ADMIN").index == 100
    assert rec.get(2).value == "http://b" and rec.get(555) is None
    assert [v.index for v in rec.by_index(2, 1, 7777)] == [1, 2]
    with pytest.raises(HandleValueError, match="already exists"):
        rec.add(HandleValue(index=1, type="URL", data={"format": "string", "value": "c"}, timestamp=TS))
    moved = rec.allocate(HandleValue(index=1, type="URL", data={"format": "string", "value": "c"}, timestamp=TS))
    assert moved.index == 101


def test_record_replace_remove_and_json():
    rec = HandleRecord("88.123.4567/Node.ENT", [url_value("http://a", index=1, timestamp=TS)])
    rec.replace(url_value("http://z", index=1, timestamp=TS))
    assert rec.get(1).value == "http://z"
    with pytest.raises(HandleValueError, match="no value at index 9"):
        rec.replace(url_value("http://z", index=9, timestamp=TS))
    rec.add(admin_value(PREFIX, timestamp=TS))
    j = rec.to_json()
    assert j["handle"] == "88.123.4567/Node.ENT"           # echoed as spelled
    assert [v["index"] for v in j["values"]] == [1, 100]
    assert HandleRecord.from_json(json.loads(json.dumps(j))) == rec
    assert HandleRecord.from_json({"handle": j["handle"], "value": j["values"]}) == rec   # enterprise-node variant
    assert rec.remove(1).value == "http://z"
    with pytest.raises(HandleValueError, match="no value at index 1"):
        rec.remove(1)


# --------------------------------------------------------------------------- typed values
def test_typed_values():
    d = desc_value(kind="meter", name_zh="窑主电表", name_en="Kiln main meter", index=1, timestamp=TS)
    assert d.type == "DESC" and d.format == "string"
    assert decode_json_value(d) == {"kind": "meter", "name_zh": "窑主电表", "name_en": "Kiln main meter"}
    assert "窑主电表" in d.value                              # UTF-8, not \u-escaped
    r = ref_value("88.123.4567/node.F01", index=2, timestamp=TS)
    assert (r.type, r.value) == ("REF", "88.123.4567/node.F01")
    assert ref_value("88.123.4567/node.F01", rel="child").type == "REF.CHILD"
    with pytest.raises(HandleValueError, match="REF: identifier 'node.F01'"):
        ref_value("node.F01")
    with pytest.raises(HandleValueError, match="absolute URL"):
        url_value("not a url")


def test_carbon_values():
    f = carbon_value("CARBON.FOOTPRINT", value=12.5, period="2025", standard="GB/T 32150-2015", timestamp=TS)
    assert decode_json_value(f) == {"value": 12.5, "unit": "tCO2e", "period": "2025", "standard": "GB/T 32150-2015"}
    assert f.value == '{"period":"2025","standard":"GB/T 32150-2015","unit":"tCO2e","value":12.5}'
    g = carbon_value("CARBON.GRADE", grade="A", period="2025-Q1", scheme="demo-grading-v1")
    assert decode_json_value(g)["grade"] == "A"
    e = carbon_value("CARBON.EFFICIENCY", value=1.8, period="2025-01/2025-12")
    assert decode_json_value(e)["unit"] == "tCO2e/万元"
    with pytest.raises(HandleValueError, match="missing fields \\['standard'\\]"):
        carbon_value("CARBON.FOOTPRINT", value=1, period="2025")
    with pytest.raises(HandleValueError, match="period '2025-13'"):
        carbon_value("CARBON.EFFICIENCY", value=1, period="2025-13")
    with pytest.raises(HandleValueError, match="must not be negative"):
        carbon_value("CARBON.EFFICIENCY", value=-1, period="2025")
    with pytest.raises(HandleValueError, match="finite"):
        carbon_value("CARBON.FOOTPRINT", value=float("nan"), period="2025", standard="x")
    with pytest.raises(HandleValueError, match="unit 'kgCO2e'"):
        carbon_value("CARBON.FOOTPRINT", value=1, period="2025", standard="x", unit="kgCO2e")
    with pytest.raises(HandleValueError, match="must be one of"):
        carbon_value("CARBON.COLOUR", value=1, period="2025")


# --------------------------------------------------------------------------- suffix schemes
def test_suffix_scheme_round_trips():
    p = DEFAULT_SCHEMES["product"]
    fields = {"class": "CEM", "model": "PO42.5", "date": dt.date(2025, 3, 1), "serial": 42}
    s = p.make(fields)
    assert s == "CEM.PO42.5.20250301.000042"
    assert p.parse(s) == fields
    assert DEFAULT_SCHEMES["meter"].make(meter_id="M0001") == "meter.M0001"
    assert DEFAULT_SCHEMES["process"].parse("node.F01.W01.P01") == {"node_id": "F01.W01.P01"}
    for kind, values in {
        "batch": {"product": "PO42.5R", "date": dt.date(2025, 1, 2), "seq": 7},
        "report": {"report_kind": "inventory", "period": "2025-03", "version": 2},
        "label": {"label_kind": "enterprise", "period": "2025", "subject": "node.F01.W01"},
        "enterprise": {"node_id": "ENT"},
    }.items():
        sch = DEFAULT_SCHEMES[kind]
        assert sch.parse(sch.make(values)) == values
        parse_identifier(f"{PREFIX}/{sch.make(values)}")
    assert set(DEFAULT_SCHEMES) >= {"enterprise", "facility", "workshop", "process", "meter",
                                    "product", "batch", "report", "label"}


def test_suffix_scheme_errors():
    p = DEFAULT_SCHEMES["product"]
    with pytest.raises(SuffixSchemeError, match="ambiguous"):
        p.make({"class": "C.X", "model": "M", "date": dt.date(2025, 1, 1), "serial": 1})
    with pytest.raises(SuffixSchemeError, match="missing fields \\['serial'\\]"):
        p.make({"class": "C", "model": "M", "date": dt.date(2025, 1, 1)})
    with pytest.raises(SuffixSchemeError, match="needs a date"):
        p.make({"class": "C", "model": "M", "date": "2025-01-01", "serial": 1})
    with pytest.raises(SuffixSchemeError, match="non-negative integer"):
        p.make({"class": "C", "model": "M", "date": dt.date(2025, 1, 1), "serial": -1})
    with pytest.raises(SuffixSchemeError, match="whitespace"):
        DEFAULT_SCHEMES["meter"].make(meter_id="M 1")
    with pytest.raises(SuffixSchemeError, match="does not fit"):
        p.parse("CEM.PO42.5.2025-03-01.000042")
    with pytest.raises(SuffixSchemeError, match="not a date"):
        p.parse("CEM.PO42.5.20251399.000042")
    with pytest.raises(SuffixSchemeError, match="not supported"):
        SuffixScheme("x", "x.{a:>5}")
    custom = SuffixScheme("device", "dev-{line}-{ts:%Y%m%d%H%M}")
    values = {"line": "L2", "ts": dt.datetime(2025, 5, 6, 7, 8)}
    assert custom.parse(custom.make(values)) == values


# --------------------------------------------------------------------------- boundary mirroring
NODES = [
    # node_id, parent_id, level, name_zh, name_en, classification, identifier
    ("ENT", "", "enterprise", "示例水泥公司", "Demo Cement", "", "88.123.4567/node.ENT"),
    ("F01", "ENT", "facility", "熟料线", "Clinker line", "main_production", ""),
    ("F01.W01", "F01", "workshop", "窑系统", "Kiln", "", ""),
    ("F01.W01.P01", "F01.W01", "process", "回转窑", "Rotary kiln", "", ""),
    ("M0001", "F01.W01.P01", "meter", "窑主电表", "Kiln meter", "", "88.123.4567/meter.M0001"),
    ("M0002", "F01.W01.P01", "meter", "窑副电表", "Kiln sub-meter", "", ""),
    ("F02", "ENT", "facility", "办公区", "Offices", "non_production", ""),
]


def boundary(nodes=NODES) -> Boundary:
    return Boundary(pd.DataFrame(nodes, columns=["node_id", "parent_id", "level", "name_zh", "name_en",
                                                 "classification", "identifier"]))


def test_records_from_boundary():
    b = boundary()
    recs = records_from_boundary(b, PREFIX, timestamp=TS, url_template="https://wb.example/n/{node_id}")
    assert len(recs) == len(NODES)
    by_node = {decode_json_value(r.first("DESC"))["node_id"]: r for r in recs}
    assert set(by_node) == {n[0] for n in NODES}                     # every node has a record
    keys = [r.identifier.key for r in recs]
    assert len(set(keys)) == len(keys)                               # identifiers unique
    assert str(by_node["ENT"].identifier) == "88.123.4567/node.ENT"  # identifier column used
    assert str(by_node["M0002"].identifier) == "88.123.4567/meter.M0002"   # meter scheme
    assert str(by_node["F01.W01"].identifier) == "88.123.4567/node.F01.W01"
    # following REF parents from any node reaches the enterprise
    by_key = {r.identifier.key: r for r in recs}
    ent = by_node["ENT"].identifier
    for r in recs:
        cur, steps = r, 0
        while cur.first("REF") is not None:
            cur = by_key[parse_identifier(cur.first("REF").value).key]
            steps += 1
            assert steps < 10
        assert cur.identifier == ent
    assert by_node["ENT"].first("REF") is None
    # children mirror the parents
    assert [v.value for v in by_node["F01.W01.P01"].by_type("REF.CHILD")] == [
        "88.123.4567/meter.M0001", "88.123.4567/meter.M0002"]
    desc = decode_json_value(by_node["M0001"].first("DESC"))
    assert desc["kind"] == "meter" and desc["name_zh"] == "窑主电表"
    assert desc["classification"] == "" and desc["classification_effective"] == "main_production"
    assert desc["classification_zh"] == "主要生产"
    assert by_node["M0001"].first("URL").value == "https://wb.example/n/M0001"
    assert by_node["M0001"].get(100).type == "HS_ADMIN"
    # records serialise and read back
    for r in recs:
        assert HandleRecord.from_json(json.loads(json.dumps(r.to_json(), ensure_ascii=False))) == r


def test_records_from_boundary_rejects_bad_identifiers():
    dup = [list(n) for n in NODES]
    dup[1][6] = "88.123.4567/NODE.ent"                      # same key as ENT's
    with pytest.raises(IdentifierError, match="given to both 'ENT' and 'F01'"):
        records_from_boundary(boundary(dup), PREFIX)
    other = [list(n) for n in NODES]
    other[1][6] = "88.999.1/node.F01"
    with pytest.raises(IdentifierError, match="not under prefix"):
        records_from_boundary(boundary(other), PREFIX)
    with pytest.raises(IdentifierError, match="must start with '88'"):
        records_from_boundary(boundary(), "20.500")
    plain = records_from_boundary(boundary(), PREFIX, children=False, admin=False, timestamp=TS)
    assert all(not r.by_type("REF.CHILD") and 100 not in r for r in plain)


def test_records_from_demo_boundary(demo_data):
    b = Boundary.read_csv(demo_data / "boundary.csv")
    recs = records_from_boundary(b, PREFIX, timestamp=TS)
    assert len(recs) == len(b.nodes)
    assert [str(r.identifier) for r in recs] == b.nodes["identifier"].tolist()
