"""``workbench product …`` (product carbon footprints and labels, seed §9.4 b) and ``workbench cbam …``
(embedded emissions of exported goods for the EU CBAM)."""
from __future__ import annotations

import getpass
import json
import math
import os
import re
from pathlib import Path

import click

from workbench.cli.errors import fail

DEFAULT_NODE = "http://127.0.0.1:8000"

_enterprise = click.option("--enterprise", "enterprise", required=True, envvar="WORKBENCH_ENTERPRISE",
                           help="The enterprise (enterprise_id) whose lake holds the data.")
_lake = click.option("--lake", "lake_root", default=None,
                     help="Lake root (default $WORKBENCH_LAKE or data/lake).")
_registry = click.option("--registry", "registry_url", default=None,
                         help="Master data (SQLAlchemy URL or SQLite file) for the enterprise's record and boundary "
                              "(default: what its lake holds).")
_allocation = click.option("--allocation", type=click.Choice(["mass", "physical", "economic"]), default="mass",
                           show_default=True,
                           help="How shared emissions are divided after subdivision (ISO 14044 order: mass/physical, "
                                "then economic).")
_price = click.option("--price", "prices", multiple=True, metavar="PRODUCT=CNY",
                      help="Price per unit of a product (economic allocation), e.g. --price cement=420.")
_sold = click.option("--sold", multiple=True, metavar="PRODUCT=QTY",
                     help="Precursor sold, not used here (e.g. --sold clinker=12000 t of the period).")
_gwp = click.option("--gwp", default="AR5", show_default=True, help="GWP set of the inventory.")


def _pairs(values, option: str, *, number: bool = True) -> dict:
    out = {}
    for v in values:
        key, sep, val = str(v).partition("=")
        if not sep or not key.strip() or not val.strip():
            fail(f"{option} {v!r}: write PRODUCT=VALUE")
        if number:
            try:
                x = float(val)
            except ValueError:
                fail(f"{option} {v!r}: {val!r} is not a number")
            if not math.isfinite(x) or x < 0:
                fail(f"{option} {v!r}: need a number ≥ 0")
            out[key.strip()] = x
        else:
            out[key.strip()] = val.strip()
    return out


def _span(period: str, start: str | None) -> tuple[str, str]:
    """``--period`` YYYY (the year) or YYYY-MM (the last month), ``--start`` YYYY-MM → (first, last)."""
    def month(text, option):
        m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            fail(f"{option} {text!r}: not a month — write YYYY-MM, e.g. 2025-03 (or YYYY for --period)")
        return text.strip()

    if re.fullmatch(r"\d{4}", period.strip()):
        first, last = f"{period.strip()}-01", f"{period.strip()}-12"
    else:
        last = month(period, "--period")
        first = last
    if start:
        first = month(start, "--start")
        if first > last:
            fail(f"--start {start} is after --period {period}")
    return first, last


def _inputs(lake_root, enterprise, registry_url):
    """Check --lake, --enterprise and --registry before anything is computed."""
    from workbench.cli.lake import _lake as open_lake

    lake_root = lake_root or os.environ.get("WORKBENCH_LAKE", "data/lake")
    open_lake(lake_root, enterprise)
    md = None
    if registry_url:
        from workbench.cli.common import master_data

        md = master_data(registry_url)
        try:
            md.enterprise(enterprise)
        except Exception as exc:  # noqa: BLE001 - the master data's own one-line error
            md.dispose()
            fail(f"--enterprise {enterprise}: {exc}")
    return lake_root, md


def _inventory(lake_root, enterprise, first, last, md, gwp):
    from workbench.core.errors import WorkbenchError
    from workbench.inventory.compute import compute_inventory_from_lake
    from workbench.lake.store import Lake

    try:
        from workbench.core.factors import default_library

        default_library(gwp.upper())
    except (ValueError, KeyError) as exc:
        fail(f"--gwp {gwp}: {exc.args[0] if exc.args else exc}")
    try:
        return compute_inventory_from_lake(Lake(lake_root), enterprise, first, last, registry=md, gwp=gwp)
    except WorkbenchError:
        raise
    except (ValueError, KeyError, FileNotFoundError) as exc:
        fail(f"{enterprise} {first}..{last}: {exc.args[0] if exc.args else exc}")
    finally:
        if md is not None:
            md.dispose()


def _footprints(inv, allocation, prices, sold):
    from workbench.products.footprint import product_footprints

    return product_footprints(inv, method=allocation, prices=_pairs(prices, "--price") or None,
                              sold=_pairs(sold, "--sold") or None)


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


# ------------------------------------------------------------------------------------ product
@click.group("product")
def product_group():
    """Product carbon footprints and labels (产品碳足迹与碳标识)."""


@product_group.command("footprint")
@_enterprise
@click.option("--period", required=True, help="YYYY (the year) or YYYY-MM (the last month).")
@click.option("--start", default=None, help="First month, YYYY-MM (default: the period's).")
@_allocation
@_price
@_sold
@_lake
@_registry
@_gwp
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--pact", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the footprints as WBCSD PACT v3 ProductFootprint objects (a JSON list) to this file.")
def product_footprint(enterprise, period, start, allocation, prices, sold, lake_root, registry_url, gwp, as_json,
                      pact):
    """Cradle-to-gate (on-site) footprint per unit of every product, with its energy rating."""
    first, last = _span(period, start)
    _pairs(prices, "--price")
    _pairs(sold, "--sold")
    lake_root, md = _inputs(lake_root, enterprise, registry_url)
    inv = _inventory(lake_root, enterprise, first, last, md, gwp)
    res = _footprints(inv, allocation, prices, sold)
    if pact is not None:
        from workbench.products.pact import pact_footprint

        if pact.is_dir():
            fail(f"--pact {pact}: is a folder, not a file")
        docs = [pact_footprint(f, inv.enterprise) for f in res.footprints.values()]
        pact.parent.mkdir(parents=True, exist_ok=True)
        pact.write_text(json.dumps(docs, ensure_ascii=False, indent=2), encoding="utf-8")
    if as_json:
        doc = {"enterprise": enterprise, "period_start": first, "period_end": last, "method": allocation,
               "footprints": [f.as_dict() for f in res.footprints.values()], "check": res.check(),
               "allocation": {"statement_en": res.allocation.statement_en,
                              "statement_zh": res.allocation.statement_zh, "notes": res.notes}}
        click.echo(json.dumps(_clean(doc), ensure_ascii=False, default=_jsonable))
        return
    click.echo(f"产品碳足迹 product footprints — {enterprise} {first}..{last} (allocation: {allocation})")
    for f in res.footprints.values():
        r = f.energy_rating
        energy = f"{r.value:.2f} {r.unit} {r.label_zh} / {r.label_en}" if r.rated else "未评级 / not rated"
        click.echo(f"  {f.name_zh} {f.name_en}: {f.kgco2e_per_unit:,.2f} kgCO2e/{f.unit} "
                   f"(direct {f.per_unit_direct_tco2e * 1000:,.2f}, indirect {f.per_unit_indirect_tco2e * 1000:,.2f}); "
                   f"output {f.output:,.2f} {f.unit}; embedded {f.embedded_tco2e:,.3f} tCO2e; energy {energy}")
    c = res.check()
    click.echo(f"  allocated {c['allocated_tco2e']:,.3f} + excluded {c['excluded_tco2e']:,.3f} of the ledger's "
               f"{c['ledger_tco2e']:,.3f} tCO2e (residual {c['allocation_residual_tco2e']:.3g})")
    click.echo(f"  {res.allocation.statement_en}")
    click.echo(f"  boundary: {next(iter(res.footprints.values())).boundary_en}")


@product_group.command("label")
@_enterprise
@click.option("--product", required=True, help="The product (its code, e.g. cement).")
@click.option("--period", required=True, help="YYYY (the year) or YYYY-MM (the last month).")
@click.option("--start", default=None, help="First month, YYYY-MM (default: the period's).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the label (PNG, SVG, PDF, JSON).")
@click.option("--node", default=None,
              help=f"The identifier node the QR code points to (default $WORKBENCH_IDNODE_URL or {DEFAULT_NODE}).")
@click.option("--db", default=None, help="Label store (SQLAlchemy URL or SQLite file; default $WORKBENCH_LABELS "
                                         "or data/labels.db): the label waits there for approval.")
@click.option("--grade", default="", help="The enterprise's carbon-efficiency grade to show (with --grade-scheme).")
@click.option("--grade-scheme", default="", help="The grade's scheme, e.g. 碳效码.")
@click.option("--by", "who", default=None, help="Who asks for the label (default user:$USER).")
@_allocation
@_price
@_sold
@_lake
@_registry
@_gwp
def product_label(enterprise, product, period, start, out, node, db, grade, grade_scheme, who, allocation, prices,
                  sold, lake_root, registry_url, gwp):
    """Make a product's carbon label: submitted for approval (pending) and drawn as PNG, SVG and PDF with
    a QR code of its identifier's resolution URL.  An approved label is published to the node by the
    review page (workbench.products.store.publish)."""
    from workbench.products.label import make_label, resolution_url, write_label
    from workbench.products.store import LabelStore

    first, last = _span(period, start)
    _pairs(prices, "--price")
    _pairs(sold, "--sold")
    node = node or os.environ.get("WORKBENCH_IDNODE_URL") or DEFAULT_NODE
    if not re.match(r"https?://[^\s/]+", node):
        fail(f"--node {node!r}: need the identifier node's URL, http(s)://host[:port]")
    if grade and not grade_scheme:
        fail("--grade needs --grade-scheme (e.g. 碳效码)")
    db = db or os.environ.get("WORKBENCH_LABELS") or "data/labels.db"
    if "://" not in db:
        Path(db).resolve().parent.mkdir(parents=True, exist_ok=True)
        db = f"sqlite:///{Path(db).resolve()}"
    store = LabelStore(db)
    try:
        lake_root, md = _inputs(lake_root, enterprise, registry_url)
        inv = _inventory(lake_root, enterprise, first, last, md, gwp)
        res = _footprints(inv, allocation, prices, sold)
        label = make_label(res, product, grade=grade, grade_scheme=grade_scheme,
                           created_by=who or f"user:{getpass.getuser()}")
        url = resolution_url(node, label.identifier)
        store.submit(label, who=label.created_by)
        paths = write_label(label, url, out)
    finally:
        store.dispose()
    click.echo(f"label {label.label_id} — {label.identifier}: {label.kgco2e_per_unit:,.2f} kgCO2e/{label.declared_unit} "
               f"{label.name_zh} {label.name_en}, {label.period}")
    click.echo(f"  status: pending (待审核) in {db}; the QR code resolves at {url} once approved and published")
    for k, v in paths.items():
        click.echo(f"  {k:4s} {v}")


@product_group.command("labels")
@click.option("--db", default=None, help="Label store (default $WORKBENCH_LABELS or data/labels.db).")
@click.option("--enterprise", "enterprise", default=None, help="Only this enterprise's labels.")
@click.option("--status", default=None, type=click.Choice(["pending", "approved", "rejected", "published"]))
def product_labels(db, enterprise, status):
    """List the labels and their review state."""
    from workbench.products.store import LabelStore

    if enterprise:
        from workbench.registry.codes import CodeError, check_enterprise_id

        try:
            check_enterprise_id(enterprise)
        except CodeError as exc:
            fail(f"--enterprise: {exc}")
    db = db or os.environ.get("WORKBENCH_LABELS") or "data/labels.db"
    if "://" not in db:
        if not Path(db).exists():
            fail(f"label store {db}: no such database (make a label first: workbench product label …)")
        db = f"sqlite:///{Path(db).resolve()}"
    store = LabelStore(db)
    try:
        labels = store.list(enterprise=enterprise, status=status)
    finally:
        store.dispose()
    for lab in labels:
        decided = f" by {lab.decided_by} {lab.decided_at}" if lab.decided_by else ""
        click.echo(f"{lab.label_id}  {lab.status:9s}{decided}  {lab.identifier}  "
                   f"{lab.kgco2e_per_unit:,.2f} kgCO2e/{lab.declared_unit}")
    if not labels:
        click.echo("no labels")


# ------------------------------------------------------------------------------------ cbam
@click.group("cbam")
def cbam_group():
    """EU CBAM: embedded emissions of exported goods (欧盟碳边境调节机制)."""


@cbam_group.command("export")
@_enterprise
@click.option("--year", required=True, type=int, help="Reporting year (January to December).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.xlsx (the template's sheets, and FILE.json beside it), or FILE.json (JSON only).")
@click.option("--cn", "cn_codes", multiple=True, metavar="PRODUCT=CN",
              help="CN code of a product (default for cement plants: clinker=25231000, cement=25232900).")
@click.option("--exported", multiple=True, metavar="PRODUCT=T", help="Tonnes of a good exported to the EU.")
@click.option("--ef-el", type=float, default=None,
              help="Actual emission factor of the electricity consumed, tCO2e/MWh (needs --ef-el-source); "
                   "default the China default value 0.605, flagged.")
@click.option("--ef-el-source", default="", help="The PPA or direct-line evidence of --ef-el.")
@_allocation
@_price
@_lake
@_registry
@_gwp
def cbam_export(enterprise, year, out, cn_codes, exported, ef_el, ef_el_source, allocation, prices, lake_root,
                registry_url, gwp):
    """Specific embedded emissions (direct, indirect) per tonne of each good, in the sheets of the EU
    CBAM communication template (XLSX and JSON)."""
    from workbench.products.cbam import cbam_report, write_json, write_xlsx

    if not 2000 <= year <= 2100:
        fail(f"--year {year}: not a reporting year")
    if out.exists() and out.is_dir():
        fail(f"--out {out}: is a folder, not a file")
    if ef_el is not None and not ef_el_source:
        fail("--ef-el needs --ef-el-source (the PPA or direct-line evidence)")
    cn = _pairs(cn_codes, "--cn", number=False)
    ex = _pairs(exported, "--exported")
    pr = _pairs(prices, "--price")
    lake_root, md = _inputs(lake_root, enterprise, registry_url)
    inv = _inventory(lake_root, enterprise, f"{year}-01", f"{year}-12", md, gwp)
    rep = cbam_report(inv, method=allocation, prices=pr or None, cn_codes=cn or None, ef_el=ef_el,
                      ef_el_source=ef_el_source, exported=ex or None)
    written = []
    if out.suffix.lower() == ".json":
        written.append(write_json(rep, out))
    else:
        written.append(write_xlsx(rep, out))
        written.append(write_json(rep, out.with_suffix(".json")))
    click.echo(f"CBAM embedded emissions — {enterprise} {year} ({rep.ef_el_source})")
    for g in rep.goods.itertuples():
        click.echo(f"  {g.cn_code} {g.name_en}: SEE direct {g.see_direct:.4f}, indirect {g.see_indirect:.4f}, "
                   f"total {g.see_total:.4f} tCO2e/t (AL {g.activity_level_t:,.2f} t)")
    for f in rep.flags:
        click.echo(f"  flag: {f}")
    for p in written:
        click.echo(f"  written {p}")
