"""A synthetic regional population of enterprises (示例区域) — the input for regional grading.

``generate_region(out, enterprises=N, seed=S, province="CN-ZJ")`` writes N fictitious 规上 industrial
enterprises spread over the sectors of :data:`SECTORS` and the real county-level divisions of one
province (GB/T 2260 codes), each with twelve months of energy by carrier, output by product and
value added:

===================  ===========================================================================
``enterprises.csv``  one row per enterprise: id, name, sector, route, GB/T 4754 code, county, city,
                     USCC (fictitious, GB 32100 check character valid), annual output, revenue,
                     value added
``intensities.csv``  the enterprise's energy intensities: carrier per unit of product, and the
                     drawn value they come from (kgce/t for coal)
``energy.csv``       enterprise_id, period, carrier, item (factor-library code), quantity, unit
``output.csv``       enterprise_id, period, product, quantity, unit
``value_added.csv``  enterprise_id, period, value_added_10k_cny
``counties.csv``     the province's county-level divisions and how many enterprises each got
``sectors.csv``      every distribution parameter with its basis (source or "illustrative")
``README.md``        columns and sources
===================  ===========================================================================

The monthly tables are also written as Parquet (same names, ``.parquet``).

How an enterprise is made (all draws from the enterprise's own stream
``SeedSequence([seed, crc32(province)]).spawn(N)[k]``, so enterprise *k* is the same whatever N):

1. sector by the sector weights, route within the sector (e.g. integrated cement plant or grinding
   station), county by the sector's county weights;
2. annual output of the route's main product: lognormal (median, σ), truncated to the route's range;
   the lower bound keeps revenue (output × illustrative price) ≥ 2,000 万元, the 规上 threshold
   (annual main-business revenue ≥ 20 M CNY — ``/work/shared/reference/applications.md`` §5, [E5]);
   derived products by a drawn ratio (clinker → cement, billet → rolled bar);
3. energy intensities per carrier and product, drawn once per enterprise (normal, truncated); for
   cement and EAF steel centred on the grades of the national energy-consumption limit standards
   (GB 16780-2021, GB 21256-2025 — ``applications.md`` §2); elsewhere illustrative;
4. months: the annual output spread over the months by operating days (a Spring-Festival stop of
   the sector's length) × (1 + 4 % noise); **energy = intensity × output** and **value added = value
   added per unit × output of the sales product**, month by month, from the written (rounded) values.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.demo.engine import _CNY, uscc

__all__ = ["generate_region", "SECTORS", "PROVINCES", "counties", "DEFAULT_REGION_SEED"]

DEFAULT_REGION_SEED = 20251
KGCE_GJ = 0.0293076  # GJ per kgce (1 tce = 29.3076 GJ, reference accounting-facts.md "Units")
GB_THRESHOLD_10K_CNY = 2000.0  # 规上: annual main-business revenue ≥ 20 M CNY ([E5])

# --------------------------------------------------------------------------- counties (GB/T 2260)
#: Zhejiang's 90 county-level divisions (11 prefecture-level cities), GB/T 2260 codes as in the
#: Ministry of Civil Affairs code table after the 2021 adjustment in Hangzhou (下城/江干 merged
#: into 拱墅/上城; 临平 330113 and 钱塘 330114 new).  The reference notes 11 cities and 90 counties
#: for DB33/T 1347 ([E2][E4]); codes cross-checked against public code lists, not the official file.
_ZJ = """\
330100 杭州市|330102 上城区|330105 拱墅区|330106 西湖区|330108 滨江区|330109 萧山区|330110 余杭区|330111 富阳区|330112 临安区|330113 临平区|330114 钱塘区|330122 桐庐县|330127 淳安县|330182 建德市
330200 宁波市|330203 海曙区|330205 江北区|330206 北仑区|330211 镇海区|330212 鄞州区|330213 奉化区|330225 象山县|330226 宁海县|330281 余姚市|330282 慈溪市
330300 温州市|330302 鹿城区|330303 龙湾区|330304 瓯海区|330305 洞头区|330324 永嘉县|330326 平阳县|330327 苍南县|330328 文成县|330329 泰顺县|330381 瑞安市|330382 乐清市|330383 龙港市
330400 嘉兴市|330402 南湖区|330411 秀洲区|330421 嘉善县|330424 海盐县|330481 海宁市|330482 平湖市|330483 桐乡市
330500 湖州市|330502 吴兴区|330503 南浔区|330521 德清县|330522 长兴县|330523 安吉县
330600 绍兴市|330602 越城区|330603 柯桥区|330604 上虞区|330624 新昌县|330681 诸暨市|330683 嵊州市
330700 金华市|330702 婺城区|330703 金东区|330723 武义县|330726 浦江县|330727 磐安县|330781 兰溪市|330782 义乌市|330783 东阳市|330784 永康市
330800 衢州市|330802 柯城区|330803 衢江区|330822 常山县|330824 开化县|330825 龙游县|330881 江山市
330900 舟山市|330902 定海区|330903 普陀区|330921 岱山县|330922 嵊泗县
331000 台州市|331002 椒江区|331003 黄岩区|331004 路桥区|331022 三门县|331023 天台县|331024 仙居县|331081 温岭市|331082 临海市|331083 玉环市
331100 丽水市|331102 莲都区|331121 青田县|331122 缙云县|331123 遂昌县|331124 松阳县|331125 云和县|331126 庆元县|331127 景宁畲族自治县|331181 龙泉市"""

PROVINCES = {"CN-ZJ": {"name_zh": "浙江省", "name_en": "Zhejiang", "code": "330000", "table": _ZJ}}


def counties(province: str = "CN-ZJ") -> pd.DataFrame:
    """The county-level divisions of a province: county_code, county_name_zh, city_code, city_name_zh."""
    if province not in PROVINCES:
        raise ValueError(f"province {province!r} not available; available: {', '.join(PROVINCES)}")
    rows = []
    for line in PROVINCES[province]["table"].splitlines():
        city, *cs = line.split("|")
        city_code, city_name = city.split(" ")
        for c in cs:
            code, name = c.split(" ")
            rows.append((code, name, city_code, city_name))
    return pd.DataFrame(rows, columns=["county_code", "county_name_zh", "city_code", "city_name_zh"])


# --------------------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Param:
    """A distribution: ``normal`` (mean a, sd b) or ``lognormal`` (median a, σ b) truncated to
    [low, high] by clipping, or ``uniform`` (a, b)."""
    dist: str
    a: float
    b: float
    low: float
    high: float
    unit: str
    basis: str

    def draw(self, rng) -> float:
        if self.dist == "uniform":
            return float(rng.uniform(self.a, self.b))
        if self.dist == "normal":
            x = rng.normal(self.a, self.b)
        elif self.dist == "lognormal":
            x = self.a * np.exp(self.b * rng.standard_normal())
        else:
            raise ValueError(self.dist)
        return float(np.clip(x, self.low, self.high))


@dataclass(frozen=True)
class Intensity:
    """Energy of ``carrier`` per unit of ``product``; ``param.unit`` ``kgce/t`` (coal) is turned
    into t of raw coal with the enterprise's coal NCV."""
    carrier: str
    product: str
    param: Param


@dataclass(frozen=True)
class Route:
    name: str
    name_zh: str
    share: float                      # of the sector's enterprises
    main: tuple                       # (product, unit, name_zh, name_en)
    size: Param                       # annual output of the main product
    derived: tuple = ()               # ((product, unit, zh, en, of_product, ratio Param), …)
    intensities: tuple = ()
    sales: str = ""                   # the product that carries value added and revenue
    va: Param | None = None           # value added, CNY per unit of the sales product
    price: Param | None = None        # revenue, CNY per unit of the sales product
    industry_code: str = ""
    industry_name_zh: str = ""


@dataclass(frozen=True)
class Sector:
    sector: str
    name_zh: str
    name_en: str
    weight: float                     # share of the population
    stop_days: int                    # Spring-Festival stop (days), from ``stop_offset`` days after it
    stop_offset: int
    county_weights: dict              # county code → multiplier (others 1), with the evidence in ``county_basis``
    county_basis: str
    routes: tuple


CARRIERS = {  # carrier → (factor-library item, unit, name)
    "electricity": ("grid", "kWh", "purchased electricity 外购电力"),
    "natural_gas": ("natural_gas", "Nm3", "natural gas 天然气"),
    "raw_coal": ("raw_coal", "t", "raw coal 原煤"),
    "purchased_heat": ("heat", "GJ", "purchased steam/heat 外购热力"),
}

_ILL = "illustrative assumption"
_GB16780 = "GB 16780-2021 grades 1/2/3 (applications.md §2)"
COAL_NCV = Param("uniform", 20.5, 23.5, 20.5, 23.5, "GJ/t",
                 "illustrative; around GB/T 2589 raw-coal average 20.908 GJ/t (accounting-facts.md); "
                 "the demo cement plant's lab values are 21.5–23.5")
_HUZHOU_TEXTILE = ({"330522": 4.0, "330502": 3.0},
                   ("长兴: textiles ≈ ⅓ of county industrial output, 94,000 water-jet looms [F7]; 吴兴: 织里 [F2]; "
                    "other counties weight 1 (no evidence in the reference files)"))

# parameters shared by routes of a sector (one definition each)
_DYE_SIZE = Param("lognormal", 8000.0, 0.7, 1500.0, 60000.0, "t/yr", _ILL + " (the demo plant: ≈ 15,000)")
_DYE_GAS = Param("normal", 120.0, 25.0, 50.0, 200.0, "Nm3/t", _ILL + ": stenters (thermal-oil boiler) and singeing")
_DYE_VA = Param("uniform", 4000.0, 7000.0, 4000.0, 7000.0, "CNY/t", _ILL)
_DYE_PRICE = Param("uniform", 12000.0, 20000.0, 12000.0, 20000.0, "CNY/t", _ILL + " (commission dyeing fee)")
_STEEL_PRICE = Param("uniform", 3300.0, 4200.0, 3300.0, 4200.0, "CNY/t", _ILL)
_CEMENT_PRICE = Param("uniform", 300.0, 420.0, 300.0, 420.0, "CNY/t cement", _ILL)
_CEMENT_GRINDING = Intensity("electricity", "cement", Param("normal", 29.0, 2.5, 23.0, 36.0, "kWh/t",
                             "水泥制备工段电耗 centred on grade 2 (29), limit 34; " + _GB16780))

SECTORS = (
    Sector("cement", "水泥", "Cement", 0.10, 10, 3,
           {"330522": 6.0}, "长兴: 非金属矿物制品 and 南方水泥 among its main industries [F6]; others weight 1",
           (Route("integrated", "熟料水泥一体化", 0.4, ("clinker", "t", "熟料", "clinker"),
                  Param("lognormal", 1.2e6, 0.45, 4.0e5, 4.5e6, "t clinker/yr", _ILL + " (the demo plant: ≈ 1.5 Mt)"),
                  derived=(("cement", "t", "水泥", "cement", "clinker",
                            Param("uniform", 1.25, 1.43, 1.25, 1.43, "t cement/t clinker",
                                  _ILL + ": clinker share 70–80 % (GB 16780 reference 75 %)")),),
                  intensities=(
                      Intensity("raw_coal", "clinker", Param("normal", 101.0, 4.5, 90.0, 115.0, "kgce/t",
                                "熟料综合煤耗 centred between grade 2 (100) and 3 (109); " + _GB16780)),
                      Intensity("electricity", "clinker", Param("normal", 55.0, 3.5, 46.0, 64.0, "kWh/t",
                                "熟料综合电耗 centred between grade 2 (57) and 1 (48), limit 61; " + _GB16780)),
                      _CEMENT_GRINDING,
                  ),
                  sales="cement", va=Param("uniform", 120.0, 220.0, 120.0, 220.0, "CNY/t cement",
                                           _ILL + " (the demo plant: ≈ 160)"),
                  price=_CEMENT_PRICE,
                  industry_code="C3011", industry_name_zh="水泥制造"),
            Route("grinding", "水泥粉磨站", 0.6, ("cement", "t", "水泥", "cement"),
                  Param("lognormal", 6.0e5, 0.6, 1.2e5, 3.0e6, "t cement/yr", _ILL),
                  intensities=(_CEMENT_GRINDING,),
                  sales="cement", va=Param("uniform", 40.0, 90.0, 40.0, 90.0, "CNY/t cement",
                                           _ILL + " (grinding adds less value than clinker making)"),
                  price=_CEMENT_PRICE,
                  industry_code="C3011", industry_name_zh="水泥制造"))),
    Sector("steel", "钢铁", "Iron and steel", 0.08, 12, -4, {}, "no county evidence in the reference files; all weight 1",
           (Route("eaf", "电炉短流程(炼钢+轧钢)", 0.4, ("billet", "t", "连铸坯", "steel billet"),
                  Param("lognormal", 5.0e5, 0.5, 1.5e5, 2.0e6, "t billet/yr", _ILL + " (the demo plant: ≈ 0.58 Mt)"),
                  derived=(("rolled_bar", "t", "热轧钢材", "hot-rolled steel", "billet",
                            Param("uniform", 0.955, 0.978, 0.955, 0.978, "t/t billet", _ILL + ": rolling yield")),),
                  intensities=(
                      Intensity("electricity", "billet", Param("normal", 480.0, 35.0, 400.0, 600.0, "kWh/t",
                                "EAF + LF + caster + dedusting + oxygen; with the ladle gas ≈ 59 + 5 kgce/t at 0.1228 "
                                "kgce/kWh, centred on the EAF ≥ 70 t grade 2 (64), limit 72, of GB 21256-2025 "
                                "(applications.md §2); the standard's scope is not reproduced")),
                      Intensity("natural_gas", "billet", Param("normal", 4.0, 1.0, 1.5, 7.0, "Nm3/t", _ILL + ": ladle preheating")),
                      Intensity("electricity", "rolled_bar", Param("normal", 110.0, 15.0, 75.0, 160.0, "kWh/t",
                                "illustrative (the demo plant: ≈ 105); rolling limits not in GB 21256-2025, UNVERIFIED")),
                      Intensity("natural_gas", "rolled_bar", Param("normal", 34.0, 4.0, 24.0, 48.0, "Nm3/t",
                                "illustrative reheating furnace, ≈ 0.9–1.9 GJ/t (the demo plant: ≈ 32)")),
                  ),
                  sales="rolled_bar", va=Param("uniform", 400.0, 700.0, 400.0, 700.0, "CNY/t", _ILL),
                  price=_STEEL_PRICE,
                  industry_code="C3130", industry_name_zh="钢压延加工"),
            Route("rerolling", "轧钢(外购钢坯)", 0.6, ("rolled_bar", "t", "热轧钢材", "hot-rolled steel"),
                  Param("lognormal", 2.0e5, 0.6, 3.0e4, 1.2e6, "t/yr", _ILL),
                  intensities=(
                      Intensity("electricity", "rolled_bar", Param("normal", 110.0, 15.0, 75.0, 160.0, "kWh/t",
                                "illustrative; rolling limits not in GB 21256-2025, UNVERIFIED")),
                      Intensity("natural_gas", "rolled_bar", Param("normal", 36.0, 5.0, 24.0, 52.0, "Nm3/t",
                                "illustrative reheating furnace (cold charging: more than the EAF mills)")),
                  ),
                  sales="rolled_bar", va=Param("uniform", 200.0, 400.0, 200.0, 400.0, "CNY/t", _ILL),
                  price=_STEEL_PRICE,
                  industry_code="C3130", industry_name_zh="钢压延加工"))),
    Sector("textile_dyeing", "印染", "Textile dyeing and finishing", 0.22, 20, -7, *_HUZHOU_TEXTILE,
           (Route("purchased_steam", "外购蒸汽", 0.85, ("dyed_fabric", "t", "印染布", "dyed fabric"), _DYE_SIZE,
                  intensities=(
                      Intensity("purchased_heat", "dyed_fabric", Param("normal", 23.0, 3.0, 14.0, 34.0, "GJ/t",
                                _ILL + "; no 印染 limit among the compulsory GB 能耗限额 (applications.md §2)")),
                      Intensity("electricity", "dyed_fabric", Param("normal", 1300.0, 200.0, 800.0, 2000.0, "kWh/t", _ILL)),
                      Intensity("natural_gas", "dyed_fabric", _DYE_GAS),
                  ),
                  sales="dyed_fabric", va=_DYE_VA, price=_DYE_PRICE,
                  industry_code="C1713", industry_name_zh="棉印染精加工"),
            Route("coal_boiler", "自备燃煤锅炉", 0.15, ("dyed_fabric", "t", "印染布", "dyed fabric"), _DYE_SIZE,
                  intensities=(
                      Intensity("raw_coal", "dyed_fabric", Param("normal", 980.0, 130.0, 600.0, 1450.0, "kgce/t",
                                _ILL + ": the steam of the purchased-steam route (23 GJ/t) ÷ 80 % boiler efficiency")),
                      Intensity("electricity", "dyed_fabric", Param("normal", 1350.0, 200.0, 800.0, 2000.0, "kWh/t",
                                _ILL + " (boiler-house fans and pumps on top)")),
                      Intensity("natural_gas", "dyed_fabric", _DYE_GAS),
                  ),
                  sales="dyed_fabric", va=_DYE_VA, price=_DYE_PRICE,
                  industry_code="C1713", industry_name_zh="棉印染精加工"))),
    Sector("textile_weaving", "织造", "Synthetic-fibre weaving", 0.35, 25, -10, *_HUZHOU_TEXTILE,
           (Route("water_jet", "喷水织机", 1.0, ("grey_fabric", "10^4 m", "化纤坯布", "grey fabric"),
                  Param("lognormal", 1500.0, 0.7, 600.0, 15000.0, "10^4 m/yr", _ILL + " (≈ 160 looms at the median)"),
                  intensities=(
                      Intensity("electricity", "grey_fabric", Param("normal", 3000.0, 500.0, 1800.0, 4500.0, "kWh/10^4 m",
                                _ILL + ": a water-jet loom of ≈ 2.5 kW weaving ≈ 10 m/h uses ≈ 2,400 kWh per 10⁴ m, "
                                "plus preparation and humidification")),
                  ),
                  sales="grey_fabric", va=Param("uniform", 8000.0, 15000.0, 8000.0, 15000.0, "CNY/10^4 m", _ILL),
                  price=Param("uniform", 35000.0, 50000.0, 35000.0, 50000.0, "CNY/10^4 m", _ILL),
                  industry_code="C1751", industry_name_zh="化纤织造加工"),)),
    Sector("furniture", "家具", "Furniture (office chairs)", 0.25, 20, -7,
           {"330523": 10.0, "330503": 5.0, "330521": 3.0},
           "安吉: office chairs, 176 规上 firms in 2018 [F8]; 南浔: wood flooring and doors [F4]; 德清 洛舍: "
           "wood veneer [F5]; others weight 1",
           (Route("chairs", "办公椅", 1.0, ("chair", "piece", "办公椅", "office chair"),
                  Param("lognormal", 6.0e5, 0.8, 1.2e5, 8.0e6, "pieces/yr", _ILL),
                  intensities=(
                      Intensity("electricity", "chair", Param("normal", 5.0, 1.2, 2.5, 9.0, "kWh/piece",
                                "≈ 0.1 tce per 万元 value added at ≈ 60 CNY value added a chair: 安吉's 0.1 tce/万元 "
                                "industrial VA in 2018 vs the Zhejiang average 0.67 [F8]")),
                      Intensity("natural_gas", "chair", Param("normal", 0.2, 0.06, 0.05, 0.4, "Nm3/piece",
                                _ILL + ": powder-coating ovens")),
                  ),
                  sales="chair", va=Param("uniform", 40.0, 90.0, 40.0, 90.0, "CNY/piece", _ILL),
                  price=Param("uniform", 180.0, 350.0, 180.0, 350.0, "CNY/piece", _ILL),
                  industry_code="C2130", industry_name_zh="金属家具制造"),)),
)

#: decimals of the written quantities by unit
_DECIMALS = {"kWh": 1, "Nm3": 1, "t": 3, "GJ": 2, "10^4 m": 3, "piece": 0}


def _month_weights(year: int, stop_days: int, stop_offset: int, rng) -> np.ndarray:
    """Operating days per month (the Spring-Festival stop removed) × (1 + 4 % noise), summing to 1."""
    days = np.arange(np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"))
    cny = np.array(_CNY, dtype="datetime64[D]")
    c = cny[(cny >= days[0]) & (cny < days[-1])]
    run = np.ones(days.size)
    if c.size:
        s = c[0] + stop_offset
        run[(days >= s) & (days < s + stop_days)] = 0.0
    month = days.astype("datetime64[M]").astype(int) % 12
    w = np.bincount(month, weights=run, minlength=12) * (1 + 0.04 * rng.standard_normal(12))
    return w / w.sum()


def _round(x, unit):
    return np.round(x, _DECIMALS.get(unit, 3))


def _uscc_body(k: int) -> str:
    """8 USCC body characters from an enterprise number: 'RG' + 6 base-31 characters."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    s = ""
    for _ in range(6):
        k, r = divmod(k, 31)
        s = alphabet[r] + s
    return "RG" + s


def _param_rows() -> list[dict]:
    rows = []
    for sec in SECTORS:
        rows.append({"sector": sec.sector, "route": "", "parameter": "weight", "dist": "fixed", "a": sec.weight,
                     "b": "", "low": "", "high": "", "unit": "share of enterprises", "basis": _ILL})
        rows.append({"sector": sec.sector, "route": "", "parameter": "spring_festival_stop", "dist": "fixed",
                     "a": sec.stop_days, "b": sec.stop_offset, "low": "", "high": "",
                     "unit": "days; from b days after the Spring Festival", "basis": _ILL})
        rows.append({"sector": sec.sector, "route": "", "parameter": "county_weights", "dist": "fixed",
                     "a": json.dumps(sec.county_weights), "b": "", "low": "", "high": "", "unit": "multiplier",
                     "basis": sec.county_basis})
        for r in sec.routes:
            params = [("route_share", Param("uniform", r.share, r.share, r.share, r.share, "share of the sector", _ILL)),
                      (f"size:{r.main[0]}", r.size)]
            params += [(f"ratio:{d[0]}/{d[4]}", d[5]) for d in r.derived]
            params += [(f"intensity:{i.carrier}/{i.product}", i.param) for i in r.intensities]
            params += [(f"value_added:{r.sales}", r.va), (f"price:{r.sales}", r.price)]
            if any(i.param.unit == "kgce/t" for i in r.intensities):
                params.append(("coal_ncv", COAL_NCV))
            for name, p in params:
                rows.append({"sector": sec.sector, "route": r.name, "parameter": name, "dist": p.dist, "a": p.a,
                             "b": p.b, "low": p.low, "high": p.high, "unit": p.unit, "basis": p.basis})
    return rows


# --------------------------------------------------------------------------- generator
def generate_region(out, enterprises: int = 200, seed: int = DEFAULT_REGION_SEED, province: str = "CN-ZJ",
                    year: int = 2025) -> dict:
    """Write a population of ``enterprises`` enterprises of ``province`` for ``year`` into ``out``."""
    t0 = time.perf_counter()
    n = int(enterprises)
    if n < 1:
        raise ValueError("enterprises must be ≥ 1")
    cty = counties(province)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence([int(seed), zlib.crc32(province.encode())])
    periods = [f"{year}-{m:02d}" for m in range(1, 13)]
    sector_w = np.array([s.weight for s in SECTORS])
    sector_w = sector_w / sector_w.sum()
    codes = cty["county_code"].to_numpy()
    ents, intens, output_rows, energy_rows, va_rows = [], [], [], [], []
    for k, ss in enumerate(root.spawn(n)):
        rng = np.random.default_rng(ss)
        sec = SECTORS[int(rng.choice(len(SECTORS), p=sector_w))]
        route_w = np.array([r.share for r in sec.routes])
        route = sec.routes[int(rng.choice(len(sec.routes), p=route_w / route_w.sum()))]
        cw = np.array([sec.county_weights.get(c, 1.0) for c in codes])
        county = cty.iloc[int(rng.choice(len(codes), p=cw / cw.sum()))]
        price = round(route.price.draw(rng), 2)  # as written: every number computed from what is written
        annual = {route.main[0]: route.size.draw(rng)}
        units = {route.main[0]: route.main[1]}
        for prod, unit, _zh, _en, of, ratio in route.derived:
            annual[prod] = annual[of] * ratio.draw(rng)
            units[prod] = unit
        # the 规上 threshold: revenue at the drawn price ≥ 2,000 万元 (raise the output when needed)
        need = GB_THRESHOLD_10K_CNY * 1e4 / price
        if annual[route.sales] < need:
            f = need / annual[route.sales] * 1.0001
            annual = {p: q * f for p, q in annual.items()}
        ncv = round(COAL_NCV.draw(rng), 3) if any(i.param.unit == "kgce/t" for i in route.intensities) else None
        va_unit = round(route.va.draw(rng), 2)
        mw = _month_weights(year, sec.stop_days, sec.stop_offset, rng)
        eid = f"R{k + 1:05d}"
        # output by month (rounded as written), then energy and value added from the written outputs
        out_m = {p: _round(q * mw, units[p]) for p, q in annual.items()}
        for p, q in out_m.items():
            output_rows.append((eid, p, q, units[p]))
        energy = {}
        for it in route.intensities:
            drawn = round(it.param.draw(rng), 4)
            if it.param.unit == "kgce/t":
                value = float(f"{drawn * KGCE_GJ / ncv:.6g}")  # t coal per t product
                unit = f"t/{units[it.product]}"
            else:
                value = float(f"{drawn:.6g}")
                unit = it.param.unit
            intens.append({"enterprise_id": eid, "carrier": it.carrier, "item": CARRIERS[it.carrier][0],
                           "product": it.product, "intensity": value, "unit": unit, "drawn_value": drawn,
                           "drawn_unit": it.param.unit, "parameter": f"intensity:{it.carrier}/{it.product}"})
            energy[it.carrier] = energy.get(it.carrier, 0.0) + value * out_m[it.product]
        for carrier, q in energy.items():
            item, unit, _ = CARRIERS[carrier]
            energy_rows.append((eid, carrier, item, _round(q, unit), unit))
        va_m = np.round(va_unit * out_m[route.sales] / 1e4, 3)
        va_rows.append((eid, va_m))
        ents.append({
            "enterprise_id": eid,
            "name_zh": f"{county['county_name_zh']}示例{sec.name_zh}企业{k + 1:05d}",
            "name_en": f"Demo {sec.name_en} enterprise {k + 1:05d}",
            "sector": sec.sector, "route": route.name, "route_zh": route.name_zh,
            "industry_code": route.industry_code, "industry_name_zh": route.industry_name_zh,
            "region": province, "county_code": county["county_code"], "county_name_zh": county["county_name_zh"],
            "city_code": county["city_code"], "city_name_zh": county["city_name_zh"],
            "unified_social_credit_code": uscc("91" + county["county_code"], _uscc_body(k), None),
            "main_product": route.main[0], "sales_product": route.sales,
            "annual_output": round(float(out_m[route.sales].sum()), 3), "output_unit": units[route.sales],
            "price_cny_per_unit": price, "value_added_cny_per_unit": va_unit,
            "coal_ncv_gj_per_t": "" if ncv is None else ncv,
            "revenue_10k_cny": round(float(out_m[route.sales].sum()) * price / 1e4, 1),
            "value_added_10k_cny": round(float(va_m.sum()), 3),
        })
    tables = {
        "enterprises": pd.DataFrame(ents),
        "intensities": pd.DataFrame(intens),
        "energy": _monthly_table(energy_rows, ["enterprise_id", "carrier", "item", "quantity", "unit"], periods),
        "output": _monthly_table(output_rows, ["enterprise_id", "product", "quantity", "unit"], periods),
        "value_added": _monthly_table(va_rows, ["enterprise_id", "value_added_10k_cny"], periods),
    }
    counts = tables["enterprises"]["county_code"].value_counts()
    cty = cty.assign(province=province, n_enterprises=cty["county_code"].map(counts).fillna(0).astype(int))
    tables["counties"] = cty
    tables["sectors"] = pd.DataFrame(_param_rows())
    files = {}
    for name, t in tables.items():
        files[name] = str(out / f"{name}.csv")
        t.to_csv(out / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n")
        if name in ("energy", "output", "value_added"):
            t.to_parquet(out / f"{name}.parquet", index=False)
    info = {"province": province, "year": year, "seed": int(seed), "enterprises": n,
            "generator": "workbench.demo.region"}
    files["readme"] = _write_readme(out / "README.md", info, tables)
    return {"out": str(out), "files": files, "counts": {k: len(v) for k, v in tables.items()},
            "params": info, "seconds": round(time.perf_counter() - t0, 2)}


def _monthly_table(rows: list[tuple], columns: list[str], periods: list[str]) -> pd.DataFrame:
    """Tidy monthly table from (key…, 12 monthly values, unit…) tuples: one row per key and period;
    the array column is the one that holds the 12 values."""
    m = len(periods)
    arr_col = next(i for i, v in enumerate(rows[0]) if isinstance(v, np.ndarray))
    data = {}
    for i, c in enumerate(columns):
        if i == arr_col:
            data[c] = np.concatenate([r[i] for r in rows])
        else:
            data[c] = np.repeat(np.array([r[i] for r in rows], dtype=object), m)
        if i == 0:
            data["period"] = np.tile(np.array(periods, dtype=object), len(rows))
    return pd.DataFrame(data)


def _write_readme(path: Path, info: dict, tables: dict) -> str:
    e = tables["enterprises"]
    by_sector = e.groupby(["sector", "route"]).size().reset_index(name="n")
    sector_lines = "\n".join(f"| {r.sector} | {r.route} | {r.n} |" for r in by_sector.itertuples())
    pv = PROVINCES[info["province"]]
    text = f"""# 示例区域企业总体 / Demo regional enterprise population

{info['enterprises']} fictitious 规上 industrial enterprises of {pv['name_zh']} ({pv['name_en']}, {info['province']}),
{info['year']}-01 to {info['year']}-12, generated by `workbench.demo.region.generate_region` (seed {info['seed']}).
**全部企业均为虚构 / all enterprises are fictitious**; the counties are real (GB/T 2260). Input for regional grading.

| sector | route | enterprises |
|---|---|---|
{sector_lines}

## Files 文件

| file | columns |
|---|---|
| `enterprises.csv` | `enterprise_id`, `name_zh`, `name_en`, `sector`, `route`, `route_zh`, `industry_code` (GB/T 4754-2017), `industry_name_zh`, `region` (ISO 3166-2), `county_code`/`county_name_zh`, `city_code`/`city_name_zh` (GB/T 2260), `unified_social_credit_code` (fictitious, GB 32100 check character valid), `main_product`, `sales_product`, `annual_output` + `output_unit` (of the sales product), `price_cny_per_unit`, `value_added_cny_per_unit`, `coal_ncv_gj_per_t` (coal users), `revenue_10k_cny`, `value_added_10k_cny` (annual, 万元) |
| `intensities.csv` | `enterprise_id`, `carrier`, `item` (factor-library code), `product`, `intensity` + `unit` (carrier unit per product unit), `drawn_value` + `drawn_unit` (what was drawn: kgce/t for coal, else = intensity), `parameter` (row of `sectors.csv`) |
| `energy.csv` / `.parquet` | `enterprise_id`, `period` (YYYY-MM), `carrier` (electricity, natural_gas, raw_coal, purchased_heat), `item` (grid, natural_gas, raw_coal, heat), `quantity`, `unit` (kWh, Nm3, t, GJ) |
| `output.csv` / `.parquet` | `enterprise_id`, `period`, `product`, `quantity`, `unit` (t, 10^4 m, piece) |
| `value_added.csv` / `.parquet` | `enterprise_id`, `period`, `value_added_10k_cny` (万元) |
| `counties.csv` | `county_code`, `county_name_zh`, `city_code`, `city_name_zh`, `province`, `n_enterprises` |
| `sectors.csv` | every distribution: `sector`, `route`, `parameter`, `dist` (normal: mean a, sd b; lognormal: median a, σ b; both clipped to [low, high]; uniform: a–b; fixed), `unit`, `basis` |

Consistency, month by month: energy (carrier) = Σ over the enterprise's intensities of that carrier of intensity ×
output (the written, rounded output; energy rounded to 0.1 kWh / 0.1 Nm3 / 0.001 t / 0.01 GJ); value added =
value added per unit × output of the sales product ÷ 10⁴. 月度能耗 = 单耗 × 产量；增加值 = 单位增加值 × 产量。

## Where the distributions come from 参数来源

Every parameter, with its basis, is in `sectors.csv`. In short:

* **Cement** (C3011): intensities centred on the grades of **GB 16780-2021** 水泥单位产品能源消耗限额 — clinker
  coal 94/100/109 kgce/t, clinker electricity 48/57/61 kWh/t, cement-preparation electricity 26/29/34 kWh/t (grades
  1/2/3, 3 = limit value); coal turned into t with an NCV of 20.5–23.5 GJ/t.
* **EAF steel** (C3130, EAF mini-mills and re-rolling mills): EAF electricity 480 ± 35 kWh/t billet + ladle gas
  ≈ 64 kgce/t, the grade-2 value of **GB 21256-2025** for EAFs ≥ 70 t (61/64/72); rolling energy illustrative
  (rolling limits are not in GB 21256-2025: UNVERIFIED).
* **Dyeing** (C1713), **weaving** (C1751), **furniture** (C2130): no national limit values in the reference files;
  all illustrative, except that furniture's electricity is anchored on 安吉's ≈ 0.1 tce per 万元 industrial value
  added (2018) [F8].
* Enterprise size: lognormal per route (illustrative; firm-size distributions by division are UNVERIFIED in the
  reference), truncated so that revenue ≥ 2,000 万元 (the 规上 threshold [E5]).
* Counties: the province's {len(tables['counties'])} county-level divisions, weight 1 each, multiplied where the
  reference files document a cluster (长兴 cement and textiles, 吴兴 textiles, 安吉/南浔/德清 furniture and wood).
  Other known clusters are *not* weighted — the county pattern is coarse.
* Months: operating days after a Spring-Festival stop of the sector's length, × (1 + 4 % noise).

Reference tags ([E5], [F2] …) are those of `/work/shared/reference/applications.md`; the GB/T 2260 and GB/T 4754
codes were checked against public code lists, not the official files.
"""
    path.write_text(text, encoding="utf-8")
    return str(path)
