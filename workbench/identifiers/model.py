"""Identifier data model (seed §4.3, §5.3, §9.4, §9.5, §10.2.2): identifiers, Handle values and records.

The enterprise node of the industrial-internet identification and resolution system
(工业互联网标识解析企业节点, seed §10.2.2) registers, resolves and manages identifiers for the
objects inside the management entity's boundary — facilities, meters, products (seed §9.5, §9.4 b).
This module is the data model only; no transport, no storage.

Identifiers are Handle-style ``prefix/suffix`` (reference: identifiers-and-iot.md):

* **prefix** — ``88`` (China) ``.`` secondary-node/industry code ``.`` enterprise code, all numeric
  segments, e.g. ``88.123.4567``, ``88.709.911``.  The prefix's own administrative handle lives
  under ``0.NA`` (``0.NA/88.123.4567``), which HS_ADMIN values point to; ``0.NA/<prefix>`` is
  therefore also accepted.
* **suffix** — anything printable, chosen by the enterprise (see :class:`SuffixScheme`).

Records use the Handle.net JSON REST value shape::

    {"index": 1, "type": "URL", "data": {"format": "string", "value": "…"},
     "ttl": 86400, "timestamp": "2020-03-10T16:06:41Z"}

Limits chosen here (Handle itself sets none below the protocol's 2**31 bytes; these keep
identifiers fit for labels, QR codes and URL paths):

=================  ==========================================================
prefix             ≤ 64 characters, ``88`` + 2..8 numeric segments of 1..10 digits
suffix             1..255 bytes UTF-8, printable, no whitespace, no control chars
value index        1 .. 2**31-1
value ttl          0 .. 2**31-1 seconds (the Handle protocol's signed 32-bit ttl, non-negative)
value type         1..128 characters, printable, no whitespace
string value data  ≤ 65,535 bytes UTF-8
=================  ==========================================================

All text must be valid Unicode that UTF-8 can carry: a lone surrogate (``"\\ud800"`` in JSON) or a
NUL character in any value text (type, data, nested site data) is a :class:`HandleValueError`, and
in an identifier an :class:`IdentifierError` — never an exception further down (the store's SQL
driver, the JSON encoder).
"""
from __future__ import annotations

import base64
import binascii
import builtins
import datetime as _dt
import html as _html
import json
import math
import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.core.errors import WorkbenchError

__all__ = [
    "ADMIN_INDEX",
    "ADMIN_PERMISSION_BITS",
    "CARBON_TYPES",
    "DEFAULT_ADMIN_PERMISSIONS",
    "DEFAULT_SCHEMES",
    "DEFAULT_TTL",
    "FORMATS",
    "RESERVED_INDICES",
    "VALUE_TYPES",
    "HandleRecord",
    "HandleValue",
    "HandleValueError",
    "Identifier",
    "IdentifierError",
    "SuffixScheme",
    "SuffixSchemeError",
    "admin_value",
    "carbon_value",
    "decode_json_value",
    "desc_value",
    "meter_identifiers",
    "node_identifiers",
    "parse_identifier",
    "parse_permissions",
    "permissions_string",
    "records_from_boundary",
    "records_from_master_data",
    "ref_value",
    "url_value",
    "utc_timestamp",
    "validate_suffix",
]

# --------------------------------------------------------------------------- errors


class IdentifierError(WorkbenchError, ValueError):
    """An identifier (or one of its parts) is malformed; the message names the text and the problem."""


class HandleValueError(WorkbenchError, ValueError):
    """A Handle value or record is malformed (reference: responseCode 202 'invalid value')."""


class SuffixSchemeError(WorkbenchError, ValueError):
    """A suffix does not fit its scheme, or fields cannot make a suffix that parses back."""


# --------------------------------------------------------------------------- identifiers

PREFIX_MAX_CHARS = 64
PREFIX_MIN_SEGMENTS = 2          # after '88': secondary-node/industry code, enterprise code
PREFIX_MAX_SEGMENTS = 8
PREFIX_SEGMENT_MAX_DIGITS = 10
SUFFIX_MAX_BYTES = 255
ADMIN_NA = "0.NA"                # the naming authority under which prefix handles live

_SEGMENT = re.compile(r"[0-9]+")


def _ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only (Handle: handles are case-insensitive in the ASCII range)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _check_prefix(prefix: str, text: str) -> None:
    """Validate a China industrial-internet prefix ``88.<secondary>.<enterprise>[.…]``."""
    if not prefix:
        raise IdentifierError(f"identifier {text!r}: empty prefix")
    if len(prefix) > PREFIX_MAX_CHARS:
        raise IdentifierError(f"identifier {text!r}: prefix longer than {PREFIX_MAX_CHARS} characters")
    segments = prefix.split(".")
    if segments[0] != "88":
        raise IdentifierError(f"identifier {text!r}: prefix {prefix!r} must start with '88' "
                              "(China's industrial-internet root), e.g. '88.123.4567'")
    rest = segments[1:]
    for seg in rest:
        if not seg:
            raise IdentifierError(f"identifier {text!r}: prefix {prefix!r} has an empty segment")
        if not _SEGMENT.fullmatch(seg):
            raise IdentifierError(f"identifier {text!r}: prefix segment {seg!r} is not numeric")
        if len(seg) > PREFIX_SEGMENT_MAX_DIGITS:
            raise IdentifierError(f"identifier {text!r}: prefix segment {seg!r} has more than "
                                  f"{PREFIX_SEGMENT_MAX_DIGITS} digits")
    if not PREFIX_MIN_SEGMENTS <= len(rest) <= PREFIX_MAX_SEGMENTS:
        raise IdentifierError(f"identifier {text!r}: prefix {prefix!r} needs '88' plus "
                              f"{PREFIX_MIN_SEGMENTS}..{PREFIX_MAX_SEGMENTS} numeric segments "
                              "(secondary-node code, enterprise code, …)")


def validate_suffix(suffix: str, text: str | None = None) -> str:
    """Check a suffix: non-empty, ≤ 255 bytes UTF-8, printable, no whitespace or control characters.

    Non-ASCII printable characters (e.g. Chinese) are allowed; ``/`` after the first one is part
    of the suffix (Handle semantics) — transports must percent-encode as needed.
    """
    where = f"identifier {text!r}" if text is not None else f"suffix {suffix!r}"
    if not isinstance(suffix, str):
        raise IdentifierError(f"{where}: suffix must be text, not {type(suffix).__name__}")
    if not suffix:
        raise IdentifierError(f"{where}: empty suffix")
    n = len(suffix.encode("utf-8", "surrogatepass"))
    if n > SUFFIX_MAX_BYTES:
        raise IdentifierError(f"{where}: suffix is {n} bytes UTF-8, more than {SUFFIX_MAX_BYTES}")
    for i, ch in enumerate(suffix):
        if ch.isspace():
            raise IdentifierError(f"{where}: suffix contains whitespace {ch!r} at position {i}")
        if unicodedata.category(ch).startswith("C"):
            raise IdentifierError(f"{where}: suffix contains a control/unprintable character "
                                  f"U+{ord(ch):04X} at position {i}")
    return suffix


@dataclass(frozen=True, eq=False)
class Identifier:
    """An industrial-internet identifier ``prefix/suffix`` (seed §3.2, §10.2.2 c).

    ``str(identifier)`` is the original spelling (for display and for echoing a request);
    :attr:`key` is the normalised form used for storage and look-up — Handle treats handles as
    case-insensitive in the ASCII range, so ASCII letters are lower-cased and nothing else is
    touched.  Equality and hashing use :attr:`key`.
    """

    prefix: str
    suffix: str

    def __post_init__(self):
        text = f"{self.prefix}/{self.suffix}"
        if _ascii_lower(self.prefix) == _ascii_lower(ADMIN_NA):
            # 0.NA/<prefix>: the prefix's administrative handle; the suffix must itself be a prefix
            _check_prefix(self.suffix, text)
        else:
            _check_prefix(self.prefix, text)
            validate_suffix(self.suffix, text)

    @property
    def key(self) -> str:
        """Normalised ``prefix/suffix`` for storage and look-up (ASCII lower-cased)."""
        return _ascii_lower(f"{self.prefix}/{self.suffix}")

    @property
    def is_admin(self) -> bool:
        """True for a ``0.NA/<prefix>`` prefix handle."""
        return _ascii_lower(self.prefix) == _ascii_lower(ADMIN_NA)

    def __str__(self) -> str:
        return f"{self.prefix}/{self.suffix}"

    def __eq__(self, other) -> bool:
        if isinstance(other, Identifier):
            return self.key == other.key
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.key)

    @classmethod
    def parse(cls, text: str) -> Identifier:
        return parse_identifier(text)


def parse_identifier(text: str | Identifier) -> Identifier:
    """Parse ``prefix/suffix`` into an :class:`Identifier`; raises :class:`IdentifierError`.

    The text is split at the first ``/``.  Accepted prefixes: ``88.<secondary>.<enterprise>[.…]``
    (numeric segments) and ``0.NA`` (only with a prefix as suffix: ``0.NA/88.123.4567``).
    Leading/trailing whitespace is an error, not silently stripped.
    """
    if isinstance(text, Identifier):
        return text
    if not isinstance(text, str):
        raise IdentifierError(f"identifier {text!r}: must be text, not {type(text).__name__}")
    if not text:
        raise IdentifierError("identifier '': empty")
    if "/" not in text:
        raise IdentifierError(f"identifier {text!r}: missing '/' between prefix and suffix")
    prefix, suffix = text.split("/", 1)
    if not prefix:
        raise IdentifierError(f"identifier {text!r}: empty prefix")
    if not suffix:
        raise IdentifierError(f"identifier {text!r}: empty suffix")
    return Identifier(prefix, suffix)


# --------------------------------------------------------------------------- Handle values

FORMATS = ("string", "base64", "hex", "admin", "vlist", "site", "key")
DEFAULT_TTL = 86400
ADMIN_INDEX = 100                       # HS_ADMIN's conventional index (reference)
RESERVED_INDICES = frozenset({100, 200, 300})   # HS_ADMIN, admin group/HS_VLIST, HS_SECKEY/HS_PUBKEY
MAX_INDEX = 2**31 - 1
MAX_TTL = 2**31 - 1                     # Handle's ttl is a signed 32-bit integer
TYPE_MAX_CHARS = 128
STRING_MAX_BYTES = 65535
# ASCII digits only: \d would also match e.g. Arabic-Indic digits, which strptime accepts
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")
# a non-negative integer written in ASCII digits (str.isdigit() also accepts '²', which int() refuses)
_ASCII_INT = re.compile(r"[0-9]{1,10}")

# HS_ADMIN permission bits (Handle AdminRecord numbering).  The JSON permission string writes
# bit 11 first and bit 0 last, so the reference's "011111110011" grants add/delete handle,
# value and admin operations, but neither derived-prefix operations nor listing.
ADMIN_PERMISSION_BITS = ("add_handle", "delete_handle", "add_derived_prefix", "delete_derived_prefix",
                         "modify_value", "remove_value", "add_value", "read_value",
                         "modify_admin", "remove_admin", "add_admin", "list_handles")
DEFAULT_ADMIN_PERMISSIONS = "011111110011"


def utc_timestamp(when: _dt.datetime | None = None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC (now when ``when`` is None; naive datetimes are taken as UTC)."""
    when = when or _dt.datetime.now(_dt.UTC)
    if when.tzinfo is not None:
        when = when.astimezone(_dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def permissions_string(**flags: bool) -> str:
    """HS_ADMIN permission string from named flags (unnamed bits default to the reference default)."""
    current = parse_permissions(DEFAULT_ADMIN_PERMISSIONS)
    unknown = sorted(set(flags) - set(ADMIN_PERMISSION_BITS))
    if unknown:
        raise HandleValueError(f"unknown HS_ADMIN permissions {unknown}; known: {list(ADMIN_PERMISSION_BITS)}")
    current.update({k: bool(v) for k, v in flags.items()})
    return "".join("1" if current[name] else "0" for name in reversed(ADMIN_PERMISSION_BITS))


def parse_permissions(bits: str) -> dict[str, bool]:
    """Named flags of an HS_ADMIN permission string (12 characters of 0/1, bit 11 first)."""
    if not isinstance(bits, str) or len(bits) != 12 or set(bits) - {"0", "1"}:
        raise HandleValueError(f"HS_ADMIN permissions {bits!r}: need 12 characters of '0'/'1'")
    return {name: bits[11 - i] == "1" for i, name in enumerate(ADMIN_PERMISSION_BITS)}


def _check_text(text: str, where: str) -> str:
    """``text`` if UTF-8 can encode it and it has no NUL; else :class:`HandleValueError`.

    Python strings may hold lone surrogates (JSON ``"\\ud800"`` decodes to one); neither they nor
    NUL (refused by PostgreSQL text) can be stored, so they are invalid input, said so here.
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HandleValueError(f"{where}: text is not valid Unicode (lone surrogate "
                                   f"U+{ord(text[exc.start]):04X} at position {exc.start})") from None
    if "\x00" in text:
        raise HandleValueError(f"{where}: text contains a NUL character at position {text.index(chr(0))}")
    return text


def _check_json_text(value: Any, where: str) -> None:
    """:func:`_check_text` on every string (keys too) of a JSON structure, iteratively."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            _check_text(v, where)
        elif isinstance(v, Mapping):
            for k, x in v.items():
                if isinstance(k, str):
                    _check_text(k, where)
                stack.append(x)
        elif isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, float) and not math.isfinite(v):
            raise HandleValueError(f"{where}: number {v} is not finite (JSON has no NaN or infinity)")


def _int_text(value: Any) -> Any:
    """``int`` of a string of 1..10 ASCII digits, else ``value`` unchanged (and refused later)."""
    if isinstance(value, str) and _ASCII_INT.fullmatch(value):
        return int(value)
    return value


def _check_index(index: Any, where: str = "value") -> int:
    # pyhandle sends indices as strings ("100"); bool is not an index
    index = _int_text(index)
    if isinstance(index, bool) or not isinstance(index, int):
        raise HandleValueError(f"{where}: index {index!r} is not a positive integer")
    if not 1 <= index <= MAX_INDEX:
        raise HandleValueError(f"{where}: index {index} is outside 1..{MAX_INDEX}")
    return index


def _check_data(fmt: str, value: Any, where: str) -> Any:
    """Validate the ``value`` of a ``data`` object for its ``format``; return it (copied if mutable)."""
    if fmt not in FORMATS:
        raise HandleValueError(f"{where}: unknown data format {fmt!r}; formats are {list(FORMATS)}")
    if fmt in ("string", "key"):
        if not isinstance(value, str):
            raise HandleValueError(f"{where}: {fmt} data must be text, not {type(value).__name__}")
        if len(value.encode("utf-8", "surrogatepass")) > STRING_MAX_BYTES:
            raise HandleValueError(f"{where}: {fmt} data longer than {STRING_MAX_BYTES} bytes")
        return _check_text(value, where)
    if fmt == "base64":
        if not isinstance(value, str):
            raise HandleValueError(f"{where}: base64 data must be text")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HandleValueError(f"{where}: invalid base64 data ({exc})") from None
        return value
    if fmt == "hex":
        if not isinstance(value, str) or len(value) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", value):
            raise HandleValueError(f"{where}: hex data must be an even number of hex digits")
        return value
    if fmt == "admin":
        if not isinstance(value, Mapping) or set(value) != {"handle", "index", "permissions"}:
            raise HandleValueError(f"{where}: admin data must be an object with exactly "
                                   "'handle', 'index', 'permissions'")
        try:
            parse_identifier(value["handle"])
        except IdentifierError as exc:
            raise HandleValueError(f"{where}: admin handle: {exc}") from None
        parse_permissions(value["permissions"])
        return {"handle": value["handle"], "index": _check_index(value["index"], f"{where} admin"),
                "permissions": value["permissions"]}
    if fmt == "vlist":
        if not isinstance(value, list):
            raise HandleValueError(f"{where}: vlist data must be a list of {{handle, index}}")
        out = []
        for ref in value:
            if not isinstance(ref, Mapping) or set(ref) != {"handle", "index"}:
                raise HandleValueError(f"{where}: vlist entry {ref!r} must be {{handle, index}}")
            try:
                parse_identifier(ref["handle"])
            except IdentifierError as exc:
                raise HandleValueError(f"{where}: vlist entry: {exc}") from None
            out.append({"handle": ref["handle"], "index": _check_index(ref["index"], f"{where} vlist")})
        return out
    # site: the Handle site-info object; kept as given (JSON object)
    if not isinstance(value, Mapping):
        raise HandleValueError(f"{where}: site data must be a JSON object")
    _check_json_text(value, where)
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError) as exc:      # not JSON data, or nested too deep
        raise HandleValueError(f"{where}: site data is not plain JSON ({type(exc).__name__})") from None


@dataclass
class HandleValue:
    """One value of a Handle record (reference: Handle.net JSON REST value object).

    ``data`` is ``{"format": …, "value": …}``; ``timestamp`` is ``YYYY-MM-DDTHH:MM:SS[.f]Z`` (UTC).
    The permission flags follow Handle's defaults (admin read/write, public read, no public
    write); :meth:`to_json` writes them as ``"permissions"`` (``admin_read admin_write pub_read
    pub_write`` as 0/1) only when they differ from the defaults, and ``"references"`` only
    when non-empty, so a default value serialises exactly as the reference shows.
    """

    index: int
    type: str
    data: dict
    ttl: int = DEFAULT_TTL
    timestamp: str = field(default_factory=utc_timestamp)
    admin_read: bool = True
    admin_write: bool = True
    pub_read: bool = True
    pub_write: bool = False
    references: list = field(default_factory=list)

    def __post_init__(self):
        where = f"value {self.index!r}/{self.type!r}"
        self.index = _check_index(self.index, where)
        if not isinstance(self.type, str) or not self.type:
            raise HandleValueError(f"{where}: type must be non-empty text")
        if len(self.type) > TYPE_MAX_CHARS:
            raise HandleValueError(f"{where}: type longer than {TYPE_MAX_CHARS} characters")
        if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in self.type):
            raise HandleValueError(f"{where}: type contains whitespace or control characters")
        if not isinstance(self.data, Mapping) or set(self.data) != {"format", "value"}:
            raise HandleValueError(f"{where}: data must be {{'format', 'value'}} (or plain text on input)")
        self.data = {"format": self.data["format"],
                     "value": _check_data(self.data["format"], self.data["value"], where)}
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or not 0 <= self.ttl <= MAX_TTL:
            raise HandleValueError(f"{where}: ttl {self.ttl!r} must be an integer 0..{MAX_TTL} (seconds)")
        if not isinstance(self.timestamp, str) or not _TIMESTAMP.fullmatch(self.timestamp):
            raise HandleValueError(f"{where}: timestamp {self.timestamp!r} is not 'YYYY-MM-DDTHH:MM:SSZ'")
        try:
            _dt.datetime.strptime(self.timestamp[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise HandleValueError(f"{where}: timestamp {self.timestamp!r} is not a real date/time") from None
        for flag in ("admin_read", "admin_write", "pub_read", "pub_write"):
            if not isinstance(getattr(self, flag), bool):
                raise HandleValueError(f"{where}: {flag} must be true/false")
        if not isinstance(self.references, list):
            raise HandleValueError(f"{where}: references must be a list of {{handle, index}}")
        self.references = _check_data("vlist", self.references, f"{where} references")

    # -- convenience
    @property
    def format(self) -> str:
        return self.data["format"]

    @property
    def value(self) -> Any:
        return self.data["value"]

    @property
    def permissions(self) -> str:
        return "".join("1" if f else "0" for f in (self.admin_read, self.admin_write, self.pub_read, self.pub_write))

    # -- display (Jupyter / print)
    def display_text(self) -> str:
        """The value data as one readable line (JSON of DESC/CARBON.* as ``key: value``; secrets hidden)."""
        return _display_text(self)

    def __str__(self) -> str:
        public = "public" if self.pub_read else "not public"
        return f"{self.index} {self.type}: {self.display_text()}  (ttl {self.ttl} s, {self.timestamp}, {public})"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        return _html_table(None, [self])

    # -- JSON
    def to_json(self) -> dict:
        """The Handle REST value object (a plain dict ready for ``json.dumps``)."""
        out = {"index": self.index, "type": self.type,
               "data": {"format": self.data["format"], "value": _copy(self.data["value"])},
               "ttl": self.ttl, "timestamp": self.timestamp}
        if self.permissions != "1110":
            out["permissions"] = self.permissions
        if self.references:
            out["references"] = _copy(self.references)
        return out

    @classmethod
    def from_json(cls, obj: Mapping, *, timestamp: str | None = None) -> HandleValue:
        """Read a value object.  Accepts ``data`` as plain text (as pyhandle writes it → format
        ``string``), ``index`` and ``ttl`` as numeric strings, a missing or null ``timestamp`` (→
        ``timestamp`` or now) and ``ttl``; unknown keys other than ``auth`` (enterprise-node variant)
        are an error.
        """
        if not isinstance(obj, Mapping):
            raise HandleValueError(f"value {obj!r}: must be a JSON object")
        unknown = sorted(set(obj) - {"index", "type", "data", "ttl", "timestamp", "permissions",
                                     "references", "auth"})
        if unknown:
            raise HandleValueError(f"value {obj.get('index')!r}/{obj.get('type')!r}: unknown keys {unknown}")
        for key in ("index", "type", "data"):
            if key not in obj:
                raise HandleValueError(f"value {obj.get('index')!r}/{obj.get('type')!r}: missing {key!r}")
        data = obj["data"]
        if isinstance(data, str):
            data = {"format": "string", "value": data}
        perms = obj.get("permissions", "1110")
        if not isinstance(perms, str) or len(perms) != 4 or set(perms) - {"0", "1"}:
            raise HandleValueError(f"value {obj.get('index')!r}: permissions {perms!r} must be 4 characters of 0/1")
        stamp = obj.get("timestamp")                 # absent or null: now; anything else must be valid
        refs = obj.get("references")
        refs = [] if refs is None else refs
        if not isinstance(refs, list):
            raise HandleValueError(f"value {obj.get('index')!r}: references must be a list of {{handle, index}}")
        return cls(index=obj["index"], type=obj["type"], data=data, ttl=_int_text(obj.get("ttl", DEFAULT_TTL)),
                   timestamp=stamp if stamp is not None else timestamp or utc_timestamp(),
                   admin_read=perms[0] == "1", admin_write=perms[1] == "1",
                   pub_read=perms[2] == "1", pub_write=perms[3] == "1",
                   references=list(refs))


def _copy(value):
    return json.loads(json.dumps(value)) if isinstance(value, (dict, list)) else value


def admin_value(prefix: str, *, index: int = ADMIN_INDEX, admin_index: int = 200,
                permissions: str = DEFAULT_ADMIN_PERMISSIONS, timestamp: str | None = None,
                ttl: int = DEFAULT_TTL) -> HandleValue:
    """HS_ADMIN value (reference): index 100, ``{"format": "admin", "value": {"handle":
    "0.NA/<prefix>", "index": 200, "permissions": "011111110011"}}``.

    ``prefix`` is the enterprise prefix (``88.123.4567``) or a full admin handle (``0.NA/…`` or
    any ``index:handle`` holder such as ``88.100.24/admin``).
    """
    handle = prefix if "/" in prefix else f"{ADMIN_NA}/{prefix}"
    parse_identifier(handle)
    return HandleValue(index=index, type="HS_ADMIN",
                       data={"format": "admin", "value": {"handle": handle, "index": admin_index,
                                                          "permissions": permissions}},
                       ttl=ttl, timestamp=timestamp or utc_timestamp())


# --------------------------------------------------------------------------- records


class HandleRecord:
    """A Handle record: an :class:`Identifier` and its values, keyed by index (seed §10.2.2 a).

    ``to_json()`` gives ``{"handle": "<prefix/suffix>", "values": [...]}`` (values by index).
    """

    def __init__(self, identifier: Identifier | str, values: Iterable[HandleValue] = ()):
        self.identifier = parse_identifier(identifier)
        self._values: dict[int, HandleValue] = {}
        for v in values:
            self.add(v)

    # -- look-up
    @property
    def values(self) -> list[HandleValue]:
        return [self._values[i] for i in sorted(self._values)]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self):
        return iter(self.values)

    def __contains__(self, index: int) -> bool:
        return index in self._values

    def get(self, index: int, default=None) -> HandleValue | None:
        return self._values.get(index, default)

    def by_index(self, *indices: int) -> list[HandleValue]:
        """Values at the given indices (missing ones skipped), in index order."""
        return [self._values[i] for i in sorted(set(indices)) if i in self._values]

    def by_type(self, *types: str) -> list[HandleValue]:
        """Values of the given types (exact, case-sensitive), in index order."""
        return [v for v in self.values if v.type in types]

    def first(self, type: str) -> HandleValue | None:
        found = self.by_type(type)
        return found[0] if found else None

    # -- changes
    def next_index(self, start: int = 1) -> int:
        """Smallest free index ≥ ``start``, skipping the conventional admin indices 100/200/300."""
        i = max(1, start)
        while i in self._values or i in RESERVED_INDICES:
            i += 1
        return i

    def add(self, value: HandleValue | None = None, /, **fields) -> HandleValue:
        """Add a value; ``add(type=…, data=…)`` builds one and allocates its index.

        A value already at that index is an error ('value already exists', responseCode 201).
        """
        if value is None:
            fields.setdefault("index", self.next_index())
            if isinstance(fields.get("data"), str):
                fields["data"] = {"format": "string", "value": fields["data"]}
            value = HandleValue(**fields)
        elif fields:
            raise TypeError("add() takes a HandleValue or keyword fields, not both")
        if not isinstance(value, HandleValue):
            raise HandleValueError(f"{self.identifier}: not a HandleValue: {value!r}")
        if value.index in self._values:
            raise HandleValueError(f"{self.identifier}: value at index {value.index} already exists")
        self._values[value.index] = value
        return value

    def allocate(self, value: HandleValue) -> HandleValue:
        """Add ``value`` at the next free index if its own index is taken (else at its index)."""
        if value.index in self._values:
            value = HandleValue(**{**value.__dict__, "index": self.next_index()})
        return self.add(value)

    def replace(self, value: HandleValue) -> HandleValue:
        """Replace the value at ``value.index``; it must exist (else 'values not found', rc 200)."""
        if value.index not in self._values:
            raise HandleValueError(f"{self.identifier}: no value at index {value.index} to replace")
        self._values[value.index] = value
        return value

    def remove(self, index: int) -> HandleValue:
        """Remove and return the value at ``index``; missing index is an error."""
        if index not in self._values:
            raise HandleValueError(f"{self.identifier}: no value at index {index} to remove")
        return self._values.pop(index)

    # -- JSON
    def to_json(self) -> dict:
        return {"handle": str(self.identifier), "values": [v.to_json() for v in self.values]}

    @classmethod
    def from_json(cls, obj: Mapping) -> HandleRecord:
        """Read ``{"handle", "values": [...]}``; the enterprise-node variant ``"value": [...]`` too."""
        if not isinstance(obj, Mapping) or "handle" not in obj:
            raise HandleValueError("record must be a JSON object with 'handle'")
        if "values" in obj and "value" in obj:
            raise HandleValueError(f"record {obj['handle']!r}: give 'values' or 'value', not both")
        values = obj.get("values", obj.get("value", []))
        if not isinstance(values, list):
            raise HandleValueError(f"record {obj['handle']!r}: 'values' must be a list")
        return cls(obj["handle"], [HandleValue.from_json(v) for v in values])

    def __eq__(self, other) -> bool:
        if not isinstance(other, HandleRecord):
            return NotImplemented
        return self.identifier == other.identifier and self.values == other.values

    def __repr__(self) -> str:
        return f"HandleRecord({str(self.identifier)!r}, {len(self)} values)"

    # -- display (Jupyter / print)
    def __str__(self) -> str:
        return _text_table(self)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self) if cycle else str(self))

    def _repr_html_(self) -> str:
        return _html_table(self, self.values)


# --------------------------------------------------------------------------- display

_DISPLAY_FIRST = ("kind", "name_zh", "name_en", "grade", "value", "unit", "period", "standard", "scheme")
_JSON_TYPES = ("DESC",) + ("CARBON.FOOTPRINT", "CARBON.GRADE", "CARBON.EFFICIENCY")
_TYPE_ZH = {"URL": "地址", "DESC": "描述", "REF": "上级", "REF.CHILD": "下级", "HS_ADMIN": "管理权限",
            "HS_SECKEY": "密钥", "HS_VLIST": "管理组", "CARBON.FOOTPRINT": "碳足迹",
            "CARBON.GRADE": "碳效等级", "CARBON.EFFICIENCY": "碳效"}
_COLUMNS = (("索引", "index"), ("类型", "type"), ("值", "value"), ("有效期", "TTL (s)"),
            ("时间戳", "timestamp"), ("公开", "public"))
_TEXT_VALUE_MAX = 100            # display columns of a value in the text table


def _scalar_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "—"
    return str(v)


def _display_fields(value: HandleValue) -> list[tuple[str, str]] | None:
    """``[(key, text), …]`` of a JSON-object string value (DESC, CARBON.*), or None if it is not one.

    Empty fields are left out; ``value`` and ``unit`` are shown together (``value: 12.5 tCO2e``).
    """
    if value.format != "string" or not isinstance(value.value, str):
        return None
    if value.type not in _JSON_TYPES and not value.value.lstrip().startswith("{"):
        return None
    try:
        payload = json.loads(value.value)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    keys = [k for k in _DISPLAY_FIRST if k in payload] + [k for k in payload if k not in _DISPLAY_FIRST]
    out = []
    for k in keys:
        v = payload[k]
        if v is None or v == "" or (k == "unit" and "value" in payload):
            continue
        text = json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else _scalar_text(v)
        if k == "value" and isinstance(payload.get("unit"), str) and payload["unit"]:
            text = f"{text} {payload['unit']}"
        out.append((str(k), text))
    return out


def _display_text(value: HandleValue) -> str:
    fmt, data = value.format, value.value
    if value.type == "HS_SECKEY":
        return "(secret — hidden)"
    fields = _display_fields(value)
    if fields is not None:
        return "; ".join(f"{k}: {v}" for k, v in fields)
    if fmt == "admin":
        return f"{data['handle']} index {data['index']}, permissions {data['permissions']}"
    if fmt == "vlist":
        return ", ".join(f"{r['index']}:{r['handle']}" for r in data)
    if isinstance(data, (dict, list)):
        return json.dumps(data, ensure_ascii=False, sort_keys=True)
    return str(data)


def _value_html(value: HandleValue) -> str:
    esc = _html.escape
    fields = _display_fields(value) if value.type != "HS_SECKEY" else None
    if fields is not None:
        return "<br>".join(f"<b>{esc(k)}</b>: {esc(v)}" for k, v in fields)
    text = _display_text(value)
    if value.type == "URL" and re.match(r"https?://", text, re.IGNORECASE):
        return f'<a href="{esc(text)}" target="_blank" rel="noopener noreferrer">{esc(text)}</a>'
    if value.type in ("REF", "REF.CHILD") or value.format == "admin":
        return f"<code>{esc(text)}</code>"
    if value.type == "HS_SECKEY":
        return f"<i>{esc(text)}</i>"
    return esc(text)


def _html_table(record: HandleRecord | None, values: list[HandleValue]) -> str:
    esc = _html.escape
    head = "".join(f"<th style='text-align:left'>{esc(zh)} {esc(en)}</th>" for zh, en in _COLUMNS)
    rows = []
    for v in values:
        zh = _TYPE_ZH.get(v.type)
        typ = esc(v.type) + (f"<br><small>{esc(zh)}</small>" if zh else "")
        public = "是 yes" if v.pub_read else "否 no"
        cells = (str(v.index), typ, _value_html(v), str(v.ttl), esc(v.timestamp), public)
        rows.append("<tr>" + "".join(f"<td style='text-align:left;vertical-align:top'>{c}</td>"
                                     for c in cells) + "</tr>")
    if not rows:
        rows.append(f"<tr><td colspan='{len(_COLUMNS)}'><i>无值 no values</i></td></tr>")
    caption = ""
    if record is not None:
        n = len(values)
        caption = (f"<caption style='text-align:left'><b>标识 Handle</b> <code>{esc(str(record.identifier))}"
                   f"</code> · {n} {'value' if n == 1 else 'values'}</caption>")
    return (f"<table class='wb-handle-record'>{caption}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _cols(text: str) -> int:
    """Display width (East-Asian wide/full-width characters take two columns)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    if _cols(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _cols(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _text_table(record: HandleRecord) -> str:
    n = len(record)
    lines = [f"标识 Handle {record.identifier}  ({n} {'value' if n == 1 else 'values'})"]
    header = [f"{zh} {en}" for zh, en in _COLUMNS]
    rows = [[str(v.index), v.type, _clip(_display_text(v), _TEXT_VALUE_MAX), str(v.ttl), v.timestamp,
             "yes" if v.pub_read else "no"] for v in record.values]
    widths = [max(_cols(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  " + "  ".join(c + " " * (w - _cols(c)) for c, w in zip(cells, widths)).rstrip()

    lines.append(line(header))
    lines.extend(line(r) for r in rows)
    if not rows:
        lines.append("  (无值 no values)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- typed carbon fields

CARBON_TYPES = ("CARBON.FOOTPRINT", "CARBON.GRADE", "CARBON.EFFICIENCY")
VALUE_TYPES = ("URL", "DESC", "REF", "REF.CHILD", "HS_ADMIN") + CARBON_TYPES
_PERIOD = re.compile(r"\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?(/\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?)?")


def _json_string(payload: dict) -> str:
    """Canonical JSON text for a typed value: sorted keys, compact, UTF-8 (not ASCII-escaped)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _string_value(type_: str, text: str, index: int | None, timestamp: str | None, ttl: int) -> HandleValue:
    return HandleValue(index=index or 1, type=type_, data={"format": "string", "value": text},
                       ttl=ttl, timestamp=timestamp or utc_timestamp())


def url_value(url: str, *, index: int | None = None, timestamp: str | None = None,
              ttl: int = DEFAULT_TTL) -> HandleValue:
    """``URL`` value: where the object's page/data can be fetched (resolution target, seed §10.2.2 b)."""
    if not isinstance(url, str) or not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://\S+$", url):
        raise HandleValueError(f"URL {url!r}: need an absolute URL without whitespace")
    return _string_value("URL", url, index, timestamp, ttl)


def desc_value(*, kind: str, name_zh: str = "", name_en: str = "", index: int | None = None,
               timestamp: str | None = None, ttl: int = DEFAULT_TTL, **extra) -> HandleValue:
    """``DESC`` value: descriptive JSON (``kind``, ``name_zh``, ``name_en`` and any extra scalar fields)
    — the object application data of a registration (seed §10.2.2 a)."""
    if not isinstance(kind, str) or not kind:
        raise HandleValueError("DESC: kind must be non-empty text")
    payload = {"kind": kind, "name_zh": name_zh, "name_en": name_en}
    for k, v in extra.items():
        if not (v is None or isinstance(v, (str, int, float, bool))):
            raise HandleValueError(f"DESC: field {k!r} must be a scalar, not {type(v).__name__}")
        payload[k] = v
    return _string_value("DESC", _json_string(payload), index, timestamp, ttl)


def ref_value(target: Identifier | str, *, rel: str = "parent", index: int | None = None,
              timestamp: str | None = None, ttl: int = DEFAULT_TTL) -> HandleValue:
    """Reference to another identifier (validated): type ``REF`` for the parent (the record's place
    in the boundary hierarchy), ``REF.CHILD`` for a child.  The data is the plain identifier text."""
    types = {"parent": "REF", "child": "REF.CHILD"}
    if rel not in types:
        raise HandleValueError(f"REF: rel {rel!r} must be one of {list(types)}")
    try:
        ident = parse_identifier(target)
    except IdentifierError as exc:
        raise HandleValueError(f"REF: {exc}") from None
    return _string_value(types[rel], str(ident), index, timestamp, ttl)


def _finite(name: str, value: Any, *, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HandleValueError(f"{name}: value {value!r} must be a finite number")
    if nonneg and value < 0:
        raise HandleValueError(f"{name}: value {value!r} must not be negative")
    return float(value)


def _period(name: str, period: Any) -> str:
    if not isinstance(period, str) or not _PERIOD.fullmatch(period):
        raise HandleValueError(f"{name}: period {period!r} must be 'YYYY', 'YYYY-MM', 'YYYY-Qn' "
                               "or a range 'start/end' of those")
    return period


def carbon_value(type: str, *, index: int | None = None, timestamp: str | None = None,
                 ttl: int = DEFAULT_TTL, **fields) -> HandleValue:
    """Typed carbon field as a ``string`` value holding canonical JSON (seed §9.4 a/b, §3.6).

    * ``CARBON.FOOTPRINT`` — ``value`` (tCO2e, finite), ``period``, ``standard`` (e.g.
      ``"GB/T 32150-2015"``); unit fixed to ``tCO2e``.  Product carbon label: total emissions
      of the product in production (seed §9.4 b).
    * ``CARBON.GRADE`` — ``grade`` (text, e.g. ``"A"``), ``period``, ``scheme`` (the grading model);
      the differentiated carbon-efficiency grade (seed §9.4 a).
    * ``CARBON.EFFICIENCY`` — ``value`` (≥ 0), ``period``; unit fixed to ``tCO2e/万元``: emissions per
      unit of value added (seed §3.6).

    Extra scalar fields (``basis``, ``verified_by`` …) are kept.  Use :func:`decode_json_value`
    to read one back.
    """
    required = {"CARBON.FOOTPRINT": ("value", "period", "standard"),
                "CARBON.GRADE": ("grade", "period", "scheme"),
                "CARBON.EFFICIENCY": ("value", "period")}
    units = {"CARBON.FOOTPRINT": "tCO2e", "CARBON.EFFICIENCY": "tCO2e/万元"}
    if type not in required:
        raise HandleValueError(f"carbon value type {type!r} must be one of {list(required)}")
    missing = [k for k in required[type] if k not in fields]
    if missing:
        raise HandleValueError(f"{type}: missing fields {missing}")
    payload: dict[str, Any] = {}
    for k, v in fields.items():
        if not (v is None or isinstance(v, (str, int, float, bool))):
            raise HandleValueError(f"{type}: field {k!r} must be a scalar, not {builtins.type(v).__name__}")
        payload[k] = v
    payload["period"] = _period(type, fields["period"])
    if "value" in required[type]:
        payload["value"] = _finite(type, fields["value"], nonneg=type == "CARBON.EFFICIENCY")
    if type in units:
        if fields.get("unit", units[type]) != units[type]:
            raise HandleValueError(f"{type}: unit {fields['unit']!r} must be {units[type]!r}")
        payload["unit"] = units[type]
    for k in ("standard", "grade", "scheme"):
        if k in required[type] and (not isinstance(fields[k], str) or not fields[k].strip()):
            raise HandleValueError(f"{type}: {k} must be non-empty text")
    return _string_value(type, _json_string(payload), index, timestamp, ttl)


def decode_json_value(value: HandleValue) -> dict:
    """The JSON payload of a ``DESC`` or ``CARBON.*`` value."""
    if value.format != "string":
        raise HandleValueError(f"value {value.index}/{value.type}: format {value.format!r} is not 'string'")
    try:
        out = json.loads(value.value)
    except json.JSONDecodeError as exc:
        raise HandleValueError(f"value {value.index}/{value.type}: not JSON ({exc})") from None
    if not isinstance(out, dict):
        raise HandleValueError(f"value {value.index}/{value.type}: JSON is not an object")
    return out


# --------------------------------------------------------------------------- suffix schemes

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}")
_STRPTIME_RE = {"Y": r"\d{4}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
                "S": r"\d{2}", "y": r"\d{2}", "j": r"\d{3}", "%": "%"}


def _date_regex(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            d = fmt[i + 1]
            if d not in _STRPTIME_RE:
                raise SuffixSchemeError(f"date directive %{d} not supported; use {sorted(_STRPTIME_RE)}")
            out.append(_STRPTIME_RE[d] if d != "%" else "%")
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class SuffixScheme:
    """How the enterprise writes suffixes for one entity kind (seed §10.2.2 c: 'provide identifier
    code forms as the industry and enterprise need').

    ``template`` uses ``str.format`` fields: ``{name}`` (text, no whitespace), ``{name:06d}`` /
    ``{name:d}`` (non-negative integer) and ``{name:%Y%m%d}`` (date, strftime directives
    ``%Y %m %d %H %M %S %y %j``).  :meth:`make` formats and then checks that :meth:`parse` gives
    the same fields back — an ambiguous combination (e.g. a dot inside a non-final text field
    followed by ``.``) is an error rather than a suffix that cannot be read back.
    """

    kind: str
    template: str

    def __post_init__(self):
        if not self.kind:
            raise SuffixSchemeError("scheme kind must be non-empty")
        names = [m.group(1) for m in _FIELD.finditer(self.template)]
        if not names:
            raise SuffixSchemeError(f"scheme {self.kind!r}: template {self.template!r} has no fields")
        if len(set(names)) != len(names):
            raise SuffixSchemeError(f"scheme {self.kind!r}: template repeats a field")
        self._regex()                       # validates the specs

    @property
    def fields(self) -> list[str]:
        return [m.group(1) for m in _FIELD.finditer(self.template)]

    def _specs(self) -> dict[str, str]:
        return {m.group(1): m.group(2) or "" for m in _FIELD.finditer(self.template)}

    def _regex(self) -> re.Pattern:
        parts, pos = [], 0
        for m in _FIELD.finditer(self.template):
            parts.append(re.escape(self.template[pos:m.start()]))
            name, spec = m.group(1), m.group(2) or ""
            if spec.startswith("%"):
                rx = _date_regex(spec)
            elif re.fullmatch(r"0?\d*d", spec):
                width = int(spec[1:-1]) if spec.startswith("0") and len(spec) > 2 else 0
                rx = rf"\d{{{width},}}" if width else r"\d+"
            elif spec == "":
                rx = r"\S+?"
            else:
                raise SuffixSchemeError(f"scheme {self.kind!r}: field {name!r} spec {spec!r} not supported "
                                        "(use '', 'd', '0Nd' or a %-date)")
            parts.append(f"(?P<{name}>{rx})")
            pos = m.end()
        parts.append(re.escape(self.template[pos:]))
        return re.compile("".join(parts))

    def make(self, mapping: Mapping | None = None, /, **fields) -> str:
        """Suffix from field values (a mapping and/or keywords, e.g. ``make({'class': 'C'}, model=…)``)."""
        values = {**(mapping or {}), **fields}
        specs = self._specs()
        missing = [n for n in specs if n not in values]
        if missing:
            raise SuffixSchemeError(f"scheme {self.kind!r}: missing fields {missing}")
        extra = sorted(set(values) - set(specs))
        if extra:
            raise SuffixSchemeError(f"scheme {self.kind!r}: unknown fields {extra}")
        for name, spec in specs.items():
            v = values[name]
            if spec.startswith("%") and not isinstance(v, (_dt.date, _dt.datetime)):
                raise SuffixSchemeError(f"scheme {self.kind!r}: field {name!r} needs a date, got {v!r}")
            if spec.endswith("d") and not spec.startswith("%") and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise SuffixSchemeError(f"scheme {self.kind!r}: field {name!r} needs a non-negative integer, got {v!r}")
            if spec == "" and (not isinstance(v, str) or not v):
                raise SuffixSchemeError(f"scheme {self.kind!r}: field {name!r} needs non-empty text, got {v!r}")
        suffix = self.template.format(**values)
        try:
            validate_suffix(suffix)
        except IdentifierError as exc:
            raise SuffixSchemeError(f"scheme {self.kind!r}: {exc}") from None
        back = self.parse(suffix)
        if any(back[n] != _normal(values[n], specs[n]) for n in specs):
            raise SuffixSchemeError(f"scheme {self.kind!r}: suffix {suffix!r} is ambiguous — it parses "
                                    f"back as {back!r}; avoid separators inside text fields")
        return suffix

    def parse(self, suffix: str) -> dict[str, Any]:
        """Fields of a suffix (integers as ``int``, dates as ``datetime.date`` or ``datetime``)."""
        m = self._regex().fullmatch(suffix)
        if not m:
            raise SuffixSchemeError(f"suffix {suffix!r} does not fit scheme {self.kind!r} ({self.template})")
        out: dict[str, Any] = {}
        for name, spec in self._specs().items():
            raw = m.group(name)
            if spec.startswith("%"):
                try:
                    when = _dt.datetime.strptime(raw, spec)
                except ValueError:
                    raise SuffixSchemeError(f"suffix {suffix!r}: field {name!r} {raw!r} is not a date "
                                            f"({spec})") from None
                out[name] = when if any(d in spec for d in ("%H", "%M", "%S")) else when.date()
            elif spec.endswith("d"):
                out[name] = int(raw)
            else:
                out[name] = raw
        return out

    def matches(self, suffix: str) -> bool:
        try:
            self.parse(suffix)
            return True
        except SuffixSchemeError:
            return False


def _normal(v, spec: str):
    if spec.startswith("%") and isinstance(v, _dt.datetime) and not any(d in spec for d in ("%H", "%M", "%S")):
        return v.date()
    return v


DEFAULT_SCHEMES: dict[str, SuffixScheme] = {
    # boundary nodes — the same form the demo generator writes (node.<node_id>, meter.<meter_id>)
    "enterprise": SuffixScheme("enterprise", "node.{node_id}"),
    "facility": SuffixScheme("facility", "node.{node_id}"),
    "workshop": SuffixScheme("workshop", "node.{node_id}"),
    "process": SuffixScheme("process", "node.{node_id}"),
    "meter": SuffixScheme("meter", "meter.{meter_id}"),
    # objects (reference: basic classification . model . production date . serial)
    "product": SuffixScheme("product", "{class}.{model}.{date:%Y%m%d}.{serial:06d}"),
    "batch": SuffixScheme("batch", "batch.{product}.{date:%Y%m%d}.{seq:03d}"),
    "report": SuffixScheme("report", "report.{report_kind}.{period}.v{version:d}"),
    "label": SuffixScheme("label", "label.{label_kind}.{period}.{subject}"),
}


# --------------------------------------------------------------------------- boundary mirroring


def node_identifiers(boundary, prefix: str, *, schemes: Mapping[str, SuffixScheme] | None = None
                     ) -> dict[str, Identifier]:
    """``{node_id: Identifier}`` of every boundary node: its ``identifier`` cell (which must be under
    ``prefix``), else its level's suffix scheme (:data:`DEFAULT_SCHEMES` unless ``schemes``).
    Two nodes with one identifier (compared by :attr:`Identifier.key`) are an :class:`IdentifierError`."""
    _check_prefix(prefix, f"{prefix}/…")
    schemes = {**DEFAULT_SCHEMES, **(schemes or {})}
    ident: dict[str, Identifier] = {}
    seen: dict[str, str] = {}
    for row in boundary.nodes.itertuples(index=False):
        node, level = row.node_id, row.level
        if row.identifier:
            i = parse_identifier(row.identifier)
            if _ascii_lower(i.prefix) != _ascii_lower(prefix):
                raise IdentifierError(f"identifier {row.identifier!r} of node {node!r} is not under prefix {prefix!r}")
        else:
            if level not in schemes:
                raise IdentifierError(f"node {node!r}: no suffix scheme for level {level!r}")
            scheme = schemes[level]
            try:
                suffix = scheme.make({f: node for f in scheme.fields})
            except SuffixSchemeError as exc:
                raise IdentifierError(f"node {node!r}: {exc}") from None
            i = Identifier(prefix, suffix)
        if i.key in seen:
            raise IdentifierError(f"identifier {str(i)!r} given to both {seen[i.key]!r} and {node!r}")
        seen[i.key] = node
        ident[node] = i
    return ident


def records_from_boundary(boundary, prefix: str, *, schemes: Mapping[str, SuffixScheme] | None = None,
                          children: bool = True, admin: bool = True, url_template: str | None = None,
                          timestamp: str | None = None, ttl: int = DEFAULT_TTL) -> list[HandleRecord]:
    """One Handle record per boundary node, mirroring the hierarchy (seed §9.5, §5.3, §7.1 b).

    Parameters
    ----------
    boundary : workbench.core.boundary.Boundary
    prefix : str
        The enterprise prefix, e.g. ``"88.123.4567"``.
    schemes : mapping level → SuffixScheme, optional
        Suffix schemes for nodes without an ``identifier``; defaults to :data:`DEFAULT_SCHEMES`
        (``node.{node_id}``; ``meter.{meter_id}`` for meter-level nodes, with ``meter_id = node_id``).
    children : bool
        Also add one ``REF.CHILD`` value per child (derived from the parents; convenient for
        resolving downwards).
    admin : bool
        Add the HS_ADMIN value at index 100 pointing to ``0.NA/<prefix>``.
    url_template : str, optional
        Adds a ``URL`` value, formatted with ``node_id``, ``level``, ``identifier``, ``suffix``.

    Returns
    -------
    list of HandleRecord in boundary row order.  Values: 1 ``DESC`` (kind = level, node_id, names,
    ``classification`` as given, ``classification_effective`` inherited from the nearest ancestor
    and its Chinese name), 2 ``REF`` to the parent (not on the enterprise), then ``URL``,
    ``REF.CHILD`` values, and HS_ADMIN at 100.

    Raises
    ------
    IdentifierError
        An ``identifier`` cell is malformed or under another prefix, or two nodes get the same
        identifier (compared by :attr:`Identifier.key`).
    """
    from workbench.core.boundary import CLASSIFICATION_NAMES_ZH

    ts = timestamp or utc_timestamp()
    nodes = boundary.nodes
    ids = list(nodes["node_id"])
    effective = dict(zip(ids, boundary.classification_of(ids)))
    ident = node_identifiers(boundary, prefix, schemes=schemes)

    kids: dict[str, list[str]] = {n: [] for n in ids}
    for row in nodes.itertuples(index=False):
        if row.parent_id:
            kids[row.parent_id].append(row.node_id)

    records = []
    for row in nodes.itertuples(index=False):
        node = row.node_id
        rec = HandleRecord(ident[node])
        cls = effective[node]
        rec.add(desc_value(kind=row.level, name_zh=row.name_zh, name_en=row.name_en, node_id=node,
                           level=row.level, classification=row.classification,
                           classification_effective=cls,
                           classification_zh=CLASSIFICATION_NAMES_ZH.get(cls, ""),
                           index=1, timestamp=ts, ttl=ttl))
        if row.parent_id:
            rec.add(ref_value(ident[row.parent_id], rel="parent", index=2, timestamp=ts, ttl=ttl))
        if url_template:
            url = url_template.format(node_id=node, level=row.level, identifier=str(ident[node]),
                                      suffix=ident[node].suffix)
            rec.add(url_value(url, index=rec.next_index(), timestamp=ts, ttl=ttl))
        if children:
            for kid in kids[node]:
                rec.add(ref_value(ident[kid], rel="child", index=rec.next_index(), timestamp=ts, ttl=ttl))
        if admin:
            rec.add(admin_value(prefix, timestamp=ts, ttl=ttl))
        records.append(rec)
    return records


# --------------------------------------------------------------------------- master data (boundary + meters)

#: meter-register columns a meter's ``DESC`` carries (when set): what it is, what it measures, its
#: validity interval and its links — ``measures`` is the boundary node it measures (``node_id``)
_METER_DESC_FIELDS = ("meter_id", "serial", "source", "item", "unit", "quantity", "register", "rollover",
                      "installed", "removed", "replaces", "is_main", "device_id")


def _cell(v):
    """A table cell as a DESC scalar: empty, NaN and NaT → None, numpy scalars → Python."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, _dt.datetime | _dt.date):
        return v.date().isoformat() if isinstance(v, _dt.datetime) else v.isoformat()
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v if isinstance(v, (int, float, bool)) else str(v)


def _meter_rows(meters) -> list[dict]:
    """The rows of a meter table (a DataFrame or records) as plain dicts; ``meter_id`` and
    ``node_id`` required."""
    rows = meters.to_dict("records") if hasattr(meters, "to_dict") else [dict(r) for r in meters]
    out = []
    for n, r in enumerate(rows):
        row = {k: _cell(v) for k, v in r.items()}
        if not row.get("meter_id"):
            raise IdentifierError(f"meters row {n + 1}: no meter_id")
        out.append(row)
    return out


def meter_identifiers(boundary, meters, prefix: str, *, schemes: Mapping[str, SuffixScheme] | None = None
                      ) -> dict[str, Identifier]:
    """``{meter_id: Identifier}`` — one rule for the identifier node and the device registry: the
    meter's ``identifier`` cell (under ``prefix``), else the identifier of the meter-level boundary
    node of that id (the demo's boundaries list their meters), else the ``meter`` scheme
    (``meter.{meter_id}``).

    Raises :class:`IdentifierError` for a cell under another prefix, a cell that differs from the
    meter's own boundary node, or an identifier given to two meters or to a meter and another node.
    """
    _check_prefix(prefix, f"{prefix}/…")
    schemes = {**DEFAULT_SCHEMES, **(schemes or {})}
    nodes = node_identifiers(boundary, prefix, schemes=schemes) if boundary is not None else {}
    level = dict(zip(boundary.nodes["node_id"], boundary.nodes["level"])) if boundary is not None else {}
    taken = {i.key: f"node {n!r}" for n, i in nodes.items()}
    out: dict[str, Identifier] = {}
    for r in _meter_rows(meters):
        meter = str(r["meter_id"])
        own = nodes.get(meter) if level.get(meter) == "meter" else None      # the meter is a boundary node
        if r.get("identifier"):
            i = parse_identifier(r["identifier"])
            if _ascii_lower(i.prefix) != _ascii_lower(prefix):
                raise IdentifierError(f"identifier {r['identifier']!r} of meter {meter!r} is not under prefix {prefix!r}")
            if own is not None and own.key != i.key:
                raise IdentifierError(f"meter {meter!r}: identifier {str(i)!r} in the meters, {str(own)!r} in the "
                                      "boundary — one meter, one identifier")
        elif own is not None:
            i = own
        else:
            try:
                i = Identifier(prefix, schemes["meter"].make({f: meter for f in schemes["meter"].fields}))
            except SuffixSchemeError as exc:
                raise IdentifierError(f"meter {meter!r}: {exc}") from None
        holder = taken.get(i.key)
        if holder is not None and holder != f"node {meter!r}":
            raise IdentifierError(f"identifier {str(i)!r} given to both {holder} and meter {meter!r}")
        taken[i.key] = f"meter {meter!r}" if own is None else f"node {meter!r}"
        out[meter] = i
    return out


def records_from_master_data(boundary, meters, prefix: str, *, schemes: Mapping[str, SuffixScheme] | None = None,
                             children: bool = True, admin: bool = True, url_template: str | None = None,
                             timestamp: str | None = None, ttl: int = DEFAULT_TTL) -> list[HandleRecord]:
    """One Handle record per boundary node and per meter of an enterprise's master data (seed §9.5,
    §7.1 c) — the boundary as :func:`records_from_boundary` mirrors it, and its meter register.

    ``boundary`` is a :class:`workbench.core.boundary.Boundary`, ``meters`` the meter register (a
    DataFrame or records with ``meter_id``, ``node_id`` and optionally the other ``meters.csv``
    columns; every meter, removed ones too — a replaced meter's identifier keeps resolving to its
    history).  This module takes plain tables: the caller reads the master data
    (``MasterData.boundary`` / ``MasterData.meters``).

    A meter's identifier is :func:`meter_identifiers`'.  A meter that is itself a meter-level node
    of the boundary keeps that node's record, its ``DESC`` extended with the meter's columns; any
    other meter gets its own record: ``DESC`` (kind ``meter``, the columns, ``measures`` = the node
    it measures and that node's effective 分项 class), ``REF`` to the measured node, ``URL`` (with
    ``url_template``, formatted with ``node_id`` = the meter id, ``level`` = ``meter``,
    ``identifier``, ``suffix``), HS_ADMIN; the measured node's record then gets a ``REF.CHILD`` to
    it (with ``children``).  Only set columns are written.

    Returns the boundary's records in row order, then the meters' own records in table order.
    Raises :class:`IdentifierError` (identifiers, a meter measuring a node not in the boundary).
    """
    from workbench.core.boundary import CLASSIFICATION_NAMES_ZH

    ts = timestamp or utc_timestamp()
    records = records_from_boundary(boundary, prefix, schemes=schemes, children=children, admin=admin,
                                    url_template=url_template, timestamp=ts, ttl=ttl)
    node_ids = list(boundary.nodes["node_id"])
    by_node = dict(zip(node_ids, records))
    level = dict(zip(node_ids, boundary.nodes["level"]))
    ident = meter_identifiers(boundary, meters, prefix, schemes=schemes)
    rows = _meter_rows(meters)
    own_records = []
    for r in rows:
        meter, measured = str(r["meter_id"]), r.get("node_id")
        fields = {k: r[k] for k in _METER_DESC_FIELDS if r.get(k) is not None}
        if measured is not None:
            fields["measures"] = str(measured)
        if r.get("replaces") and str(r["replaces"]) in ident:
            fields["replaces_identifier"] = str(ident[str(r["replaces"])])
        if level.get(meter) == "meter":
            # the meter is a boundary node: one record, the node's description and the meter's columns
            rec = by_node[meter]
            desc = rec.get(1)
            rec.replace(desc_value(**{**decode_json_value(desc), **fields}, index=1, timestamp=ts, ttl=desc.ttl))
            continue
        if measured is None or measured not in by_node:
            raise IdentifierError(f"meter {meter!r}: measures node {measured!r}, which is not in the boundary")
        i = ident[meter]
        cls = boundary.classification_of([measured]).iloc[0]
        rec = HandleRecord(i)
        rec.add(desc_value(kind="meter", name_zh="", name_en="", **fields, classification_effective=cls,
                           classification_zh=CLASSIFICATION_NAMES_ZH.get(cls, ""), index=1, timestamp=ts, ttl=ttl))
        rec.add(ref_value(by_node[measured].identifier, rel="parent", index=2, timestamp=ts, ttl=ttl))
        if url_template:
            url = url_template.format(node_id=meter, level="meter", identifier=str(i), suffix=i.suffix)
            rec.add(url_value(url, index=rec.next_index(), timestamp=ts, ttl=ttl))
        if admin:
            rec.add(admin_value(prefix, timestamp=ts, ttl=ttl))
        if children:
            parent = by_node[measured]
            parent.add(ref_value(i, rel="child", index=parent.next_index(), timestamp=ts, ttl=ttl))
        own_records.append(rec)
    return records + own_records
