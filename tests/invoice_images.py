"""Rendered test invoices: Chinese utility bills drawn with PIL and the Noto CJK font.

Each ``render_*`` function returns ``(image, truth)`` — a 1000×700 RGB :class:`PIL.Image.Image`
laid out like the real document (header, key–value blocks, a meter/line-item table with distractor
numbers such as previous/current register readings, unit prices, tax) and the ground truth the OCR
connector must extract (``date``, ``period``, ``supplier``, ``account_no``, ``item``, ``quantity``,
``unit``, ``amount``, ``currency``).

:func:`degrade` makes a scanned/photographed version of an image, deterministically per seed:
downscale to 50–60 % and back (low resolution), slight rotation (±2–3°), gaussian noise and JPEG
re-compression.
"""
from __future__ import annotations

import io
import random
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "BILLS",
    "degrade",
    "font",
    "render",
    "render_electricity_bill",
    "render_gas_bill",
    "render_heat_bill",
    "render_non_invoice",
    "render_steam_invoice",
    "to_bytes",
]

SIZE = (1000, 700)
INK = (25, 25, 25)
GREY = (110, 110, 110)
LINE = (150, 150, 150)


@cache
def _font_file(bold: bool = False) -> tuple[str, int]:
    """(file, face index) of Noto Sans CJK SC, via fontconfig, else a search of /usr/share/fonts."""
    pattern = "Noto Sans CJK SC:bold" if bold else "Noto Sans CJK SC"
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}|%{index}", pattern], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        file, _, index = out.partition("|")
        if file and "CJK" in file and Path(file).exists():
            return file, int(index or 0)
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    name = "NotoSansCJK-Bold.ttc" if bold else "NotoSansCJK-Regular.ttc"
    for path in sorted(Path("/usr/share/fonts").rglob("NotoSansCJK*.tt*")):
        if path.name == name:
            return str(path), 2  # face 2 of the collection is SC
    for path in sorted(Path("/usr/share/fonts").rglob("*CJK*")):
        return str(path), 0
    raise RuntimeError("no CJK font found (install fonts-noto-cjk)")


@cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    file, index = _font_file(bold)
    return ImageFont.truetype(file, size, index=index)


class _Page:
    """A white page with helpers for text, rules and simple ruled tables."""

    def __init__(self, size=SIZE):
        self.img = Image.new("RGB", size, "white")
        self.d = ImageDraw.Draw(self.img)

    def text(self, xy, s, size=20, bold=False, fill=INK, anchor="la"):
        self.d.text(xy, s, font=font(size, bold), fill=fill, anchor=anchor)

    def rule(self, y, x0=40, x1=960, width=1, fill=LINE):
        self.d.line([(x0, y), (x1, y)], fill=fill, width=width)

    def table(self, x0, y0, widths, rows, row_h=38, size=18, header_fill=(238, 238, 238)):
        """Ruled table; ``rows[0]`` is the header.  Cell text is centred."""
        x1 = x0 + sum(widths)
        y1 = y0 + row_h * len(rows)
        self.d.rectangle([x0, y0, x0 + sum(widths), y0 + row_h], fill=header_fill)
        for r in range(len(rows) + 1):
            self.d.line([(x0, y0 + r * row_h), (x1, y0 + r * row_h)], fill=LINE, width=1)
        x = x0
        for w in widths:
            self.d.line([(x, y0), (x, y1)], fill=LINE, width=1)
            x += w
        self.d.line([(x1, y0), (x1, y1)], fill=LINE, width=1)
        for r, row in enumerate(rows):
            x = x0
            for w, cell in zip(widths, row):
                if cell:
                    self.text((x + w / 2, y0 + r * row_h + row_h / 2), cell, size=size, anchor="mm")
                x += w
        return y1


# --------------------------------------------------------------------------- bills

def render_electricity_bill():
    """State Grid–style monthly electricity bill (电费通知单): 户号, 账期 2025年06月, 9,850 kWh, ¥6,423.50."""
    p = _Page()
    p.d.rectangle([0, 0, SIZE[0], 64], fill=(0, 112, 96))
    p.text((40, 14), "国家电网", size=28, bold=True, fill="white")
    p.text((175, 22), "STATE GRID", size=18, fill="white")
    p.text((960, 16), "电费通知单", size=26, bold=True, fill="white", anchor="ra")
    p.text((40, 78), "国网浙江省电力有限公司", size=18, fill=GREY)
    p.text((40, 116), "户号：3301234567", size=20)
    p.text((520, 116), "户名：长兴华新水泥有限公司", size=20)
    p.text((40, 152), "用电地址：浙江省湖州市长兴县煤山镇工业园区88号", size=20)
    p.text((40, 188), "账期：2025年06月", size=20)
    p.text((520, 188), "抄表日期：2025年06月30日", size=20)
    p.text((40, 224), "供电单位：国网湖州供电公司", size=20)
    p.text((520, 224), "用电类别：大工业用电", size=20)
    p.rule(262)
    y = p.table(40, 276, [170, 170, 170, 110, 300], [
        ["示数类型", "上期示数", "本期示数", "倍率", "抄见电量(kWh)"],
        ["有功(总)", "4,215.30", "4,412.30", "50", "9,850"],
        ["有功(峰)", "1,402.10", "1,468.10", "50", "3,300"],
        ["有功(谷)", "1,611.40", "1,680.40", "50", "3,450"],
    ])
    p.text((40, y + 24), "本期电量：9,850 kWh", size=22, bold=True)
    p.text((520, y + 24), "平均电价：0.6521元/kWh", size=20)
    p.text((40, y + 64), "电度电费：¥6,098.50", size=20)
    p.text((520, y + 64), "功率因数调整电费：¥325.00", size=20)
    p.rule(y + 104)
    p.text((40, y + 118), "应缴金额：¥6,423.50", size=24, bold=True)
    p.text((520, y + 122), "大写：陆仟肆佰贰拾叁元伍角整", size=20)
    p.text((40, y + 164), "缴费截止日期：2025年07月15日    客服热线：95598", size=18, fill=GREY)
    truth = {"date": "2025-06-30", "period": "2025-06", "supplier": "国网湖州供电公司", "account_no": "3301234567",
                 "item": "grid", "quantity": 9850.0, "unit": "kWh", "amount": 6423.50, "currency": "CNY"}
    return p.img, truth


def render_gas_bill():
    """Piped natural-gas bill (燃气费缴费通知单): 客户编号, 计费周期, 用气量 12,480 Nm³, ¥48,048.00."""
    p = _Page()
    p.text((500, 30), "长兴新奥燃气有限公司", size=30, bold=True, anchor="ma")
    p.text((500, 76), "天然气费缴费通知单", size=22, anchor="ma")
    p.rule(114, width=2, fill=(200, 120, 0))
    p.text((40, 132), "客户编号：GS0571008817", size=20)
    p.text((520, 132), "客户名称：长兴华新水泥有限公司", size=20)
    p.text((40, 168), "用气地址：长兴县煤山镇工业园区88号", size=20)
    p.text((520, 168), "表号：TR2209115", size=20)
    p.text((40, 204), "计费周期：2025-05-01至2025-05-31", size=20)
    p.text((520, 204), "出账日期：2025-06-03", size=20)
    y = p.table(40, 250, [200, 200, 180, 160, 180], [
        ["上期读数(Nm³)", "本期读数(Nm³)", "用气量(Nm³)", "单价(元/Nm³)", "金额(元)"],
        ["1,204,560", "1,217,040", "12,480", "3.85", "48,048.00"],
    ])
    p.text((40, y + 30), "本期用气量：12,480 Nm³", size=22, bold=True)
    p.text((520, y + 30), "上期结余：¥0.00", size=20)
    p.text((40, y + 74), "燃气费合计：¥48,048.00", size=24, bold=True)
    p.text((520, y + 78), "滞纳金：¥0.00", size=20)
    p.rule(y + 124)
    p.text((40, y + 140), "收款单位：长兴新奥燃气有限公司", size=20)
    p.text((40, y + 178), "温馨提示：请于2025年06月20日前缴清燃气费。服务热线：96777", size=18, fill=GREY)
    truth = {"date": "2025-06-03", "period": "2025-05", "supplier": "长兴新奥燃气有限公司", "account_no": "GS0571008817",
                 "item": "natural_gas", "quantity": 12480.0, "unit": "Nm3", "amount": 48048.00, "currency": "CNY"}
    return p.img, truth


def render_steam_invoice():
    """VAT special invoice (数电票) for process steam: two-column buyer/seller block, line-item
    table (项目名称 *热力*蒸汽, 单位 吨, 数量 1,260), 价税合计 ¥302,148.00, 所属期 in 备注."""
    p = _Page()
    p.text((500, 24), "电子发票（增值税专用发票）", size=28, bold=True, fill=(150, 40, 30), anchor="ma")
    p.rule(68, x0=330, x1=670, width=2, fill=(150, 40, 30))
    p.text((680, 84), "发票号码：25332000000012345678", size=16)
    p.text((680, 110), "开票日期：2025年07月05日", size=16)
    p.d.rectangle([40, 140, 960, 250], outline=LINE)
    p.d.line([(500, 140), (500, 250)], fill=LINE)
    p.text((56, 150), "购买方信息", size=18, bold=True)
    p.text((56, 184), "名称：长兴华新水泥有限公司", size=18)
    p.text((56, 216), "统一社会信用代码：91330522MA2B3C4D5E", size=16)
    p.text((516, 150), "销售方信息", size=18, bold=True)
    p.text((516, 184), "名称：长兴协鑫热电有限公司", size=18)
    p.text((516, 216), "统一社会信用代码：913305227045123456", size=16)
    y = p.table(40, 264, [170, 130, 70, 100, 100, 150, 80, 120], [
        ["项目名称", "规格型号", "单位", "数量", "单价", "金额", "税率", "税额"],
        ["*热力*蒸汽", "1.0MPa", "吨", "1,260", "220.00", "277,200.00", "9%", "24,948.00"],
        ["合计", "", "", "", "", "¥277,200.00", "", "¥24,948.00"],
    ], size=16)
    p.d.rectangle([40, y, 960, y + 44], outline=LINE)
    p.text((56, y + 12), "价税合计（大写）", size=18)
    p.text((230, y + 12), "叁拾万贰仟壹佰肆拾捌圆整", size=18)
    p.text((640, y + 12), "（小写）¥302,148.00", size=18)
    p.d.rectangle([40, y + 44, 960, y + 130], outline=LINE)
    p.text((56, y + 60), "备注：客户编号：ZR20170917", size=18)
    p.text((520, y + 60), "所属期：2025年06月", size=18)
    p.text((56, y + 94), "供汽压力1.0MPa 饱和蒸汽 计量表号S-03", size=16, fill=GREY)
    p.text((56, y + 150), "开票人：王丽", size=18)
    truth = {"date": "2025-07-05", "period": "2025-06", "supplier": "长兴协鑫热电有限公司", "account_no": "ZR20170917",
                 "item": "heat", "quantity": 1260.0, "unit": "t", "amount": 302148.00, "currency": "CNY"}
    return p.img, truth


def render_heat_bill():
    """District-heat settlement statement in GJ (热量结算单): 用户编号, 结算月份, 1,876.0 GJ, ¥183,848.00."""
    p = _Page()
    p.text((40, 28), "长兴城市热力有限公司", size=28, bold=True, fill=(160, 30, 30))
    p.text((960, 34), "热量结算单", size=24, bold=True, anchor="ra")
    p.rule(80, width=2, fill=(160, 30, 30))
    p.text((40, 100), "用户编号：HR3305220456", size=20)
    p.text((520, 100), "用户名称：长兴华新水泥有限公司", size=20)
    p.text((40, 136), "结算月份：2025年06月", size=20)
    p.text((520, 136), "结算日期：2025年07月02日", size=20)
    p.text((40, 172), "供热方式：蒸汽管网", size=20)
    p.text((520, 172), "计量方式：热量表", size=20)
    y = p.table(40, 220, [170, 160, 160, 140, 130, 160], [
        ["计量点", "上期表底(GJ)", "本期表底(GJ)", "用热量(GJ)", "单价(元/GJ)", "金额(元)"],
        ["1#入口", "18,230.5", "20,106.5", "1,876.0", "98.00", "183,848.00"],
    ])
    p.text((40, y + 30), "本期用热量：1,876.0 GJ", size=22, bold=True)
    p.text((520, y + 30), "折标准煤：64.0 tce", size=20)
    p.text((40, y + 74), "应付金额：¥183,848.00", size=24, bold=True)
    p.text((520, y + 78), "其中税额：¥15,180.39", size=20)
    p.rule(y + 124)
    p.text((40, y + 140), "供热单位：长兴城市热力有限公司", size=20)
    p.text((40, y + 178), "开户行：长兴农商银行  账号：201000123456789", size=18, fill=GREY)
    truth = {"date": "2025-07-02", "period": "2025-06", "supplier": "长兴城市热力有限公司", "account_no": "HR3305220456",
                 "item": "heat", "quantity": 1876.0, "unit": "GJ", "amount": 183848.00, "currency": "CNY"}
    return p.img, truth


def render_non_invoice():
    """Not an invoice: a short meeting notice (Chinese text, no bill fields)."""
    p = _Page()
    p.text((500, 40), "关于召开安全生产例会的通知", size=28, bold=True, anchor="ma")
    lines = ["各车间、各部门：", "定于本周五下午三点在三楼会议室召开安全生产例会，", "请各部门负责人准时参加，并提前准备本部门工作汇报材料。",
             "会议议程：一、通报上月安全检查情况；二、布置下阶段重点工作。", "特此通知。"]
    for i, s in enumerate(lines):
        p.text((60, 130 + 44 * i), s, size=22)
    p.text((940, 420), "综合办公室", size=22, anchor="ra")
    return p.img, {}


BILLS = {
    "electricity": render_electricity_bill,
    "gas": render_gas_bill,
    "steam": render_steam_invoice,
    "heat": render_heat_bill,
}


def render(kind: str):
    """``(image, truth)`` of one of :data:`BILLS`."""
    return BILLS[kind]()


# --------------------------------------------------------------------------- degradation

def degrade(img: Image.Image, seed: int, *, scale=None, angle=None, noise=None, quality=None) -> Image.Image:
    """A scanned/photographed version of ``img``, the same for the same seed.

    Low resolution (downscale to 50–60 %, back up with bilinear), rotation by ±2–3° (white fill),
    gaussian noise (σ 6–10 grey levels) and JPEG re-compression (quality 35–55).  Any of the four
    can be fixed by keyword.
    """
    rng = random.Random(seed)
    scale = rng.uniform(0.50, 0.60) if scale is None else scale
    angle = (rng.choice((-1, 1)) * rng.uniform(2.0, 3.0)) if angle is None else angle
    noise = rng.uniform(6.0, 10.0) if noise is None else noise
    quality = rng.randint(35, 55) if quality is None else quality
    w, h = img.size
    small = img.convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    out = small.resize((w, h), Image.BILINEAR)
    out = out.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor="white")
    arr = np.asarray(out, dtype=np.float32)
    arr = arr + np.random.default_rng(seed).normal(0.0, noise, arr.shape[:2])[..., None]
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    result = Image.open(buf)
    result.load()
    result.info["degrade"] = {"seed": seed, "scale": scale, "angle": angle, "noise": noise, "quality": quality}
    return result


def to_bytes(img: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()
