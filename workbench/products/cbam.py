"""Export carbon data for the EU CBAM (issue 14 point 6): embedded emissions of exported goods from
the same ledger, in the shape of the EU's communication template for installations.

The ledger of the enterprise's inventory is divided between its production processes by the
allocation of :mod:`.allocation` (subdivision, then the chosen method for shared pools; nothing
excluded — a CBAM installation's emissions all belong to some process), then per process:

* direct — the allocated fuel-combustion and process emissions of the gases CBAM covers for the
  sector (CO2 for cement; SF6 from switchgear is left out and reported), imported heat added and
  exported heat subtracted: :func:`workbench.regimes.cbam.attributed_direct_emissions` (Eq. 55);
* indirect — the allocated electricity consumed (MWh) × EF_el:
  :func:`workbench.regimes.cbam.indirect_emissions`.  EF_el is the China default of IR 2025/2621
  Annex II (0.605 tCO2e/MWh, transcribed) unless an actual factor is given with its evidence —
  the GB/T 32150 grid factor of the inventory is *not* a CBAM actual factor;
* the specific embedded emissions of every good: :func:`workbench.regimes.cbam.embedded_emissions`
  (Eq. 59–63, direct and indirect apart, own precursors recursed — cement carries its clinker),
  AL = the saleable output (off-spec given in ``off_spec`` excluded).

Default values (China, with the year's mark-up) are used only for purchased precursors without
the supplier's actual data, each flagged ``DEFAULT``.  The workbook has the template's sheets
(A_InstData, B_EmInst, C_Emissions&Energy, D_Processes, E_PurchPrec, Summary_Processes,
Summary_Products with SEE in columns I:J:K, Summary_Communication); the official template's exact
cell layout is not in the workbench's reference, so every sheet says which fields follow IR
2025/2547 Annex IV and which are UNVERIFIED.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from workbench.products.allocation import (
    allocate_pools,
    ledger_pools,
    outputs_from_cube,
)
from workbench.products.errors import ProductError
from workbench.products.footprint import (
    default_assign,
    precursor_chains,
    precursor_consumption,
    products_meta,
)
from workbench.regimes.cbam import (
    CHINA_GRID_EF,
    INDIRECT_CHARGED,
    REGIME,
    CBAMError,
    attributed_direct_emissions,
    covered_gases,
    default_value,
    embedded_emissions,
    goods_category,
    indirect_emissions,
    precursor_rows,
)

__all__ = ["CN_CODES", "SHEETS", "CBAMReport", "cbam_from_ledger", "cbam_report", "write_json", "write_xlsx"]

#: sector → product → CN code (Reg. 2023/956 Annex I), used when the caller gives none; the steel
#: products only by their heading (7207 semi-finished, 7214 bars): give the 8-digit code with --cn
CN_CODES = {"cement": {"clinker": "25231000", "cement": "25232900"}, "steel": {"billet": "7207", "rebar": "7214"}}
SHEETS = ("A_InstData", "B_EmInst", "C_Emissions&Energy", "D_Processes", "E_PurchPrec", "Summary_Processes",
          "Summary_Products", "Summary_Communication")
TEMPLATE = ("EU CBAM 'Communication template for installations' (_en_20241213): sheet names as the template; "
            "fields after IR (EU) 2025/2547 Annex IV §1.2; the template's cell layout is UNVERIFIED")
UNVERIFIED = "UNVERIFIED"


@dataclass
class CBAMReport:
    """The CBAM data of an installation for a reporting period.

    ``goods`` is the result of :func:`workbench.regimes.cbam.embedded_emissions` with the goods'
    CN codes and categories; ``processes`` the per-process terms of Eq. 55 and the indirect
    emissions; ``sheets`` the template's sheets as DataFrames.
    """

    enterprise: dict
    period_start: str
    period_end: str
    sector: str
    goods: pd.DataFrame
    processes: pd.DataFrame
    precursors: pd.DataFrame
    sheets: dict
    ef_el: float
    ef_el_source: str
    flags: list = field(default_factory=list)

    def see(self, good: str) -> dict:
        """``{"direct", "indirect", "total"}`` tCO2e/t of a good."""
        if good not in self.goods.index:
            raise ProductError(f"no CBAM good '{good}' (goods: {', '.join(self.goods.index)})")
        r = self.goods.loc[good]
        return {"direct": float(r["see_direct"]), "indirect": float(r["see_indirect"]), "total": float(r["see_total"])}

    def as_json(self) -> dict:
        return {"template": TEMPLATE, "regime": REGIME.name, "edition": REGIME.edition(int(self.period_end[:4])),
                "enterprise_id": self.enterprise.get("enterprise_id", ""), "period_start": self.period_start,
                "period_end": self.period_end, "sector": self.sector, "ef_el": self.ef_el,
                "ef_el_source": self.ef_el_source, "flags": list(self.flags),
                "sheets": {name: _records(df) for name, df in self.sheets.items()}}


def _digits(code) -> str:
    return "".join(ch for ch in str(code) if ch.isdigit())


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for r in df.to_dict("records"):
        out.append({str(k): (None if isinstance(v, float) and not math.isfinite(v) else
                             v.item() if hasattr(v, "item") and not isinstance(v, str) else v) for k, v in r.items()})
    return out


def cbam_report(inv, *, method: str = "mass", prices=None, drivers=None, cn_codes: Mapping[str, str] | None = None,
                ef_el: float | None = None, ef_el_source: str = "", off_spec: Mapping[str, float] | None = None,
                exported: Mapping[str, float] | None = None, purchased: Sequence[Mapping] = (),
                precursors=None, sold=None, electricity_produced: Mapping[str, float] | None = None,
                assign: Mapping[str, str] | None = None) -> CBAMReport:
    """The CBAM data of an enterprise's inventory (a reporting period, usually a calendar year).

    Parameters
    ----------
    inv : workbench.inventory.Inventory
    method, prices, drivers
        Allocation of shared pools (:func:`workbench.products.allocation.allocate_pools`).
    cn_codes : mapping product → CN code, optional
        Default :data:`CN_CODES` of the enterprise's sector.
    ef_el : float, optional
        An actual emission factor of the electricity consumed, tCO2e/MWh, with ``ef_el_source``
        naming the PPA or direct-link evidence; default the China default 0.605 (flagged).
    off_spec : mapping product → t, optional
        Off-spec output, excluded from the activity level.
    exported : mapping product → t, optional
        Quantities exported to the EU in the period (Summary_Communication's embedded totals).
    purchased : sequence of mappings
        Purchased precursors: ``good`` (consumer), ``precursor`` (a key), ``cn_code``, ``mass_t``,
        optionally ``see_direct``/``see_indirect`` (actual, from the supplier), ``country``,
        ``installation``.  Without actual values the China default with the year's mark-up is used
        and flagged.
    precursors, sold
        Own precursor chains (:func:`workbench.products.footprint.product_footprints`).
    electricity_produced : mapping product → tCO2e, optional
        ``Em_el,prod`` of a process (electricity generated from fuels inside it); default 0.
    assign : mapping, optional
        Pools known to be one process's (default the sector's: a cement plant's exported heat is
        the kiln's, so Em_H,exp is the clinker process's).
    """
    pools = ledger_pools(inv.ledger)
    outputs = outputs_from_cube(inv.cube, inv.products)
    return cbam_from_ledger(inv.ledger, outputs, inv.products, enterprise=inv.enterprise,
                            period_start=inv.period_start, period_end=inv.period_end, method=method, prices=prices,
                            drivers=drivers, cn_codes=cn_codes, ef_el=ef_el, ef_el_source=ef_el_source,
                            off_spec=off_spec, exported=exported, purchased=purchased, precursors=precursors,
                            sold=sold, electricity_produced=electricity_produced, pools=pools, assign=assign)


def cbam_from_ledger(ledger: pd.DataFrame, outputs: pd.DataFrame, products, *, enterprise: Mapping,
                     period_start: str, period_end: str, method: str = "mass", prices=None, drivers=None,
                     cn_codes=None, ef_el=None, ef_el_source="", off_spec=None, exported=None, purchased=(),
                     precursors=None, sold=None, electricity_produced=None, pools=None, assign=None) -> CBAMReport:
    """:func:`cbam_report` on plain tables (a ledger, outputs ``period, product, facility, quantity,
    unit`` and the products)."""
    meta = products_meta(products)
    flags: list[str] = []
    sector = str(enterprise.get("sector") or "").lower()
    codes = {**CN_CODES.get(sector, {}), **dict(cn_codes or {})}
    pools = ledger_pools(ledger) if pools is None else pools
    outs = outputs.copy()
    outs["period"] = outs["period"].astype(str)
    year = int(period_end[:4])

    goods_sector = {}
    for p in sorted(set(outs["product"])):
        if p not in codes:
            raise ProductError(f"product '{p}': no CN code (give one, e.g. --cn {p}=25232900)")
        if len(_digits(codes[p])) < 8:
            flags.append(f"{p}: CN code {codes[p]} is a heading only; give the 8-digit CN code")
        try:
            goods_sector[p] = goods_category(codes[p])
        except CBAMError as exc:
            raise ProductError(f"product '{p}': {exc}") from None
    sectors = {s for s, _ in goods_sector.values()}
    cbam_sector = sectors.pop() if len(sectors) == 1 else sector
    gases = covered_gases(cbam_sector)
    left_out = pools[~pools["gas"].isin(gases)]
    if len(left_out):
        flags.append(f"gases CBAM does not cover for {cbam_sector} left out: "
                     + ", ".join(f"{g} {t:,.3f} tCO2e" for g, t in left_out.groupby("gas")["tco2e"].sum().items()))
    cov = pools[pools["gas"].isin(gases)]

    assign = default_assign(enterprise, outs) if assign is None else dict(assign)
    alloc = allocate_pools(cov, outs, method=method, prices=prices, drivers=drivers, assign=assign)
    if ef_el is None:
        ef, ef_src = CHINA_GRID_EF, "DEFAULT: IR (EU) 2025/2621 Annex II, China grid factor (transcribed)"
        flags.append("EF_el: China default 0.605 tCO2e/MWh used (an actual factor needs PPA or direct-link evidence)")
    else:
        if not (isinstance(ef_el, (int, float)) and math.isfinite(ef_el) and ef_el >= 0):
            raise ProductError(f"EF_el {ef_el!r}: a number ≥ 0 of tCO2e/MWh")
        if not ef_el_source:
            raise ProductError("an actual EF_el needs its evidence named (PPA or direct line): ef_el_source")
        ef, ef_src = float(ef_el), f"actual: {ef_el_source}"

    t = alloc.table
    rows = []
    for p in alloc.products:
        a = t[t["product"] == p]
        s = a.groupby("source")["tco2e"].sum()
        direct = float(s.get("combustion", 0.0) + s.get("process", 0.0))
        h_imp = float(s.get("purchased_heat", 0.0))
        h_exp = -float(s.get("exported_heat", 0.0))
        el_prod = float((electricity_produced or {}).get(p, 0.0))
        mwh = float(a.loc[a["source"] == "purchased_electricity", "electricity_mwh"].sum())
        q = float(outs.loc[outs["product"] == p, "quantity"].sum())
        bad = float((off_spec or {}).get(p, 0.0))
        if not (0 <= bad < q):
            raise ProductError(f"off-spec '{p}': {bad} t must be ≥ 0 and less than the output {q:,.3f} t")
        rows.append({"good": p, "cn_code": codes[p], "sector": goods_sector[p][0], "category": goods_sector[p][1],
                     "name_zh": meta[p]["name_zh"], "name_en": meta[p]["name_en"],
                     "facilities": ", ".join(alloc.makers.get(p, ())), "output_t": q, "off_spec_t": bad,
                     "activity_level_t": q - bad, "dir_em_tco2e": direct, "heat_imported_tco2e": h_imp,
                     "heat_exported_tco2e": h_exp, "waste_gas_imported_tco2e": 0.0, "waste_gas_exported_tco2e": 0.0,
                     "electricity_produced_tco2e": el_prod,
                     "attributed_direct_tco2e": attributed_direct_emissions(direct, h_imp, h_exp, 0.0, 0.0, el_prod),
                     "floored_at_zero": direct + h_imp - h_exp - el_prod < 0,
                     "electricity_mwh": mwh, "ef_el": ef, "ef_el_source": ef_src,
                     "attributed_indirect_tco2e": indirect_emissions(mwh, ef),
                     "indirect_charged": INDIRECT_CHARGED.get(goods_sector[p][0], False)})
    procs = pd.DataFrame(rows)
    for g in procs.loc[procs["floored_at_zero"], "good"]:
        flags.append(f"{g}: attributed direct emissions negative before Eq. 55's max(0, …) — set to 0 "
                     "(the process exports more heat than it emits; check how the heat export is assigned)")

    chains = precursor_chains(enterprise, precursors, list(alloc.products))
    consumed = precursor_consumption(outs, chains, sold or {}, list(alloc.products))
    own = consumed.groupby(["product", "precursor"], as_index=False)["mass"].sum()
    prec = [{"good": r.product, "precursor": r.precursor, "mass_t": float(r.mass), "basis": "own"}
            for r in own.itertuples(index=False)]
    bought = []
    for n, b in enumerate(purchased):
        try:
            key, good, mass = str(b["precursor"]), str(b["good"]), float(b["mass_t"])
        except (KeyError, TypeError, ValueError):
            raise ProductError(f"purchased precursor {n + 1}: needs good, precursor and mass_t") from None
        if good not in set(procs["good"]):
            raise ProductError(f"purchased precursor {key!r}: consumer '{good}' is not a good made here")
        sd, si = b.get("see_direct"), b.get("see_indirect")
        if sd is None:
            d = default_value(b.get("cn_code", ""), year)
            sd, si, basis, src = d.direct, d.indirect or 0.0, "DEFAULT", d.source
            flags.append(f"purchased precursor {key}: China default value used ({d.good}, mark-up {d.markup:.0%})")
        else:
            basis, src = "actual", str(b.get("source", "supplier's communication"))
        prec.append({"good": good, "precursor": key, "mass_t": mass, "see_direct": float(sd),
                     "see_indirect": float(si or 0.0), "basis": basis})
        bought.append({"precursor": key, "cn_code": b.get("cn_code", ""), "consumed_by": good, "mass_t": mass,
                       "country": b.get("country", ""), "installation": b.get("installation", ""),
                       "see_direct": float(sd), "see_indirect": float(si or 0.0), "basis": basis, "source": src})
    prec_df = precursor_rows(prec)
    try:
        goods = embedded_emissions(procs[["good", "activity_level_t", "attributed_direct_tco2e",
                                          "attributed_indirect_tco2e"]], prec_df)
    except CBAMError as exc:
        raise ProductError(str(exc)) from None
    goods = goods.join(procs.set_index("good")[["cn_code", "sector", "category", "name_zh", "name_en",
                                                "indirect_charged"]])
    report = CBAMReport(dict(enterprise), period_start, period_end, cbam_sector, goods, procs, prec_df, {}, ef, ef_src,
                        flags)
    report.sheets = _sheets(report, ledger, pools, left_out, alloc, pd.DataFrame(bought), dict(exported or {}))
    return report


# --------------------------------------------------------------------------- the template's sheets
def _kv(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["field", "value", "unit", "basis"])


def _sheets(r: CBAMReport, ledger, pools, left_out, alloc, bought, exported) -> dict:
    e = r.enterprise
    total_dir = float(r.processes["dir_em_tco2e"].sum())
    inst_name = e.get("name_en") or e.get("name_zh") or e.get("enterprise_id", "")
    a = _kv([
        ("Reporting period start", r.period_start, "", "inventory period"),
        ("Reporting period end", r.period_end, "", "inventory period"),
        ("Operator name", e.get("name_en", ""), "", "master data"),
        ("Operator name (zh)", e.get("name_zh", ""), "", "master data"),
        ("Operator registration number (unified social credit code)",
         e.get("uscc") or e.get("unified_social_credit_code", ""), "", "master data"),
        ("Operator address", e.get("address", ""), "", "master data"),
        ("Installation name", inst_name, "", "master data (one installation = the enterprise's boundary)"),
        ("Installation identifier in the CBAM Registry", "", "", UNVERIFIED + ": not recorded"),
        ("UN/LOCODE", "", "", UNVERIFIED + ": not recorded"),
        ("Installation address", e.get("address", ""), "", "master data"),
        ("Coordinates of the main emission source", "", "", UNVERIFIED + ": not recorded"),
        ("Country", "CN", "", "enterprise region " + str(e.get("region", ""))),
        ("Economic activity (GB/T 4754)", e.get("industry_code", ""), "", "master data"),
        ("Contact", e.get("contact_person", ""), "", "master data"),
        ("Contact e-mail", e.get("contact_email", ""), "", "master data"),
        ("Sector", r.sector, "", "Reg. (EU) 2023/956 Annex I"),
        ("Aggregated goods categories", ", ".join(sorted(set(r.goods["category"]))), "", "IR 2025/2547 Annex I §3"),
        ("Implementing act", REGIME.edition(int(r.period_end[:4])), "", "by reporting year"),
        ("Verification", "not verified", "", "Art. 10: to the verifier"),
    ])
    led = ledger.copy()
    led["cbam"] = led.get("gas", "CO2").isin(covered_gases(r.sector)) if "gas" in led else True
    cols = {"quantity": "sum", "tco2e": "sum"}
    b = (led[led["source"].isin(["combustion", "process"])]
         .groupby(["source", "item", "unit", "gas"], as_index=False).agg(cols))
    b_fac = led.groupby(["source", "item"])
    b["method"] = "calculation-based (activity data × factors, GB/T 32150)"
    b["factor_ids"] = [", ".join(sorted({x for ids in b_fac.get_group((s, i)).get("factor_ids", pd.Series([""]))
                                          for x in str(ids).split(";") if x}))
                       for s, i in zip(b["source"], b["item"])]
    b["in_cbam"] = b["gas"].isin(covered_gases(r.sector))
    b = b.rename(columns={"quantity": "activity_data", "tco2e": "emissions_tco2e"})
    el_mwh = float(pools.loc[pools["source"] == "purchased_electricity", "electricity_mwh"].sum())
    heat = pools[pools["source"].isin(["purchased_heat", "exported_heat"])].groupby("source")[["heat_gj", "tco2e"]].sum()
    c = _kv([
        ("Direct emissions, CBAM gases (DirEm*)", total_dir, "tCO2e", "ledger: combustion + process"),
        ("Emissions of other gases left out", float(left_out["tco2e"].sum()) if len(left_out) else 0.0, "tCO2e",
         "not covered for the sector (Reg. 2023/956 Annex I)"),
        ("Fuel input", float(pools["fuel_gj"].sum()) / 1000.0, "TJ", "ledger: FC × NCV"),
        ("Measurable heat imported", float(heat["heat_gj"].get("purchased_heat", 0.0)), "GJ", "ledger"),
        ("Measurable heat exported", -float(heat["heat_gj"].get("exported_heat", 0.0)), "GJ", "ledger"),
        ("Emissions of heat exported (Em_H,exp)", -float(heat["tco2e"].get("exported_heat", 0.0)), "tCO2e",
         "ledger: the GB/T 32150 heat factor; CBAM's own heat factor UNVERIFIED"),
        ("Electricity consumed (purchased)", el_mwh, "MWh", "ledger (bill), allocated by sub-meters"),
        ("Emission factor of electricity (EF_el)", r.ef_el, "tCO2e/MWh", r.ef_el_source),
        ("Indirect emissions", float(r.processes["attributed_indirect_tco2e"].sum()), "tCO2e", "E_el × EF_el"),
        ("Waste gases imported/exported", 0.0, "tCO2e", "none in the ledger"),
        ("CO2 captured or transferred", 0.0, "tCO2e", "none in the ledger"),
        ("Zero-rated (biomass) fuels", 0.0, "TJ", "none in the ledger"),
        ("Electricity produced from fuels on site (Em_el,prod)", float(r.processes["electricity_produced_tco2e"].sum()),
         "tCO2e", "given; waste-heat power uses no fuel"),
    ])
    d = r.processes.copy()
    d.insert(0, "process", [f"{g} production" for g in d["good"]])
    goods = r.goods.reset_index()
    sp = goods[["good", "category", "activity_level_t", "attributed_direct_tco2e", "attributed_indirect_tco2e",
                "precursor_direct_tco2e", "precursor_indirect_tco2e", "embedded_direct_tco2e",
                "embedded_indirect_tco2e"]].copy()
    sp["ae_direct"] = sp["attributed_direct_tco2e"] / sp["activity_level_t"]
    sp["ae_indirect"] = sp["attributed_indirect_tco2e"] / sp["activity_level_t"]
    # Summary_Products: SEE direct, indirect, total in columns I, J, K as the template has them
    spr = pd.DataFrame({
        "A aggregated goods category": goods["category"], "B production route": UNVERIFIED,
        "C CN code": goods["cn_code"], "D good": goods["name_en"] + " / " + goods["name_zh"],
        "E production process": goods["good"] + " production", "F activity level": goods["activity_level_t"],
        "G unit": "t", "H share of default values": goods["default_share"],
        "I SEE direct (tCO2e/t)": goods["see_direct"], "J SEE indirect (tCO2e/t)": goods["see_indirect"],
        "K SEE total (tCO2e/t)": goods["see_total"],
    })
    comm = []
    for g in goods.itertuples(index=False):
        q = float(exported.get(g.good, 0.0))
        comm.append({"CN code": g.cn_code, "good": g.name_en, "aggregated goods category": g.category,
                     "installation": r.enterprise.get("name_en", ""), "country of origin": "CN",
                     "period": f"{r.period_start}/{r.period_end}", "SEE direct (tCO2e/t)": g.see_direct,
                     "SEE indirect (tCO2e/t)": g.see_indirect, "SEE total (tCO2e/t)": g.see_total,
                     "indirect emissions charged (Annex II)": bool(g.indirect_charged),
                     "share of default values": g.default_share, "EF_el source": r.ef_el_source,
                     "quantity exported (t)": q, "embedded direct (tCO2e)": q * g.see_direct,
                     "embedded indirect (tCO2e)": q * g.see_indirect,
                     "carbon price due in country of origin": UNVERIFIED + " (template field; none recorded)",
                     "method": f"IR 2025/2547 Annex III B Eq. 55, 59–63; allocation of shared emissions: "
                               f"{alloc.method}", "verification": "not verified"})
    prec_cols = ["precursor", "cn_code", "consumed_by", "mass_t", "country", "installation", "see_direct",
                 "see_indirect", "basis", "source"]
    e_sheet = bought if len(bought) else pd.DataFrame(columns=prec_cols)
    own = r.precursors[r.precursors["basis"] == "own"]
    own_rows = pd.DataFrame({"precursor": own["precursor"], "cn_code": own["precursor"].map(r.goods["cn_code"]),
                             "consumed_by": own["good"], "mass_t": own["mass_t"], "country": "CN",
                             "installation": "this installation",
                             "see_direct": own["precursor"].map(r.goods["see_direct"]),
                             "see_indirect": own["precursor"].map(r.goods["see_indirect"]),
                             "basis": "own precursor (actual)", "source": "this report"})
    e_sheet = pd.concat([own_rows, e_sheet], ignore_index=True)[prec_cols]
    return {"A_InstData": a, "B_EmInst": b, "C_Emissions&Energy": c, "D_Processes": d, "E_PurchPrec": e_sheet,
            "Summary_Processes": sp, "Summary_Products": spr, "Summary_Communication": pd.DataFrame(comm)}


def write_xlsx(report: CBAMReport, path) -> Path:
    """The report as an XLSX workbook with the template's sheets (openpyxl), a note row on each."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    wb = Workbook()
    wb.remove(wb.active)
    for name in SHEETS:
        ws = wb.create_sheet(name)
        df = report.sheets[name]
        ws.append([TEMPLATE])
        ws["A1"].font = Font(italic=True)
        ws.append([str(c) for c in df.columns])
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in df.itertuples(index=False):
            ws.append([_cell(v) for v in row])
        for col in ws.columns:
            width = max(len(str(c.value)) if c.value is not None and c.row > 1 else 8 for c in col)
            ws.column_dimensions[col[0].column_letter].width = min(60, max(10, width + 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _cell(v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if hasattr(v, "item") and not isinstance(v, str):
        return v.item()
    return v


def write_json(report: CBAMReport, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_json(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path
