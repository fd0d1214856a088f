"""Industries for the benchmark: GB/T 4754-2017 codes at the level an enterprise is compared within.

A class code (小类) ``C3011`` belongs to the division (大类) ``C30``; the benchmark of the 碳效码 is
computed per division by default (DB33/T 1347—2023 covers 38 divisions [E2] — the level of detail
it uses is UNVERIFIED).  :data:`DIVISIONS` names the manufacturing divisions (C13–C43) **as
transcribed from memory of GB/T 4754-2017, not checked against the official text**; a code not
listed is shown as its code.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.grading.errors import GradingError

__all__ = ["DIVISIONS", "LEVELS", "industry_key", "industry_name"]

#: the levels an industry key can take
LEVELS = ("division", "class")

#: GB/T 4754-2017 manufacturing divisions (门类 C) → (name zh, name en); UNVERIFIED transcription
DIVISIONS = {
    "C13": ("农副食品加工业", "Agricultural and sideline food processing"),
    "C14": ("食品制造业", "Food manufacturing"),
    "C15": ("酒、饮料和精制茶制造业", "Liquor, beverages and refined tea"),
    "C16": ("烟草制品业", "Tobacco products"),
    "C17": ("纺织业", "Textiles"),
    "C18": ("纺织服装、服饰业", "Textile garments and apparel"),
    "C19": ("皮革、毛皮、羽毛及其制品和制鞋业", "Leather, fur, feathers and footwear"),
    "C20": ("木材加工和木、竹、藤、棕、草制品业", "Wood, bamboo, rattan, palm and straw products"),
    "C21": ("家具制造业", "Furniture"),
    "C22": ("造纸和纸制品业", "Paper and paper products"),
    "C23": ("印刷和记录媒介复制业", "Printing and reproduction of recorded media"),
    "C24": ("文教、工美、体育和娱乐用品制造业", "Cultural, educational, arts, sports and entertainment goods"),
    "C25": ("石油、煤炭及其他燃料加工业", "Petroleum, coal and other fuel processing"),
    "C26": ("化学原料和化学制品制造业", "Chemical raw materials and chemical products"),
    "C27": ("医药制造业", "Pharmaceuticals"),
    "C28": ("化学纤维制造业", "Chemical fibres"),
    "C29": ("橡胶和塑料制品业", "Rubber and plastic products"),
    "C30": ("非金属矿物制品业", "Non-metallic mineral products"),
    "C31": ("黑色金属冶炼和压延加工业", "Ferrous metal smelting and rolling"),
    "C32": ("有色金属冶炼和压延加工业", "Non-ferrous metal smelting and rolling"),
    "C33": ("金属制品业", "Fabricated metal products"),
    "C34": ("通用设备制造业", "General-purpose machinery"),
    "C35": ("专用设备制造业", "Special-purpose machinery"),
    "C36": ("汽车制造业", "Motor vehicles"),
    "C37": ("铁路、船舶、航空航天和其他运输设备制造业", "Railway, ships, aerospace and other transport equipment"),
    "C38": ("电气机械和器材制造业", "Electrical machinery and equipment"),
    "C39": ("计算机、通信和其他电子设备制造业", "Computers, communication and other electronic equipment"),
    "C40": ("仪器仪表制造业", "Instruments and meters"),
    "C41": ("其他制造业", "Other manufacturing"),
    "C42": ("废弃资源综合利用业", "Comprehensive use of waste resources"),
    "C43": ("金属制品、机械和设备修理业", "Repair of metal products, machinery and equipment"),
}


def industry_key(codes, level: str = "division") -> np.ndarray:
    """The industry each GB/T 4754 code is compared within: ``division`` → letter and two digits
    (``C3011`` → ``C30``), ``class`` → the code as given; ``""`` stays ``""`` (no industry)."""
    if level not in LEVELS:
        raise GradingError(f"industry level '{level}' is not one of {', '.join(LEVELS)}")
    s = pd.Series(np.asarray(codes, dtype=object)).fillna("").astype(str).str.strip().str.upper()
    return (s.str.slice(0, 3) if level == "division" else s).to_numpy(dtype=object)


def industry_name(key: str, lang: str = "zh", classes: dict | None = None) -> str:
    """A name for an industry key: a division from :data:`DIVISIONS`, a class from ``classes``
    (code → name, e.g. the region's ``industry_name_zh``), else the key itself."""
    if key in DIVISIONS:
        return DIVISIONS[key][0 if lang == "zh" else 1]
    if classes and key in classes and classes[key]:
        return str(classes[key])
    return str(key)
