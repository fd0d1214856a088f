"""Presentation settings shared by the apps and the dashboards."""
from __future__ import annotations

__all__ = ["CJK_FONTS", "matplotlib_cjk"]

#: fonts with Chinese glyphs, first found wins (Debian's fonts-noto-cjk, installed by `make install`)
CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "Source Han Sans SC"]


def matplotlib_cjk() -> str | None:
    """Make matplotlib draw Chinese labels (zh-CN figure titles and legends) with a CJK font ahead
    of DejaVu Sans; returns the font used (``None``: none installed — labels then lose their
    Chinese glyphs, and matplotlib warns)."""
    import matplotlib as mpl
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    found = next((f for f in CJK_FONTS if f in have), None)
    if found:
        mpl.rcParams["font.sans-serif"] = [found, *[f for f in mpl.rcParams["font.sans-serif"] if f != found]]
        mpl.rcParams["font.family"] = "sans-serif"
        mpl.rcParams["axes.unicode_minus"] = False
    return found
