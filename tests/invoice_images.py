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

import datetime as _dt
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
    "random_bill",
    "render_electricity_bill",
    "render_gas_bill",
    "render_heat_bill",
    "render_non_invoice",
    "render_steam_invoice",
    "render_water_bill",
    "scan",
    "to_bytes",
]

SIZE = (1000, 700)
INK = (25, 25, 25)
GREY = (110, 110, 110)
LINE = (150, 150, 150)


FAMILIES = {"sans": "Noto Sans CJK SC", "serif": "Noto Serif CJK SC", "mono": "Noto Sans Mono CJK SC"}


@cache
def _font_file(bold: bool = False, family: str = "sans") -> tuple[str, int]:
    """(file, face index) of a Noto CJK SC face (``family``: sans, serif, mono) via fontconfig,
    else a search of /usr/share/fonts (Debian's fonts-noto-cjk)."""
    name = FAMILIES[family]
    pattern = f"{name}:bold" if bold else name
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}|%{index}|%{family}", pattern], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        file, index, fam = (out.split("|") + ["", ""])[:3]
        if file and "CJK" in file and Path(file).exists() and (family == "sans" or name in fam):
            return file, int(index or 0)
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    stem = {"sans": "NotoSansCJK", "serif": "NotoSerifCJK", "mono": "NotoSansCJK"}[family]
    fname = f"{stem}-Bold.ttc" if bold else f"{stem}-Regular.ttc"
    for path in sorted(Path("/usr/share/fonts").rglob(f"{stem}*.tt*")):
        if path.name == fname:
            return str(path), 2 if family != "mono" else 7  # SC faces of the collections
    if family != "sans":
        return _font_file(bold, "sans")
    for path in sorted(Path("/usr/share/fonts").rglob("*CJK*")):
        return str(path), 0
    raise RuntimeError("no CJK font found (install fonts-noto-cjk)")


@cache
def font(size: int, bold: bool = False, family: str = "sans") -> ImageFont.FreeTypeFont:
    file, index = _font_file(bold, family)
    return ImageFont.truetype(file, size, index=index)


class _Page:
    """A white page with helpers for text, rules and simple ruled tables."""

    def __init__(self, size=SIZE, family: str = "sans", scale: float = 1.0):
        self.img = Image.new("RGB", size, "white")
        self.d = ImageDraw.Draw(self.img)
        self.family = family
        self.scale = scale          # font size factor (layout variation)
        self.ops: list = []         # text drawn, for the PDF twin (render_pdf)

    def text(self, xy, s, size=20, bold=False, fill=INK, anchor="la"):
        size = max(9, round(size * self.scale))
        self.d.text(xy, s, font=font(size, bold, self.family), fill=fill, anchor=anchor)
        self.ops.append(("text", xy, s, size, bold, fill, anchor))

    def rule(self, y, x0=40, x1=960, width=1, fill=LINE):
        self.d.line([(x0, y), (x1, y)], fill=fill, width=width)
        self.ops.append(("line", (x0, y, x1, y), width))

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
             "item": "grid", "quantity": 9850.0, "unit": "kWh", "amount": 6423.50, "currency": "CNY",
             "customer": "长兴华新水泥有限公司", "unit_price": 0.6521, "tax": None}
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
             "item": "natural_gas", "quantity": 12480.0, "unit": "Nm3", "amount": 48048.00, "currency": "CNY",
             "customer": "长兴华新水泥有限公司", "unit_price": 3.85, "tax": None}
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
             "item": "heat", "quantity": 1260.0, "unit": "t", "amount": 302148.00, "currency": "CNY",
             "customer": "长兴华新水泥有限公司", "unit_price": 220.0, "tax": 24948.0}
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
             "item": "heat", "quantity": 1876.0, "unit": "GJ", "amount": 183848.00, "currency": "CNY",
             "customer": "长兴华新水泥有限公司", "unit_price": 98.0, "tax": 15180.39}
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


# --------------------------------------------------------------------------- a corpus of random bills
#
# ``random_bill(seed)`` draws one bill: a layout (electricity notice, gas notice, heat settlement,
# water bill, VAT e-invoice for any of the four commodities, a compact key–value statement), a
# font family (Noto Sans / Serif / Sans Mono CJK SC, regular or bold headings), a font scale,
# label synonyms, suppliers, customers, account numbers, quantities, prices, tax and dates — and
# returns ``(image, truth)``; ``truth`` has every field of the connector (``tax``/``unit_price``
# ``None`` where the document does not print them).  The benchmark (benchmarks/invoice_calibration.py)
# OCRs hundreds of them, clean and degraded, to fit and measure the calibrated confidence.

FIELDS_ALL = ("date", "period", "supplier", "customer", "account_no", "item", "quantity", "unit", "unit_price",
              "amount", "tax", "currency")
LAYOUTS = ("electricity", "gas", "heat", "water", "vat", "statement")
CITIES = ("长兴", "湖州", "嘉兴", "绍兴", "宁波", "杭州", "金华", "衢州", "台州", "温州", "丽水", "舟山", "德清",
          "安吉", "海宁", "桐乡", "诸暨", "义乌", "余姚", "慈溪")
FIRMS = ("华新", "恒达", "永盛", "金鹰", "宏远", "天成", "瑞丰", "鑫源", "百川", "兴业", "海螺", "南方", "万向",
         "富丽", "东方", "明星", "联合", "远大", "中天", "新世纪")
TRADES = ("水泥", "钢铁", "印染", "纺织", "化工", "建材", "机械", "家具", "造纸", "玻璃", "铸造", "陶瓷")
SUPPLIERS = {
    "grid": ("国网{c}供电公司", "国网{c}市供电公司", "{c}供电有限公司"),
    "natural_gas": ("{c}新奥燃气有限公司", "{c}港华燃气有限公司", "{c}华润燃气有限公司", "{c}天然气有限公司"),
    "heat": ("{c}协鑫热电有限公司", "{c}城市热力有限公司", "{c}热电有限公司", "{c}能源热力有限公司"),
    "water": ("{c}水务集团有限公司", "{c}自来水有限公司", "{c}供水有限公司"),
}
_NAMES_ZH = {"grid": "电", "natural_gas": "气", "heat": "热", "water": "水"}


def _money(v: float, rng, sep=None) -> str:
    sep = rng.random() < 0.7 if sep is None else sep
    return f"{v:,.2f}" if sep else f"{v:.2f}"


def _qty(v: float, decimals: int, rng, sep=None) -> str:
    sep = rng.random() < 0.6 if sep is None else sep
    return f"{v:,.{decimals}f}" if sep else f"{v:.{decimals}f}"


def _pick(rng, options):
    return options[rng.randrange(len(options))]


def _account(rng, item) -> str:
    style = rng.randrange(4)
    if style == 0:
        return "".join(rng.choice("0123456789") for _ in range(10))
    prefix = {"grid": ("DL", "EP"), "natural_gas": ("GS", "RQ"), "heat": ("HR", "ZR"), "water": ("SW", "WS")}[item]
    n = (8, 10, 9)[style - 1]
    return rng.choice(prefix) + "".join(rng.choice("0123456789") for _ in range(n))


def bill_spec(seed: int, *, layout: str | None = None, item: str | None = None) -> dict:
    """The random content of one bill (deterministic per seed)."""
    rng = random.Random(seed)
    layout = layout or _pick(rng, LAYOUTS)
    if item is None:
        item = {"electricity": "grid", "gas": "natural_gas", "heat": "heat", "water": "water"}.get(layout) \
            or _pick(rng, ("grid", "natural_gas", "heat", "water"))
    city = _pick(rng, CITIES)
    supplier = _pick(rng, SUPPLIERS[item]).format(c=city)
    customer = f"{_pick(rng, CITIES)}{_pick(rng, FIRMS)}{_pick(rng, TRADES)}有限公司"
    year = rng.randint(2023, 2026)
    month = rng.randint(1, 12)
    last_day = (_dt.date(year + (month == 12), month % 12 + 1, 1) - _dt.timedelta(days=1)).day
    by, bm = (year + (month == 12), month % 12 + 1)
    bill_date = _dt.date(by, bm, rng.randint(1, 12))
    read_date = _dt.date(year, month, last_day)
    if item == "grid":
        unit, unit_zh, decimals = "kWh", _pick(rng, ("kWh", "千瓦时")), 0
        quantity = float(rng.randint(800, 2_000_000))
        price = round(rng.uniform(0.45, 1.05), 4)
    elif item == "natural_gas":
        unit = _pick(rng, ("Nm3", "m3"))
        unit_zh = {"Nm3": _pick(rng, ("Nm³", "标方")), "m3": _pick(rng, ("m³", "立方米"))}[unit]
        decimals = 0
        quantity = float(rng.randint(300, 300_000))
        price = round(rng.uniform(2.2, 4.9), 2)
    elif item == "heat":
        unit = _pick(rng, ("GJ", "t"))
        unit_zh = "GJ" if unit == "GJ" else _pick(rng, ("吨", "t"))
        decimals = 1 if unit == "GJ" else 0
        quantity = round(rng.uniform(80, 12_000), decimals)
        price = round(rng.uniform(55, 160) if unit == "GJ" else rng.uniform(150, 320), 2)
    else:
        unit, unit_zh, decimals = "m3", _pick(rng, ("m³", "立方米")), 0
        quantity = float(rng.randint(40, 60_000))
        price = round(rng.uniform(2.5, 8.5), 2)
    net = round(quantity * price, 2)
    rate = {"grid": 0.13, "natural_gas": 0.09, "heat": 0.09, "water": 0.09}[item]
    return {"seed": seed, "layout": layout, "item": item, "city": city, "supplier": supplier, "customer": customer,
            "account_no": _account(rng, item), "year": year, "month": month, "bill_date": bill_date,
            "read_date": read_date, "unit": unit, "unit_zh": unit_zh, "decimals": decimals, "quantity": quantity,
            "price": price, "net": net, "rate": rate, "tax": round(net * rate, 2),
            "family": _pick(rng, ("sans", "sans", "serif", "mono")), "scale": rng.uniform(0.9, 1.1),
            "rng": rng}


def _zh_date(d: _dt.date, rng) -> str:
    return _pick(rng, (f"{d.year}年{d.month:02d}月{d.day:02d}日", f"{d:%Y-%m-%d}", f"{d.year}年{d.month}月{d.day}日",
                       f"{d:%Y/%m/%d}"))


def _zh_period(sp, rng) -> str:
    y, m = sp["year"], sp["month"]
    last = sp["read_date"].day
    return _pick(rng, (f"{y}年{m:02d}月", f"{y}-{m:02d}", f"{y}年{m}月",
                       f"{y}-{m:02d}-01至{y}-{m:02d}-{last:02d}", f"{y}年{m:02d}月01日至{y}年{m:02d}月{last:02d}日"))


def _readings(sp, rng) -> tuple[str, str]:
    prev = rng.uniform(1_000, 5_000_000)
    q = sp["quantity"]
    d = sp["decimals"]
    return _qty(prev, d, rng), _qty(prev + q, d, rng)


def _truth(sp, *, date: _dt.date, unit_price=True, tax=None, amount=None) -> dict:
    return {"date": date.isoformat(), "period": f"{sp['year']}-{sp['month']:02d}", "supplier": sp["supplier"],
            "customer": sp["customer"], "account_no": sp["account_no"], "item": sp["item"],
            "quantity": float(sp["quantity"]), "unit": sp["unit"], "unit_price": sp["price"] if unit_price else None,
            "amount": float(amount if amount is not None else sp["net"]), "tax": tax, "currency": "CNY"}


def _layout_electricity(sp):
    rng = sp["rng"]
    p = _Page(SIZE, sp["family"], sp["scale"])
    colour = _pick(rng, ((0, 112, 96), (20, 80, 150), (60, 60, 60)))
    p.d.rectangle([0, 0, SIZE[0], 64], fill=colour)
    p.text((40, 14), _pick(rng, ("国家电网", "电费账单", "供电服务")), size=28, bold=True, fill="white")
    p.text((960, 16), _pick(rng, ("电费通知单", "电费缴费通知单", "电费账单")), size=26, bold=True, fill="white",
           anchor="ra")
    acc_l = _pick(rng, ("户号", "客户编号", "用户编号"))
    p.text((40, 100), f"{acc_l}：{sp['account_no']}", size=20)
    p.text((520, 100), f"{_pick(rng, ('户名', '客户名称', '用户名称'))}：{sp['customer']}", size=20)
    p.text((40, 136), f"用电地址：浙江省{sp['city']}市工业园区{rng.randint(1, 300)}号", size=20)
    p.text((40, 172), f"{_pick(rng, ('账期', '电费年月', '账单月份', '用电月份'))}：{_zh_period(sp, rng)}", size=20)
    with_bill_date = rng.random() < 0.5
    dl, dv = ("出账日期", sp["bill_date"]) if with_bill_date else ("抄表日期", sp["read_date"])
    p.text((600, 172), f"{dl}：{_zh_date(dv, rng)}", size=20)
    p.text((40, 208), f"供电单位：{sp['supplier']}", size=20)
    p.text((600, 208), f"用电类别：{_pick(rng, ('大工业用电', '一般工商业', '普通工业'))}", size=20)
    p.rule(246)
    prev, cur = _readings(sp, rng)
    y = p.table(40, 260, [170, 200, 200, 110, 240], [
        ["示数类型", "上期示数", "本期示数", "倍率", f"抄见电量({sp['unit_zh']})"],
        ["有功(总)", prev, cur, "1", _qty(sp["quantity"], 0, rng)],
    ])
    qlabel = _pick(rng, ("本期电量", "结算电量", "用电量", "计费电量"))
    p.text((40, y + 24), f"{qlabel}：{_qty(sp['quantity'], 0, rng)} {sp['unit_zh']}", size=22, bold=True)
    p.text((520, y + 24), f"{_pick(rng, ('平均电价', '电价'))}：{sp['price']:.4f}元/{sp['unit_zh']}", size=20)
    tax = None
    if rng.random() < 0.4:
        tax = round(sp["net"] - sp["net"] / 1.13, 2)
        p.text((520, y + 64), f"其中税额：¥{_money(tax, rng)}", size=20)
    p.text((40, y + 64), f"电度电费：¥{_money(sp['net'], rng)}", size=20)
    p.rule(y + 104)
    al = _pick(rng, ("应缴金额", "本期应缴", "电费合计", "应付金额"))
    p.text((40, y + 118), f"{al}：¥{_money(sp['net'], rng)}", size=24, bold=True)
    p.text((40, y + 164), f"缴费截止日期：{_zh_date(sp['bill_date'] + _dt.timedelta(days=15), rng)}    客服热线：95598",
           size=18, fill=GREY)
    return p, _truth(sp, date=dv, tax=tax)


def _layout_gas(sp):
    rng = sp["rng"]
    p = _Page(SIZE, sp["family"], sp["scale"])
    p.text((500, 30), sp["supplier"], size=30, bold=True, anchor="ma")
    p.text((500, 76), _pick(rng, ("天然气费缴费通知单", "燃气费账单", "用气缴费通知")), size=22, anchor="ma")
    p.rule(114, width=2, fill=(200, 120, 0))
    p.text((40, 132), f"{_pick(rng, ('客户编号', '用户编号', '户号'))}：{sp['account_no']}", size=20)
    p.text((520, 132), f"{_pick(rng, ('客户名称', '户名', '用户名称'))}：{sp['customer']}", size=20)
    p.text((40, 168), f"用气地址：{sp['city']}市经济开发区{rng.randint(1, 300)}号", size=20)
    p.text((520, 168), f"表号：TR{rng.randint(1000000, 9999999)}", size=20)
    p.text((40, 204), f"{_pick(rng, ('计费周期', '结算周期', '账期'))}：{_zh_period(sp, rng)}", size=20)
    p.text((600, 204), f"出账日期：{_zh_date(sp['bill_date'], rng)}", size=20)
    prev, cur = _readings(sp, rng)
    u = sp["unit_zh"]
    y = p.table(40, 250, [200, 200, 180, 160, 180], [
        [f"上期读数({u})", f"本期读数({u})", f"用气量({u})", f"单价(元/{u})", "金额(元)"],
        [prev, cur, _qty(sp["quantity"], 0, rng), f"{sp['price']:.2f}", _money(sp["net"], rng)],
    ], size=17)
    p.text((40, y + 30), f"{_pick(rng, ('本期用气量', '结算气量', '用气量'))}：{_qty(sp['quantity'], 0, rng)} {u}",
           size=22, bold=True)
    p.text((560, y + 30), "上期结余：¥0.00", size=20)
    al = _pick(rng, ("燃气费合计", "应缴金额", "费用合计", "本期应缴"))
    p.text((40, y + 74), f"{al}：¥{_money(sp['net'], rng)}", size=24, bold=True)
    p.text((560, y + 78), "滞纳金：¥0.00", size=20)
    p.rule(y + 124)
    p.text((40, y + 140), f"收款单位：{sp['supplier']}", size=20)
    p.text((40, y + 178), "温馨提示：请按时缴清燃气费。服务热线：96777", size=18, fill=GREY)
    return p, _truth(sp, date=sp["bill_date"])


def _layout_heat(sp):
    rng = sp["rng"]
    p = _Page(SIZE, sp["family"], sp["scale"])
    p.text((40, 28), sp["supplier"], size=28, bold=True, fill=(160, 30, 30))
    p.text((960, 34), _pick(rng, ("热量结算单", "蒸汽结算单", "供热结算单")), size=24, bold=True, anchor="ra")
    p.rule(80, width=2, fill=(160, 30, 30))
    p.text((40, 100), f"{_pick(rng, ('用户编号', '客户编号'))}：{sp['account_no']}", size=20)
    p.text((520, 100), f"{_pick(rng, ('用户名称', '客户名称'))}：{sp['customer']}", size=20)
    p.text((40, 136), f"{_pick(rng, ('结算月份', '计费月份', '所属期'))}：{sp['year']}年{sp['month']:02d}月", size=20)
    p.text((520, 136), f"结算日期：{_zh_date(sp['bill_date'], rng)}", size=20)
    p.text((40, 172), "供热方式：蒸汽管网", size=20)
    p.text((520, 172), "计量方式：热量表" if sp["unit"] == "GJ" else "计量方式：流量计", size=20)
    prev, cur = _readings(sp, rng)
    u = sp["unit_zh"]
    qword = "用热量" if sp["unit"] == "GJ" else "用汽量"
    y = p.table(40, 220, [170, 160, 160, 140, 130, 160], [
        ["计量点", f"上期表底({u})", f"本期表底({u})", f"{qword}({u})", f"单价(元/{u})", "金额(元)"],
        ["1#入口", prev, cur, _qty(sp["quantity"], sp["decimals"], rng), f"{sp['price']:.2f}", _money(sp["net"], rng)],
    ], size=17)
    p.text((40, y + 30), f"本期{qword}：{_qty(sp['quantity'], sp['decimals'], rng)} {u}", size=22, bold=True)
    p.text((520, y + 30), f"折标准煤：{sp['quantity'] * 0.0341:.1f} tce", size=20)
    p.text((40, y + 74), f"{_pick(rng, ('应付金额', '应缴金额', '热费合计'))}：¥{_money(sp['net'], rng)}", size=24,
           bold=True)
    tax = None
    if rng.random() < 0.5:
        tax = round(sp["net"] - sp["net"] / 1.09, 2)
        p.text((520, y + 78), f"其中税额：¥{_money(tax, rng)}", size=20)
    p.rule(y + 124)
    p.text((40, y + 140), f"供热单位：{sp['supplier']}", size=20)
    p.text((40, y + 178), f"开户行：{sp['city']}农商银行  账号：{rng.randint(10**14, 10**15 - 1)}", size=18, fill=GREY)
    return p, _truth(sp, date=sp["bill_date"], tax=tax)


def _layout_water(sp):
    rng = sp["rng"]
    p = _Page(SIZE, sp["family"], sp["scale"])
    p.d.rectangle([0, 0, SIZE[0], 70], fill=(30, 100, 170))
    p.text((40, 18), sp["supplier"], size=28, bold=True, fill="white")
    p.text((960, 22), _pick(rng, ("水费缴费通知单", "水费账单", "自来水费通知单")), size=24, bold=True, fill="white",
           anchor="ra")
    p.text((40, 96), f"{_pick(rng, ('用户号', '户号', '客户编号'))}：{sp['account_no']}", size=20)
    p.text((520, 96), f"{_pick(rng, ('户名', '用户名称'))}：{sp['customer']}", size=20)
    p.text((40, 132), f"用水地址：{sp['city']}市工业园区{rng.randint(1, 300)}号", size=20)
    p.text((40, 168), f"{_pick(rng, ('抄表周期', '账期', '计费周期'))}：{_zh_period(sp, rng)}", size=20)
    p.text((600, 168), f"抄表日期：{_zh_date(sp['read_date'], rng)}", size=20)
    p.text((40, 204), f"用水性质：{_pick(rng, ('非居民用水', '工业用水'))}", size=20)
    prev, cur = _readings(sp, rng)
    u = sp["unit_zh"]
    y = p.table(40, 246, [190, 190, 180, 170, 190], [
        ["上次抄表数", "本次抄表数", f"用水量({u})", f"单价(元/{u})", "水费(元)"],
        [prev, cur, _qty(sp["quantity"], 0, rng), f"{sp['price']:.2f}", _money(sp["net"], rng)],
    ], size=17)
    p.text((40, y + 30), f"{_pick(rng, ('本期用水量', '用水量', '实用水量'))}：{_qty(sp['quantity'], 0, rng)} {u}",
           size=22, bold=True)
    p.text((40, y + 74), f"{_pick(rng, ('应缴水费', '水费合计', '应缴金额'))}：¥{_money(sp['net'], rng)}", size=24,
           bold=True)
    p.rule(y + 120)
    p.text((40, y + 136), f"供水单位：{sp['supplier']}", size=20)
    p.text((40, y + 174), "供水服务热线：96390    请于收到通知后15日内缴费", size=18, fill=GREY)
    return p, _truth(sp, date=sp["read_date"])


_VAT_ITEMS = {"grid": ("*供电*电费", "13%"), "natural_gas": ("*燃气*天然气", "9%"), "heat": ("*热力*蒸汽", "9%"),
              "water": ("*水冰雪*自来水", "9%")}


def _layout_vat(sp):
    rng = sp["rng"]
    size = (1000, 720)
    p = _Page(size, sp["family"], sp["scale"])
    p.text((500, 24), _pick(rng, ("电子发票（增值税专用发票）", "电子发票（普通发票）")), size=28, bold=True,
           fill=(150, 40, 30), anchor="ma")
    p.rule(68, x0=330, x1=670, width=2, fill=(150, 40, 30))
    p.text((680, 84), f"发票号码：{rng.randint(10**19, 10**20 - 1)}", size=16)
    p.text((680, 110), f"开票日期：{_zh_date(sp['bill_date'], rng)}", size=16)
    p.d.rectangle([40, 140, 960, 250], outline=LINE)
    p.d.line([(500, 140), (500, 250)], fill=LINE)
    p.text((56, 150), "购买方信息", size=18, bold=True)
    p.text((56, 184), f"名称：{sp['customer']}", size=18)
    p.text((56, 216), f"统一社会信用代码：91330{rng.randint(10**12, 10**13 - 1)}", size=16)
    p.text((516, 150), "销售方信息", size=18, bold=True)
    p.text((516, 184), f"名称：{sp['supplier']}", size=18)
    p.text((516, 216), f"统一社会信用代码：91330{rng.randint(10**12, 10**13 - 1)}", size=16)
    name, rate = _VAT_ITEMS[sp["item"]]
    u = sp["unit_zh"] if sp["unit"] != "t" else "吨"
    price = f"{sp['price']:.4f}" if sp["item"] == "grid" else f"{sp['price']:.2f}"
    y = p.table(40, 264, [170, 110, 80, 110, 100, 150, 80, 120], [
        ["项目名称", "规格型号", "单位", "数量", "单价", "金额", "税率", "税额"],
        [name, "", u, _qty(sp["quantity"], sp["decimals"], rng), price, _money(sp["net"], rng), rate,
         _money(sp["tax"], rng)],
        ["合计", "", "", "", "", f"¥{_money(sp['net'], rng)}", "", f"¥{_money(sp['tax'], rng)}"],
    ], size=16)
    total = round(sp["net"] + sp["tax"], 2)
    p.d.rectangle([40, y, 960, y + 44], outline=LINE)
    p.text((56, y + 12), "价税合计（大写）", size=18)
    p.text((230, y + 12), "（见小写）", size=18)
    p.text((640, y + 12), f"（小写）¥{_money(total, rng)}", size=18)
    p.d.rectangle([40, y + 44, 960, y + 130], outline=LINE)
    p.text((56, y + 60), f"备注：{_pick(rng, ('客户编号', '户号', '用户编号'))}：{sp['account_no']}", size=18)
    p.text((560, y + 60), f"所属期：{sp['year']}年{sp['month']:02d}月", size=18)
    p.text((56, y + 150), f"开票人：{_pick(rng, ('王丽', '李强', '张敏', '陈静'))}", size=18)
    return p, _truth(sp, date=sp["bill_date"], tax=sp["tax"], amount=total)


def _layout_statement(sp):
    """A compact key–value statement (online-banking / app style), values right-aligned."""
    rng = sp["rng"]
    size = (760, 900)
    p = _Page(size, sp["family"], sp["scale"])
    word = {"grid": "电费", "natural_gas": "燃气费", "heat": "热费", "water": "水费"}[sp["item"]]
    p.text((380, 30), f"{word}账单", size=30, bold=True, anchor="ma")
    p.text((380, 80), sp["supplier"], size=20, fill=GREY, anchor="ma")
    p.rule(120, x0=40, x1=720)
    qword = {"grid": "用电量", "natural_gas": "用气量", "heat": "用热量" if sp["unit"] == "GJ" else "用汽量",
             "water": "用水量"}[sp["item"]]
    slabel = {"grid": "供电单位", "natural_gas": "供气单位", "heat": "供热单位", "water": "供水单位"}[sp["item"]]
    with_tax = rng.random() < 0.3
    tax = round(sp["net"] - sp["net"] / (1 + sp["rate"]), 2) if with_tax else None
    rows = [(_pick(rng, ("户号", "客户编号", "用户编号")), sp["account_no"]),
            (_pick(rng, ("户名", "客户名称")), sp["customer"]),
            (slabel, sp["supplier"]),
            (_pick(rng, ("账单月份", "计费月份", "账期")), f"{sp['year']}年{sp['month']:02d}月"),
            ("出账日期", _zh_date(sp["bill_date"], rng)),
            (qword, f"{_qty(sp['quantity'], sp['decimals'], rng)} {sp['unit_zh']}"),
            ("单价", f"{sp['price']:.4f}元/{sp['unit_zh']}" if sp["item"] == "grid" else f"{sp['price']:.2f}元/{sp['unit_zh']}"),
            (_pick(rng, ("本期应缴", "应缴金额", "费用合计")), f"¥{_money(sp['net'], rng)}")]
    if with_tax:
        rows.append(("其中税额", f"¥{_money(tax, rng)}"))
    y = 150
    for k, v in rows:
        p.text((50, y), k, size=22, fill=GREY)
        p.text((710, y), v, size=22, anchor="ra")
        y += 64
    p.rule(y, x0=40, x1=720)
    p.text((380, y + 30), "感谢您的支持，请按时缴费", size=18, fill=GREY, anchor="ma")
    return p, _truth(sp, date=sp["bill_date"], tax=tax)


_LAYOUT_FUNCS = {"electricity": _layout_electricity, "gas": _layout_gas, "heat": _layout_heat,
                 "water": _layout_water, "vat": _layout_vat, "statement": _layout_statement}


def random_bill(seed: int, *, layout: str | None = None, item: str | None = None, with_page: bool = False):
    """``(image, truth)`` of a random bill (see :func:`bill_spec`); ``truth["_layout"]`` etc. are
    not fields.  ``with_page``: also return the page (its text operations feed :func:`render_pdf`)."""
    sp = bill_spec(seed, layout=layout, item=item)
    page, truth = _LAYOUT_FUNCS[sp["layout"]](sp)
    meta = {"layout": sp["layout"], "family": sp["family"], "scale": round(sp["scale"], 3), "seed": seed}
    if with_page:
        return page.img, truth, meta, page
    return page.img, truth, meta


def render_water_bill():
    """A water bill (水费缴费通知单) in m³, from the random corpus with a fixed seed."""
    img, truth, _ = random_bill(4, layout="water")
    return img, truth


def scan(img: Image.Image, seed: int, *, level: str = "mild") -> tuple[Image.Image, dict]:
    """A random scan degradation: any of blur, noise, rotation, low resolution and JPEG
    (``level``: ``mild`` — an office scanner — or ``harsh`` — a phone photo of a fax)."""
    from PIL import ImageFilter

    rng = random.Random(seed * 7919 + 13)
    harsh = level == "harsh"
    p = {"scale": rng.uniform(0.42, 0.6) if harsh else rng.uniform(0.6, 0.9),
         "angle": rng.uniform(-3.0, 3.0) if harsh else rng.uniform(-1.5, 1.5),
         "noise": rng.uniform(6, 14) if harsh else rng.uniform(0, 6),
         "blur": rng.uniform(0.6, 1.3) if harsh else rng.uniform(0, 0.7),
         "quality": rng.randint(25, 50) if harsh else rng.randint(50, 90)}
    w, h = img.size
    out = img.convert("RGB")
    if p["blur"] > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(p["blur"]))
    out = out.resize((max(1, round(w * p["scale"])), max(1, round(h * p["scale"]))), Image.BILINEAR)
    out = out.resize((w, h), Image.BILINEAR)
    out = out.rotate(p["angle"], resample=Image.BICUBIC, expand=False, fillcolor="white")
    if p["noise"] > 0.5:
        arr = np.asarray(out, dtype=np.float32)
        arr = arr + np.random.default_rng(seed).normal(0.0, p["noise"], arr.shape[:2])[..., None]
        out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=p["quality"])
    buf.seek(0)
    result = Image.open(buf)
    result.load()
    return result, {k: round(v, 3) if isinstance(v, float) else v for k, v in p.items()}


def render_pdf(page, *, text_layer: bool = True) -> bytes:
    """The PDF twin of a rendered page: the same text at the same places with a text layer
    (reportlab, the Adobe-Song CID font every PDF reader knows — no font file embedded), or, with
    ``text_layer=False``, the page image alone (a scanned PDF)."""
    if not text_layer:
        buf = io.BytesIO()
        page.img.convert("RGB").save(buf, format="PDF", resolution=100.0)
        return buf.getvalue()
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    try:
        pdfmetrics.getFont("STSong-Light")
    except KeyError:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    w, h = page.img.size
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(w, h))
    for op in page.ops:
        if op[0] == "line":
            x0, y0, x1, y1 = op[1]
            c.setLineWidth(op[2])
            c.line(x0, h - y0, x1, h - y1)
            continue
        _, (x, y), s, size, _bold, fill, anchor = op
        c.setFont("STSong-Light", size)
        s = s.replace("³", "3")  # the CID font has no superscript three
        rgb = (0, 0, 0) if fill in ("white", INK) else tuple(v / 255 for v in fill) if isinstance(fill, tuple) else (0, 0, 0)
        c.setFillColorRGB(*rgb)
        base = h - (y + size * 0.35) if anchor[1] == "m" else h - (y + size * 0.88)
        if anchor[0] == "m":
            c.drawCentredString(x, base, s)
        elif anchor[0] == "r":
            c.drawRightString(x, base, s)
        else:
            c.drawString(x, base, s)
    c.showPage()
    c.save()
    return buf.getvalue()
