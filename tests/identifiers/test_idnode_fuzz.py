"""Fuzzing the identifier node (issue 10, point 6).

* hypothesis properties of the identifier syntax (``parse_identifier`` / ``Identifier``): arbitrary
  text — surrogates and control characters included — parses or raises IdentifierError, nothing
  else; what parses round-trips; keys are ASCII-case-insensitive and nothing more.
* schemathesis against a RUNNING node (uvicorn on a free port, :class:`LocalNode`) from the OpenAPI
  document it serves: every operation, positive and negative examples, anonymously and as the
  prefix administrator (so write handlers are reached), checked for server errors, undocumented
  status codes, content types, headers and response schemas.  Examples are bounded
  (``FUZZ_EXAMPLES`` per operation) to keep the run under a minute on two cores.
"""
from __future__ import annotations

import base64
import string

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from workbench.identifiers.model import Identifier, IdentifierError, parse_identifier

PREFIX = "88.100.24"
FUZZ_EXAMPLES = 25

# --------------------------------------------------------------------------- identifier syntax

ANY_TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=300)
PREFIXES = st.builds(lambda segs: ".".join(["88", *segs]),
                     st.lists(st.text("0123456789", min_size=1, max_size=10), min_size=2, max_size=5))
# printable, no whitespace: letters/digits/punctuation of any script, the suffix alphabet
SUFFIX_CHARS = st.characters(categories=("L", "M", "N", "P", "S"), exclude_characters=" ")
SUFFIXES = st.text(SUFFIX_CHARS, min_size=1, max_size=60)


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
def test_arbitrary_text_parses_or_raises_identifier_error(text):
    """Lone surrogates, NUL, other controls, huge or empty input: only IdentifierError."""
    try:
        ident = parse_identifier(text)
    except IdentifierError:
        return
    assert str(ident) == text                        # accepted: it is exactly what was given


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text(max_size=3), max_size=3)))
def test_non_text_raises_identifier_error(thing):
    with pytest.raises(IdentifierError):
        parse_identifier(thing)


@settings(max_examples=300, deadline=None)
@given(PREFIXES, SUFFIXES)
def test_valid_identifiers_round_trip(prefix, suffix):
    text = f"{prefix}/{suffix}"
    if len(prefix) > 64 or len(suffix.encode("utf-8")) > 255:
        with pytest.raises(IdentifierError):
            parse_identifier(text)
        return
    ident = parse_identifier(text)
    assert (ident.prefix, ident.suffix, str(ident)) == (prefix, suffix, text)
    assert parse_identifier(str(ident)) == ident and parse_identifier(ident) is ident
    assert Identifier.parse(text) == ident and hash(Identifier.parse(text)) == hash(ident)


def _swap_ascii_case(text: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if c in string.ascii_letters and f else c for c, f in zip(text, flips))


@settings(max_examples=300, deadline=None)
@given(PREFIXES, SUFFIXES, st.lists(st.booleans(), min_size=300, max_size=300))
def test_keys_ignore_ascii_case_only(prefix, suffix, flips):
    text = f"{prefix}/{suffix}"
    try:
        ident = parse_identifier(text)
    except IdentifierError:
        return
    other = parse_identifier(_swap_ascii_case(text, flips))
    assert other == ident and other.key == ident.key and hash(other) == hash(ident)
    # the key lower-cases ASCII letters and touches nothing else (Handle: ASCII-case-insensitive)
    assert ident.key == "".join(c.lower() if c in string.ascii_letters else c for c in text)
    non_ascii_changed = suffix.swapcase()
    if any(not c.isascii() and c != s for c, s in zip(suffix, non_ascii_changed)):
        try:
            changed = parse_identifier(f"{prefix}/{non_ascii_changed}")
        except IdentifierError:
            return
        assert changed != ident                      # e.g. 'Ä' and 'ä' are different handles


@settings(max_examples=200, deadline=None)
@given(PREFIXES, st.text(st.characters(codec=None), min_size=1, max_size=20), st.integers(0, 20))
def test_suffix_with_a_control_surrogate_or_space_is_refused(prefix, junk, at):
    bad = [c for c in junk if c.isspace() or not c.isprintable() or 0xD800 <= ord(c) <= 0xDFFF]
    if not bad:
        return
    suffix = "ok" + bad[0] + "x" * at
    with pytest.raises(IdentifierError):
        parse_identifier(f"{prefix}/{suffix}")


# JSON-like data of every kind, texts with surrogates and controls, integers beyond 64 bits
JSON_DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | ANY_TEXT.map(lambda t: t[:40]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT.map(lambda t: t[:10]), inner, max_size=4),
    max_leaves=12)
VALUE_LIKE = st.fixed_dictionaries(
    {"index": st.one_of(st.integers(-5, 2**40), st.text("0123456789²١ ", max_size=12), JSON_DATA),
     "type": st.one_of(st.sampled_from(["URL", "DESC", "HS_ADMIN", "HS_SITE", "HS_VLIST"]), ANY_TEXT, JSON_DATA),
     "data": st.one_of(ANY_TEXT, JSON_DATA, st.fixed_dictionaries(
         {"format": st.sampled_from(["string", "base64", "hex", "admin", "vlist", "site", "key", "x"]),
          "value": JSON_DATA}))},
    optional={"ttl": st.one_of(st.integers(-1, 2**64), ANY_TEXT, JSON_DATA),
              "timestamp": st.one_of(st.just("2020-03-10T16:06:41Z"), ANY_TEXT, JSON_DATA),
              "permissions": st.one_of(st.just("1100"), ANY_TEXT),
              "references": JSON_DATA, "auth": JSON_DATA, "extra": JSON_DATA})


@settings(max_examples=200, deadline=None)
@given(st.one_of(VALUE_LIKE, JSON_DATA))
def test_any_json_value_is_a_valid_value_or_a_handle_value_error(obj):
    """A value object from the wire (types, sizes, surrogates, NUL, NaN, 2**70 …): HandleValue or
    HandleValueError, nothing else — and a valid one can be stored as UTF-8 JSON."""
    import json

    from workbench.identifiers.model import HandleValue, HandleValueError

    try:
        v = HandleValue.from_json(obj)
    except HandleValueError:
        return
    json.dumps(v.to_json(), ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert 1 <= v.index <= 2**31 - 1 and 0 <= v.ttl <= 2**31 - 1


@settings(max_examples=100, deadline=None)
@given(st.one_of(JSON_DATA, st.fixed_dictionaries({"handle": st.one_of(ANY_TEXT, PREFIXES.map(lambda p: p + "/x"),
                                                                        JSON_DATA)},
                                                   optional={"values": st.lists(VALUE_LIKE, max_size=3),
                                                             "value": JSON_DATA})))
def test_any_json_record_is_a_record_or_a_value_error(obj):
    from workbench.identifiers.model import HandleRecord, HandleValueError

    try:
        HandleRecord.from_json(obj)
    except (HandleValueError, IdentifierError):
        pass


# --------------------------------------------------------------------------- the running node


@pytest.fixture(scope="module")
def fuzz_node():
    """A real node (uvicorn, SQLite) with a few records; the failed-login limiter off so negative
    examples with odd credentials cannot lock the authenticated run out."""
    from workbench.identifiers import LocalNode
    from workbench.identifiers.model import HandleRecord, admin_value, url_value

    with LocalNode(PREFIX, scrypt_n=2**10, app_kwargs={"login_burst": 0, "login_tarpit": 0}) as node:
        for i in range(3):
            node.store.put(HandleRecord(f"{PREFIX}/dev.{i}", [url_value(f"https://example.com/{i}", index=1),
                                                              admin_value(PREFIX)]))
        yield node


def _document() -> dict:
    """The OpenAPI document the node serves (``test_fuzzed_document_is_the_served_one`` checks
    that it is exactly what ``/openapi.json`` of the running node returns).  Built here because
    schemathesis parametrizes at collection time, before any node runs; the requests go to the
    running node (``base_url``)."""
    from workbench.identifiers.server import openapi_document

    return openapi_document(PREFIX, title="Enterprise identifier node",
                            description=_served_description(), forwarding=False)


def _served_description() -> str:
    from workbench.identifiers import server

    return server.__doc__.split("\n\n")[0]


schema = schemathesis.openapi.from_dict(_document())


def test_fuzzed_document_is_the_served_one(fuzz_node):
    import httpx

    served = httpx.get(fuzz_node.url + "/openapi.json").json()
    assert served == _document()


def _admin_header(node) -> dict:
    token = base64.b64encode(f"{node.admin.replace(':', '%3A', 1)}:{node.admin_password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _touches_admin(case) -> bool:
    """Writes to the administrator's own handle would lock the rest of the run out (by design)."""
    suffix = str((case.path_parameters or {}).get("suffix", ""))
    return case.method.upper() in ("PUT", "DELETE", "POST") and suffix.lower().startswith("admin")


# Not checked: "positive data acceptance" (schema-valid → never 400).  Much of what makes a Handle
# value valid cannot be said in JSON Schema (the data's shape per format, the Unicode categories a
# suffix may use, an HS_ADMIN's handle), so a schema-valid request can still be invalid, answered
# 400 rc 102/202 as documented.  The converse, that schema-INVALID requests are refused ("negative
# data rejection"), is checked with everything else.
EXCLUDED = [positive_data_acceptance]

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


@schema.parametrize()
@FUZZ
def test_fuzz_anonymous(case, fuzz_node):
    case.call_and_validate(base_url=fuzz_node.url, excluded_checks=EXCLUDED)


@schema.parametrize()
@FUZZ
def test_fuzz_as_prefix_admin(case, fuzz_node):
    if _touches_admin(case):
        return
    headers = dict(case.headers or {})
    headers.update(_admin_header(fuzz_node))
    case.call_and_validate(base_url=fuzz_node.url, headers=headers, excluded_checks=EXCLUDED)


def test_fuzzing_reached_the_write_handlers(fuzz_node):
    """Runs after the fuzz tests above (same module, same node): the authenticated run wrote
    records — created, replaced or deleted them — so the write handlers were exercised, not only
    refused at the door; and every refusal it provoked is in the security log."""
    rows = [r for r in fuzz_node.store.audit_rows() if r["who"] == fuzz_node.admin]
    whats = {r["what"] for r in rows}
    assert {"create"} <= whats and whats & {"replace", "modify", "delete", "remove_values"}, whats
    fuzz_node.app.refusal_log.flush()
    refused = fuzz_node.store.refusals(limit=100_000)
    assert refused and {r["status"] for r in refused} <= {400, 401, 403, 404, 405, 415, 429}
    assert all(r["rc"] == 4 for r in refused if r["status"] == 404)        # only "no such route" 404s
