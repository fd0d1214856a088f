"""Text files as plants write them: UTF-8 (with or without a BOM), else GB18030 (which also reads
GBK and GB2312) — the encoding used is returned, so a caller can say it guessed and how to
override the guess."""
from __future__ import annotations

__all__ = ["GUESSES", "decode_text", "looks_like", "not_text"]

GUESSES = ("utf-8-sig", "gb18030")


def decode_text(raw: bytes, encoding: str | None = None) -> tuple[str, str] | None:
    """(text, encoding) of ``raw`` — in ``encoding`` when given, else the first of
    :data:`GUESSES` that decodes it; ``None`` when none does (or ``encoding`` is unknown)."""
    for enc in [encoding] if encoding else GUESSES:
        try:
            return raw.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
    return None


#: how files that are no text begin
MAGIC = ((b"\x89PNG", "a PNG image"), (b"PK\x03\x04", "a ZIP archive (an XLSX workbook?)"), (b"%PDF", "a PDF document"),
         (b"\xff\xd8\xff", "a JPEG image"), (b"PAR1", "a Parquet file"), (b"SQLite format 3\x00", "a SQLite database"))


def looks_like(raw: bytes) -> str | None:
    """What ``raw`` is by its first bytes (``'a PNG image'`` …), ``None`` when no known format."""
    return next((what for magic, what in MAGIC if raw.startswith(magic)), None)


def not_text(raw: bytes) -> str | None:
    """Why ``raw`` cannot be a text file, in words (empty, another format, UTF-16, binary), or ``None``."""
    if not raw.strip():
        return "the file is empty"
    what = looks_like(raw)
    if what:
        return f"{what}, not text"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text; save it as UTF-8 (or GB18030)"
    if b"\x00" in raw:
        return "binary data (NUL bytes), not text"
    return None
