"""Text files as plants write them: UTF-8 (with or without a BOM), else GB18030 (which also reads
GBK and GB2312) — the encoding used is returned, so a caller can say it guessed and how to
override the guess."""
from __future__ import annotations

__all__ = ["GUESSES", "decode_text"]

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
