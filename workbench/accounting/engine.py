"""The accounting engine: activity records × factors → the emission ledger.

Vectorised: rows are grouped by item category and by the units of their quantity and factors;
factors are looked up once per distinct (item, year, region, facility); and for each group the
engine calls the clause-level formula function of the record's item category on whole columns,
as pint quantities (pint converts the units)::

    fuel        AD = FC × NCV          combustion.activity_energy
                EF = CC × OF × 44/12   combustion.emission_factor_from_carbon_content
                E  = AD × EF           combustion.combustion_emissions (also FC × EF with a site EF)
    carbonate   E  = M × P × EF        process.carbonate_decomposition
    electricity E  = AD × EF_grid      indirect.electricity_emissions
    heat        E  = AD × EF_heat      indirect.heat_emissions
    gas         E  = m × GWP           gases.co2_equivalent

The formulas are looked up on their modules at call time, so the documented function is the one
that computes.  What is *not* here is the regime (:mod:`workbench.regimes`): which sources exist,
which item categories each accepts, how each enters the total (its sign) and the edition of the
standard by reporting year come from the regime passed as ``regime`` (default GB/T 32150).

The ledger has one row per activity record, carrying every factor value and id it used, so that
each tCO2e can be traced to its activity record and to the published (or site-measured) factor.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd
import pint

from workbench.accounting import combustion, gases, indirect, process
from workbench.core.errors import WorkbenchError
from workbench.core.factors import FactorLibrary, default_library
from workbench.core.regime import Regime, get_regime
from workbench.core.units import Q_, converts, parse_unit

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


class AccountingError(WorkbenchError, ValueError):
    """A record that cannot be accounted (e.g. its units do not fit its factor)."""


def _year_of(period: pd.Series, default: int | None) -> pd.Series:
    year = pd.to_numeric(period.astype("string").str.slice(0, 4), errors="coerce")
    return year.fillna(default if default is not None else np.nan).astype("Int64")


def account(activity: pd.DataFrame, library: FactorLibrary | None = None, *, year: int | None = None,
            region: str | None = None, gwp: str | None = None, boundary=None,
            factor_sets: dict | None = None, enterprise: str = "enterprise",
            regime: Regime | str | None = None) -> pd.DataFrame:
    """Account the emissions of activity records under a regime (default GB/T 32150).

    Parameters
    ----------
    activity : DataFrame
        Activity records; normalised by :func:`workbench.core.activity.normalize_activity` if they
        have not been already.
    library : FactorLibrary, optional
        Factors (default: the shipped library).  ``gwp`` selects the GWP set.
    year, region :
        Reporting year and region for records without a ``period``/``region`` of their own.
    boundary : Boundary, optional
        Maps each record's node to its facility and 分项 class.
    factor_sets : dict, optional
        Factor-set choice by (category, kind), e.g. ``{("fuel", "ncv"): ["NDRC-circulating-UNVERIFIED"]}``.
    regime : Regime or str, optional
        The accounting regime (:func:`workbench.regimes.get_regime`): its sources and their signs,
        the edition by year, and the GWP set used when neither ``gwp`` nor ``library`` sets one.

    Returns
    -------
    DataFrame with :data:`LEDGER_COLUMNS`; ``tco2e`` is signed by the regime (GB/T 32150: exported
    sources negative).  ``attrs`` records the regime (``standard``), the library version, GWP set
    and time of calculation.
    """
    from workbench.core.activity import normalize_activity

    reg = get_regime(regime)
    lib = library or default_library(reg.default_gwp)
    if gwp:
        lib = lib.with_gwp(gwp)
    if factor_sets:
        lib = FactorLibrary(lib.table, gwp_set=lib.gwp_set, factor_sets=factor_sets,
                            items=lib.items, regions=lib.regions)
    if "origin" not in activity.columns or "row" not in activity.columns:
        activity = normalize_activity(activity, library=lib, regime=reg)
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
            item, yr, rg, node = key.split("|")
            f = lib.lookup(item, kind, year=int(yr), region=rg, facility=node or None)
            m = (keys == key) & ~have
            vals[m], units[m], ids[m] = f.value, f.unit, f.factor_id
            notes[m] = "; ".join(x for x in (f.selection, "" if f.verified else "UNVERIFIED default") if x)
        return vals, units, ids, notes

    def set_notes(rows, notes):
        for i, note in zip(rows, notes):
            if note and note not in txt["notes"][i]:
                txt["notes"][i] = (txt["notes"][i] + "; " + note) if txt["notes"][i] else note

    def where(i) -> str:
        return f"{df.at[i, 'origin']}, row {df.at[i, 'row']}"

    def by_units(rows, formula, args, target, what, first_arg=("unit", "quantity")):
        """``formula(*quantities)`` in ``target``, called once per group of rows whose arguments share
        their units.  ``args``: (magnitudes, units) per argument, units one per row or one for all.
        A first argument whose unit does not fit the second's (``what``) is an
        :class:`AccountingError`; ``first_arg`` is (column, name) of the first argument for the message."""
        out = np.empty(len(rows))
        if not len(rows):
            return out
        # one integer key per combination of the arguments' units (pd.factorize, not strings)
        key = np.zeros(len(rows), dtype=np.int64)
        for _, u in args:
            if not isinstance(u, str):
                codes, uniq = pd.factorize(np.asarray(u, dtype=object))
                key = key * len(uniq) + codes
        for k in pd.unique(key):
            m = key == k
            first = int(np.argmax(m))
            units = [u if isinstance(u, str) else u[first] for _, u in args]
            try:
                q = formula(*(Q_(np.asarray(v, dtype="float64")[m], parse_unit(u)) for (v, _), u in zip(args, units)))
                out[m] = q.to(target).magnitude
            except pint.DimensionalityError:
                raise AccountingError(
                    f"{where(rows[first])}, column '{first_arg[0]}': {first_arg[1]} unit '{units[0]}' does not "
                    f"fit {what} unit '{units[1]}' (their product is not {target})") from None
        return out

    def to_unit(values, units, target):
        """Magnitudes in ``target``, converted by pint once per distinct unit."""
        out = np.empty(len(values))
        for u in pd.unique(units):
            m = units == u
            out[m] = Q_(values[m], parse_unit(u)).to(target).magnitude
        return out

    src = df["source"].to_numpy(dtype=object)
    cat = df["item"].map(dict(zip(lib.items["item"], lib.items["category"]))).to_numpy(dtype=object)
    qty = df["quantity"].to_numpy(dtype="float64").copy()
    unit = df["unit"].to_numpy(dtype=object)
    _check_against_regime(df, src, cat, reg, where)

    # --- fuel: AD = FC × NCV, EF = CC × OF × 44/12, E = AD × EF (or FC × EF with a site EF)
    comb = np.flatnonzero(cat == "fuel")
    if len(comb):
        ef_over = df.loc[comb, "emission_factor"].notna().to_numpy()
        is_energy_unit = {u: converts(u, "GJ") for u in pd.unique(unit[comb])}
        is_energy = np.array([is_energy_unit[u] for u in unit[comb]], dtype=bool)
        # rows whose quantity is already heat need no NCV
        need_ncv = comb[~is_energy]
        energy = np.full(len(comb), np.nan)
        energy[is_energy] = to_unit(qty[comb[is_energy]], unit[comb[is_energy]], "GJ")
        if len(need_ncv):
            v, u, ids, notes = factor_column(need_ncv, "ncv", "ncv", "ncv_unit")
            res["ncv"][need_ncv], txt["ncv_unit"][need_ncv], txt["ncv_factor_id"][need_ncv] = v, u, ids
            set_notes(need_ncv, notes)
            energy[~is_energy] = by_units(need_ncv, combustion.activity_energy,
                                          [(qty[need_ncv], unit[need_ncv]), (v, u)], "GJ", "NCV")
        res["activity_gj"][comb] = energy
        cc_rows = comb[~ef_over]
        if len(cc_rows):
            cv, cu, cids, cn = factor_column(cc_rows, "carbon_content", "carbon_content", "carbon_content_unit")
            ov, ou, oids, on = factor_column(cc_rows, "oxidation_rate", "oxidation_rate", None)
            ou = np.where(ou == "fraction", "dimensionless", ou)
            res["carbon_content"][cc_rows], txt["carbon_content_unit"][cc_rows] = cv, cu
            txt["carbon_content_factor_id"][cc_rows] = cids
            res["oxidation_rate"][cc_rows] = to_unit(ov, ou, "dimensionless")
            txt["oxidation_rate_factor_id"][cc_rows] = oids
            set_notes(cc_rows, cn)
            set_notes(cc_rows, on)
            ef = by_units(cc_rows, combustion.emission_factor_from_carbon_content,
                          [(cv, cu), (ov, ou)], "tCO2/GJ", "oxidation rate",
                          first_arg=("carbon_content_unit", "carbon content"))
            res["emission_factor"][cc_rows], txt["ef_unit"][cc_rows] = ef, "tCO2/GJ"
            res["emission_t"][cc_rows] = by_units(
                cc_rows, combustion.combustion_emissions,
                [(energy[~ef_over], "GJ"), (ef, "tCO2/GJ")], "tCO2", "emission factor")
            txt["method"][cc_rows] = "FC×NCV×CC×OF×44/12"
        ef_rows = comb[ef_over]
        if len(ef_rows):
            ev, eu, eids, en = factor_column(ef_rows, "emission_factor", "emission_factor", "ef_unit")
            res["emission_factor"][ef_rows], txt["ef_unit"][ef_rows], txt["emission_factor_id"][ef_rows] = ev, eu, eids
            set_notes(ef_rows, en)
            per_energy_unit = {x: converts(x, "tCO2/GJ") for x in pd.unique(eu)}
            per_energy = np.array([per_energy_unit[x] for x in eu], dtype=bool)
            base = np.where(per_energy, energy[ef_over], qty[ef_rows])
            base_unit = np.where(per_energy, "GJ", unit[ef_rows])
            res["emission_t"][ef_rows] = by_units(ef_rows, combustion.combustion_emissions,
                                                  [(base, base_unit), (ev, eu)], "tCO2", "emission factor")
            txt["method"][ef_rows] = np.where(per_energy, "FC×NCV×EF", "FC×EF")

    # --- emission-factor method: carbonates M × P × EF, electricity and heat AD × EF
    efm = np.flatnonzero(np.isin(cat, ("carbonate", "electricity", "heat")))
    if len(efm):
        ev, eu, eids, en = factor_column(efm, "emission_factor", "emission_factor", "ef_unit")
        res["emission_factor"][efm], txt["ef_unit"][efm], txt["emission_factor_id"][efm] = ev, eu, eids
        set_notes(efm, en)
        is_carb = cat[efm] == "carbonate"
        given = ~np.isnan(purity[efm])
        p = np.where(given, purity[efm], 1.0)
        purity[efm] = np.where(is_carb, p, np.nan)
        em = np.empty(len(efm))
        for category, formula, args in (
            ("carbonate", process.carbonate_decomposition, 3),
            ("electricity", indirect.electricity_emissions, 2),
            ("heat", indirect.heat_emissions, 2),
        ):
            sel = cat[efm] == category
            if sel.any():
                rows = efm[sel]
                cols = [(qty[rows], unit[rows]), (ev[sel], eu[sel]), (p[sel], "dimensionless")][:args]
                em[sel] = by_units(rows, formula, cols, "tCO2", "emission factor")
        res["emission_t"][efm] = em
        txt["method"][efm] = np.where(is_carb, "M×P×EF", "AD×EF")
        set_notes(efm[is_carb & ~given], ["purity not given: 100 % carbonate assumed"] * int((is_carb & ~given).sum()))

    # --- GWP: CO2 rows weigh 1; non-CO2 gases emitted directly weigh their GWP: E = m × GWP
    gas_rows = np.flatnonzero(cat == "gas")
    co2e = res["emission_t"].copy()
    if len(gas_rows):
        gv, gu, gids, gn = factor_column(gas_rows, "gwp")
        res["emission_t"][gas_rows] = to_unit(qty[gas_rows], unit[gas_rows], "t")
        res["gwp"][gas_rows], txt["gwp_factor_id"][gas_rows] = gv, gids
        set_notes(gas_rows, gn)
        txt["method"][gas_rows] = "m×GWP"
        co2e[gas_rows] = by_units(gas_rows, gases.co2_equivalent,
                                  [(qty[gas_rows], unit[gas_rows]), (gv, gu)], "tCO2e", "GWP")
    non_gas = np.flatnonzero(cat != "gas")
    res["gwp"][non_gas] = 1.0
    sign = df["source"].map(reg.signs).to_numpy(dtype="int8") if n else np.zeros(0, dtype="int8")
    years = df["year"].astype("int64") if n else df["year"]
    edition = years.map({y: reg.edition(int(y)) for y in pd.unique(years)}) if n else []

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
        "method": txt["method"], "edition": edition,
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
        "standard": reg.name,
    })
    return ledger


def _check_against_regime(df: pd.DataFrame, src: np.ndarray, cat: np.ndarray, reg: Regime, where) -> None:
    """Every record's source is one of the regime's, and accepts the record's item category.

    (:func:`workbench.core.activity.normalize_activity` checks the same for records it normalises;
    this catches records normalised under another regime.)"""
    known = set(reg.source_keys)
    for s in pd.unique(src):
        if s not in known:
            i = int(np.flatnonzero(src == s)[0])
            raise AccountingError(f"{where(i)}, column 'source': '{s}' is not a source of {reg.name} "
                                  f"(one of {', '.join(reg.source_keys)})")
    for s, c in set(zip(src, cat)):
        if isinstance(c, str) and c not in reg.source(s).categories:
            i = int(np.flatnonzero((src == s) & (cat == c))[0])
            raise AccountingError(f"{where(i)}, column 'item': a {c} item cannot be reported under "
                                  f"source '{s}' of {reg.name}")
