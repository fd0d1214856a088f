"""The codes that name an enterprise, checked as their standards define them.

* ``enterprise_id`` — the platform's short id (``demo-cement``): lower-case letters, digits and
  inner hyphens, 2–64 characters; every ``--enterprise`` takes it.
* unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters of
  ``0-9 A-H J-N P-R T U W-Y`` (no I, O, S, V, Z); the 18th is the check character
  ``C18 = 31 − (Σ_{i=1..17} c_i · W_i mod 31)`` (31 → 0) with weights
  ``W_i = 3^(i−1) mod 31`` = 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28; characters 3–8 are
  the registering authority's administrative division code (GB/T 2260).
* region — ISO 3166-2 subdivision of China (``CN-ZJ``) or a GB/T 2260 administrative division
  code (``330522``, six digits, its first two the province); :func:`province_of` maps both to the
  ISO code the factor library's regional factors use.
* industry code (GB/T 4754-2017 国民经济行业分类) — a section letter A–T with 2, 3 or 4 digits
  (``C3011`` cement manufacturing); for the industrial sections the division must lie in the
  section (B 06–12 mining, C 13–43 manufacturing, D 44–46 utilities).
* time zone — an IANA name (``Asia/Shanghai``).

Each check returns the normalised code or raises :class:`CodeError` saying what is wrong.
"""
from __future__ import annotations

import re

from workbench.core.errors import WorkbenchError

__all__ = ["CodeError", "check_enterprise_id", "check_industry_code", "check_region", "check_timezone",
           "check_uscc", "province_of", "uscc_check_character"]


class CodeError(WorkbenchError, ValueError):
    """A code that does not follow its standard; the message says which and why."""


_ENTERPRISE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])")
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

#: GB/T 2260 province codes (the first two digits) → ISO 3166-2:CN subdivision
PROVINCES = {
    "11": "CN-BJ", "12": "CN-TJ", "13": "CN-HE", "14": "CN-SX", "15": "CN-NM", "21": "CN-LN", "22": "CN-JL",
    "23": "CN-HL", "31": "CN-SH", "32": "CN-JS", "33": "CN-ZJ", "34": "CN-AH", "35": "CN-FJ", "36": "CN-JX",
    "37": "CN-SD", "41": "CN-HA", "42": "CN-HB", "43": "CN-HN", "44": "CN-GD", "45": "CN-GX", "46": "CN-HI",
    "50": "CN-CQ", "51": "CN-SC", "52": "CN-GZ", "53": "CN-YN", "54": "CN-XZ", "61": "CN-SN", "62": "CN-GS",
    "63": "CN-QH", "64": "CN-NX", "65": "CN-XJ", "71": "CN-TW", "81": "CN-HK", "82": "CN-MO",
}
_ISO_PROVINCES = set(PROVINCES.values())
#: GB/T 4754-2017: divisions of the industrial sections
_SECTION_DIVISIONS = {"B": (6, 12), "C": (13, 43), "D": (44, 46)}


def check_enterprise_id(value) -> str:
    text = str(value or "").strip()
    if not _ENTERPRISE_ID.fullmatch(text):
        raise CodeError(f"enterprise_id {text!r}: use 2–64 lower-case letters, digits and inner hyphens, "
                        "e.g. demo-cement")
    return text


def uscc_check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def check_uscc(value) -> str:
    text = str(value or "").strip().upper()
    if len(text) != 18 or any(c not in _USCC_CHARS for c in text):
        raise CodeError(f"unified social credit code {text!r}: 18 characters of digits and the letters "
                        "A–Y without I, O, S, V, Z (GB 32100)")
    if text[2:4] not in PROVINCES:
        raise CodeError(f"unified social credit code {text}: characters 3–8 must be an administrative division "
                        f"code (GB/T 2260); {text[2:4]!r} is no province")
    want = uscc_check_character(text[:17])
    if text[17] != want:
        raise CodeError(f"unified social credit code {text}: check character is {text[17]!r}, GB 32100 gives "
                        f"{want!r} (a typing error?)")
    return text


def check_region(value) -> str:
    text = str(value or "").strip()
    if re.fullmatch(r"CN-[A-Z]{2}", text.upper()) and text.upper() in _ISO_PROVINCES:
        return text.upper()
    if re.fullmatch(r"\d{6}", text) and text[:2] in PROVINCES:
        return text
    raise CodeError(f"region {text!r}: an ISO 3166-2 province of China (e.g. CN-ZJ) or a six-digit GB/T 2260 "
                    "administrative division code (e.g. 330522)")


def province_of(region: str) -> str:
    """ISO 3166-2 province of a checked region (``330522`` → ``CN-ZJ``)."""
    return region if region.startswith("CN-") else PROVINCES[region[:2]]


def check_industry_code(value) -> str:
    text = str(value or "").strip().upper()
    m = re.fullmatch(r"([A-T])(\d{2}(?:\d{1,2})?)?", text)
    if not m:
        raise CodeError(f"industry code {text!r}: GB/T 4754 — a section letter A–T with 2, 3 or 4 digits "
                        "(e.g. C3011 cement manufacturing)")
    section, digits = m.group(1), m.group(2)
    if digits and section in _SECTION_DIVISIONS:
        lo, hi = _SECTION_DIVISIONS[section]
        if not lo <= int(digits[:2]) <= hi:
            raise CodeError(f"industry code {text}: division {digits[:2]} is not in section {section} "
                            f"({lo:02d}–{hi:02d}, GB/T 4754-2017)")
    return text


def check_timezone(value) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = str(value or "").strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise CodeError(f"time zone {text!r}: an IANA time zone name, e.g. Asia/Shanghai") from None
    return text
