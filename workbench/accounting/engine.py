"""The accounting engine: activity records × factors → the emission ledger.

Vectorised: rows are grouped by source and unit, factors are looked up once per distinct
(item, year, region, facility), and the formulas of :mod:`.combustion`, :mod:`.process`,
:mod:`.indirect` and :mod:`.gases` are applied to whole columns as pint quantities.

The ledger has one row per activity record, carrying every factor value and id it used, so that
each tCO2e can be traced to its activity record and to the published (or site-measured) factor.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from ..factors import FactorLibrary, default_library
from ..units import Q_, UnitMismatchError, conversion_factor, converts
from .combustion import emission_factor_from_carbon_content
from .gases import co2_equivalent
from .total import SIGN, SOURCES, edition_for_year

__all__ = ["account", "LEDGER_COLUMNS", "AccountingError"]

LEDGER_COLUMNS = [
    "record_id", "origin", "row", "node_id", "facility", "classification", "period", "year",
    "region", "source", "item", "gas", "quantity", "unit", "data_tier", "document",
    "activity_gj",
    "ncv", "ncv_unit", "ncv_factor_id",
    "carbon_content", "carbon_content_unit", "carbon_content_factor_id",
    "oxidation_rate", "oxidation_rate_factor_id",
    "emission_factor", "ef_unit", "emission_factor_id",
    "purity", "gwp", "gwp_factor_id",
    "emission_t", "sign", "tco2e", "method", "edition", "factor_ids", "notes",
]


class AccountingError(ValueError):
    """A record that cannot be accounted (e.g. its units do not fit its factor)."""


def _year_of(period: pd.Series, default: int | None) -> pd.Series:
    year = pd.to_numeric(period.astype("string").str.slice(0, 4), errors="coerce")
    return year.fillna(default if default is not None else np.nan).astype("Int64")


def account(activity: pd.DataFrame, library: FactorLibrary | None = None, *, year: int | None = None,
            region: str | None = None, gwp: str | None = None, boundary=None,
            factor_sets: dict | None = None, enterprise: str = "enterprise") -> pd.DataFrame:
    """Account the emissions of activity records (GB/T 32150).

    Parameters
    ----------
    activity : DataFrame
        Activity records; normalised by :func:`workbench.activity.normalize_activity` if they
        have not been already.
    library : FactorLibrary, optional
        Factors (default: the shipped library).  ``gwp`` selects the GWP set.
    year, region :
        Reporting year and region for records without a ``period``/``region`` of their own.
    boundary : Boundary, optional
        Maps each record's node to its facility and 分项 class.
    factor_sets : dict, optional
        Factor-set choice by (category, kind), e.g. ``{("fuel", "ncv"): ["NDRC-circulating-UNVERIFIED"]}``.

    Returns
    -------
    DataFrame with :data:`LEDGER_COLUMNS`; ``tco2e`` is signed (exported sources negative).
    ``attrs`` records the library version, GWP set and time of calculation.
    """
    from ..activity import normalize_activity

    lib = library or default_library()
    if gwp:
        lib = lib.with_gwp(gwp)
    if factor_sets:
        lib = FactorLibrary(lib.table, gwp_set=lib.gwp_set, factor_sets=factor_sets,
                            items=lib.items, regions=lib.regions)
    if "origin" not in activity.columns or "row" not in activity.columns:
        activity = normalize_activity(activity, library=lib)
    df = activity.reset_index(drop=True).copy()
    n = len(df)
    region_default = lib.region_code(region)
    df["region"] = [lib.region_code(r) if r else region_default for r in df["region"].fillna("")]
    df["year"] = _year_of(df["period"], year)
    if df["year"].isna().any() and n:
        r = df.loc[df["year"].isna(), "row"].iloc[0]
        raise AccountingError(f"{df['origin'].iloc[0]}, row {r}: no period and no reporting year given")
    df["period"] = df["period"].fillna(df["year"].astype("string"))
    if boundary is not None and n:
        nodes = df["node_id"].replace("", boundary.enterprise)
        df["node_id"] = nodes
        df["facility"] = boundary.facility_of(nodes).to_numpy()
        df["classification"] = boundary.classification_of(nodes).to_numpy()
    else:
        df["facility"] = df["facility"].replace("", enterprise) if n else df["facility"]
        df["node_id"] = np.where(df["node_id"].eq(""), df["facility"], df["node_id"]) if n else df["node_id"]
        df["classification"] = ""

    res = {c: np.full(n, np.nan) for c in ("activity_gj", "ncv", "carbon_content", "oxidation_rate",
                                           "emission_factor", "gwp", "emission_t")}
    txt = {c: np.full(n, "", dtype=object) for c in (
        "ncv_unit", "ncv_factor_id", "carbon_content_unit", "carbon_content_factor_id",
        "oxidation_rate_factor_id", "ef_unit", "emission_factor_id", "gwp_factor_id", "method", "notes")}
    purity = df["purity"].to_numpy(dtype="float64", na_value=np.nan).copy()

    def factor_column(rows: np.ndarray, kind: str, over_val=None, over_unit=None):
        """Values, units, ids and notes of one factor kind for the given rows (site value first)."""
        vals = np.full(len(rows), np.nan)
        units = np.full(len(rows), "", dtype=object)
        ids = np.full(len(rows), "", dtype=object)
        notes = np.full(len(rows), "", dtype=object)
        sub = df.loc[rows]
        have = np.zeros(len(rows), dtype=bool)
        if over_val is not None:
            ov = sub[over_val].to_numpy(dtype="float64", na_value=np.nan)
            have = ~np.isnan(ov)
            vals[have] = ov[have]
            units[have] = sub[over_unit].to_numpy()[have] if over_unit else "fraction"
            ids[have] = [f"site:{o}:row{r}:{kind}" for o, r in zip(sub["origin"].to_numpy()[have], sub["row"].to_numpy()[have])]
            notes[have] = f"site-measured {kind} (see the record's document)"
        # the node matters only where a site factor is scoped to one: otherwise one look-up serves all
        scoped = set(lib.overrides.loc[lib.overrides["kind"] == kind, "item"])
        node = sub["facility"].astype(str).where(sub["item"].isin(scoped), "")
        keys = (sub["item"].astype(str) + "|" + sub["year"].astype(str) + "|" + sub["region"].astype(str)
                + "|" + node).to_numpy()
        for key in pd.unique(keys[~have]):
            item, yr, reg, node = key.split("|")
            f = lib.lookup(item, kind, year=int(yr), region=reg, facility=node or None)
            m = (keys == key) & ~have
            vals[m], units[m], ids[m] = f.value, f.unit, f.factor_id
            notes[m] = "; ".join(x for x in (f.selection, "" if f.verified else "UNVERIFIED default") if x)
        return vals, units, ids, notes

    def set_notes(rows, notes):
        for i, note in zip(rows, notes):
            if note and note not in txt["notes"][i]:
                txt["notes"][i] = (txt["notes"][i] + "; " + note) if txt["notes"][i] else note

    def pairs_convert(rows, values, units_a, units_b, target, what):
        """values × (unit_a · unit_b) → target, grouped by unit pair; clear error on mismatch."""
        out = np.empty(len(rows))
        pair = np.array([f"{a}\x00{b}" for a, b in zip(units_a, units_b)], dtype=object)
        for p in pd.unique(pair):
            a, b = p.split("\x00")
            m = pair == p
            try:
                k = conversion_factor(f"({a})*({b})", target)
            except UnitMismatchError:
                i = rows[np.argmax(m)]
                raise AccountingError(
                    f"{df.at[i, 'origin']}, row {df.at[i, 'row']}, column 'unit': quantity unit '{a}' "
                    f"does not fit {what} unit '{b}' (their product is not {target})") from None
            out[m] = values[m] * k
        return out

    src = df["source"].to_numpy()
    cat = df["item"].map(dict(zip(lib.items["item"], lib.items["category"]))).to_numpy()
    qty = df["quantity"].to_numpy(dtype="float64").copy()
    unit = df["unit"].to_numpy(dtype=object)

    # --- fuel combustion: FC × NCV × CC × OF × 44/12 (or FC × EF with a site EF)
    comb = np.flatnonzero(src == "combustion")
    if len(comb):
        ef_over = df.loc[comb, "emission_factor"].notna().to_numpy()
        is_energy = np.array([_is_energy(u) for u in unit[comb]])
        # rows whose quantity is already heat need no NCV
        need_ncv = comb[~is_energy]
        energy = np.full(len(comb), np.nan)
        energy[is_energy] = qty[comb[is_energy]] * np.array([conversion_factor(u, "GJ") for u in unit[comb[is_energy]]])
        if len(need_ncv):
            v, u, ids, notes = factor_column(need_ncv, "ncv", "ncv", "ncv_unit")
            res["ncv"][need_ncv], txt["ncv_unit"][need_ncv], txt["ncv_factor_id"][need_ncv] = v, u, ids
            set_notes(need_ncv, notes)
            # AD = FC × NCV (GJ); pint converts the FC unit against the NCV unit
            energy[~is_energy] = pairs_convert(need_ncv, qty[need_ncv] * v, unit[need_ncv], u, "GJ", "NCV")
        res["activity_gj"][comb] = energy
        cc_rows = comb[~ef_over]
        if len(cc_rows):
            cv, cu, cids, cn = factor_column(cc_rows, "carbon_content", "carbon_content", "carbon_content_unit")
            ov, ou, oids, on = factor_column(cc_rows, "oxidation_rate", "oxidation_rate", None)
            ou = np.where(ou == "fraction", "dimensionless", ou)
            res["carbon_content"][cc_rows], txt["carbon_content_unit"][cc_rows] = cv, cu
            txt["carbon_content_factor_id"][cc_rows] = cids
            of_frac = np.array([conversion_factor(x, "dimensionless") for x in ou]) * ov
            res["oxidation_rate"][cc_rows], txt["oxidation_rate_factor_id"][cc_rows] = of_frac, oids
            set_notes(cc_rows, cn)
            set_notes(cc_rows, on)
            cc = np.array([conversion_factor(x, "tC/GJ") for x in cu]) * cv
            ef = emission_factor_from_carbon_content(Q_(cc, "tC/GJ"), Q_(of_frac, "dimensionless"))
            e_gj = energy[~ef_over]
            res["emission_factor"][cc_rows], txt["ef_unit"][cc_rows] = ef.magnitude, "tCO2/GJ"
            res["emission_t"][cc_rows] = (Q_(e_gj, "GJ") * ef).to("tCO2").magnitude
            txt["method"][cc_rows] = "FC×NCV×CC×OF×44/12"
        ef_rows = comb[ef_over]
        if len(ef_rows):
            ev, eu, eids, en = factor_column(ef_rows, "emission_factor", "emission_factor", "ef_unit")
            res["emission_factor"][ef_rows], txt["ef_unit"][ef_rows], txt["emission_factor_id"][ef_rows] = ev, eu, eids
            set_notes(ef_rows, en)
            per_energy = np.array([_is_per_energy(x) for x in eu])
            base = np.where(per_energy, energy[ef_over], qty[ef_rows])
            base_unit = np.where(per_energy, "GJ", unit[ef_rows])
            res["emission_t"][ef_rows] = pairs_convert(ef_rows, base * ev, base_unit, eu, "tCO2", "emission factor")
            txt["method"][ef_rows] = np.where(per_energy, "FC×NCV×EF", "FC×EF")

    # --- emission-factor method: process carbonates, electricity, heat
    efm = np.flatnonzero(np.isin(src, SOURCES) & (src != "combustion") & (cat != "gas"))
    if len(efm):
        ev, eu, eids, en = factor_column(efm, "emission_factor", "emission_factor", "ef_unit")
        res["emission_factor"][efm], txt["ef_unit"][efm], txt["emission_factor_id"][efm] = ev, eu, eids
        set_notes(efm, en)
        p = np.where(np.isnan(purity[efm]), 1.0, purity[efm])
        is_carb = cat[efm] == "carbonate"
        purity[efm] = np.where(is_carb, p, np.nan)
        res["emission_t"][efm] = pairs_convert(efm, qty[efm] * p * ev, unit[efm], eu, "tCO2", "emission factor")
        txt["method"][efm] = np.where(is_carb, "M×P×EF", "AD×EF")
        for i in efm[is_carb & np.isnan(df.loc[efm, "purity"].to_numpy(dtype="float64", na_value=np.nan))]:
            set_notes([i], ["purity not given: 100 % carbonate assumed"])

    # --- GWP: CO2 rows weigh 1; non-CO2 gases emitted directly weigh their GWP
    gas_rows = np.flatnonzero(cat == "gas")
    if len(gas_rows):
        gv, gu, gids, gn = factor_column(gas_rows, "gwp")
        mass = np.array([conversion_factor(u, "t") for u in unit[gas_rows]]) * qty[gas_rows]
        res["emission_t"][gas_rows] = mass
        res["gwp"][gas_rows], txt["gwp_factor_id"][gas_rows] = gv, gids
        set_notes(gas_rows, gn)
        txt["method"][gas_rows] = "m×GWP"
    co2e = res["emission_t"].copy()
    if len(gas_rows):
        co2e[gas_rows] = co2_equivalent(Q_(res["emission_t"][gas_rows], "t"),
                                        Q_(res["gwp"][gas_rows], "tCO2e/t")).magnitude
    non_gas = np.flatnonzero(cat != "gas")
    res["gwp"][non_gas] = 1.0
    sign = np.array([SIGN[s] for s in src], dtype="int8") if n else np.zeros(0, dtype="int8")

    ledger = pd.DataFrame({
        "record_id": df["record_id"], "origin": df["origin"], "row": df["row"],
        "node_id": df["node_id"], "facility": df["facility"], "classification": df["classification"],
        "period": df["period"].astype(str), "year": df["year"].astype("int64"), "region": df["region"],
        "source": df["source"], "item": df["item"], "gas": df["gas"], "quantity": qty, "unit": unit,
        "data_tier": df["data_tier"], "document": df["document"],
        "activity_gj": res["activity_gj"],
        "ncv": res["ncv"], "ncv_unit": txt["ncv_unit"], "ncv_factor_id": txt["ncv_factor_id"],
        "carbon_content": res["carbon_content"], "carbon_content_unit": txt["carbon_content_unit"],
        "carbon_content_factor_id": txt["carbon_content_factor_id"],
        "oxidation_rate": res["oxidation_rate"], "oxidation_rate_factor_id": txt["oxidation_rate_factor_id"],
        "emission_factor": res["emission_factor"], "ef_unit": txt["ef_unit"],
        "emission_factor_id": txt["emission_factor_id"],
        "purity": purity, "gwp": res["gwp"], "gwp_factor_id": txt["gwp_factor_id"],
        "emission_t": res["emission_t"], "sign": sign, "tco2e": co2e * sign,
        "method": txt["method"], "edition": [edition_for_year(int(y)) for y in df["year"]],
        "notes": txt["notes"],
    })
    id_cols = ["ncv_factor_id", "carbon_content_factor_id", "oxidation_rate_factor_id",
               "emission_factor_id", "gwp_factor_id"]
    joined = ledger[id_cols[0]].astype(str)
    for c in id_cols[1:]:
        joined = joined + ";" + ledger[c].astype(str)
    ledger["factor_ids"] = joined.str.replace(r";{2,}", ";", regex=True).str.strip(";") if n else ""
    ledger = ledger[LEDGER_COLUMNS]
    ledger.attrs.update({
        "factor_library_version": lib.version,
        "gwp_set": lib.gwp_set,
        "calculated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "standard": "GB/T 32150",
    })
    return ledger


def _is_energy(unit: str) -> bool:
    return converts(unit, "GJ")


def _is_per_energy(unit: str) -> bool:
    return converts(unit, "tCO2/GJ")

