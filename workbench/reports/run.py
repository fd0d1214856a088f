"""Run the parameterised report notebooks with papermill (used by the CLI and schedulers)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["project_root", "run_annual_notebook", "run_inventory_notebook"]


def project_root() -> Path:
    """The checkout holding ``notebooks/`` and ``catalogs/`` (the package lives inside it)."""
    here = Path(__file__).resolve()
    for p in here.parents:
        if (p / "notebooks").is_dir() and (p / "catalogs").is_dir():
            return p
    return Path.cwd()


def run_inventory_notebook(*, period_end: str, period_start: str | None = None, catalog=None,
                           output_dir=None, enterprise: str | None = None, gwp: str = "AR5",
                           progress: bool = True, notebook=None, lake=None, enterprise_id: str | None = None,
                           registry: str | None = None) -> dict:
    """Execute ``notebooks/inventory.ipynb``; return paths of the executed notebook and outputs.
    With ``lake`` (a lake root) the inventory is made from ``enterprise_id``'s lake (the master
    data at ``registry`` when given), else from ``catalog``."""
    import papermill as pm

    from workbench.inventory.compute import months

    root = project_root()
    period_start = period_start or period_end
    months(period_start, period_end)  # validates the range before starting a kernel
    catalog = Path(catalog) if catalog else root / "catalogs" / "demo.yaml"
    if lake is None and not catalog.exists():
        raise FileNotFoundError(f"catalog {catalog} not found (run `workbench demo generate` first?)")
    if lake is not None and not Path(str(lake)).exists() and "://" not in str(lake):
        raise FileNotFoundError(f"lake {lake} not found (load data with `workbench lake ingest` first)")
    default = f"inventory-{enterprise_id}-{period_end}" if enterprise_id else f"inventory-{period_end}"
    output_dir = Path(output_dir) if output_dir else root / "output" / default
    output_dir.mkdir(parents=True, exist_ok=True)
    nb_in = Path(notebook) if notebook else root / "notebooks" / "inventory.ipynb"
    nb_out = output_dir / f"inventory_{period_end}.ipynb"
    lake_text = "" if lake is None else (str(Path(lake).resolve()) if "://" not in str(lake) else str(lake))
    pm.execute_notebook(
        str(nb_in), str(nb_out),
        parameters={"catalog": str(catalog.resolve()), "enterprise": enterprise or "",
                    "lake": lake_text, "enterprise_id": enterprise_id or "", "registry": registry or "",
                    "period_start": period_start, "period_end": period_end,
                    "output_dir": str(output_dir.resolve()), "gwp": gwp},
        progress_bar=progress, kernel_name="python3", cwd=str(output_dir),
    )
    tag = period_end if period_start == period_end else f"{period_start}_{period_end}"
    return {
        "notebook": str(nb_out),
        "html": str(output_dir / f"inventory_{tag}.html"),
        "xlsx": str(output_dir / f"inventory_{tag}.xlsx"),
        "ledger": str(output_dir / f"ledger_{tag}.parquet"),
    }


def run_annual_notebook(*, enterprise: str, year: int | None = None, period: str | None = None, lake=None,
                        catalog=None, output_dir=None, language: str = "zh", formats=("html", "pdf", "xlsx"),
                        registry: str | None = None, progress: bool = True, notebook=None,
                        timeout: int | None = 600) -> dict:
    """Execute ``notebooks/annual_report.ipynb`` with papermill for ``enterprise`` and reporting ``year``
    (or ``period``: ``2025``, ``2025-Q3``, ``2025-07`` — the monthly and quarterly reports), from
    ``lake`` (a lake root; default ``$WORKBENCH_LAKE`` or ``data/lake`` when no ``catalog`` is given)
    or ``catalog`` (an Intake catalog file), the master data at ``registry`` when given.

    Returns ``{"notebook": Path of the executed notebook, <format>: Path of each report file}``
    (:func:`workbench.reports.annual.report_paths`)."""
    import os

    import papermill as pm

    from workbench.reports.annual import _check_formats, parse_period, report_paths

    if period is None and year is None:
        raise ValueError("give the reporting year (or a period)")
    p = parse_period(period if period is not None else str(year))
    formats = _check_formats(formats)
    root = project_root()
    if catalog is not None:
        catalog = Path(catalog)
        if not catalog.exists():
            raise FileNotFoundError(f"catalog {catalog} not found")
        lake_text = ""
    else:
        lake = lake if lake is not None else os.environ.get("WORKBENCH_LAKE", "data/lake")
        lake_text = str(getattr(lake, "base_url", lake))
        if "://" not in lake_text:
            if not Path(lake_text).exists():
                raise FileNotFoundError(f"lake {lake_text} not found (load data with `workbench demo load` first)")
            lake_text = str(Path(lake_text).resolve())
    output_dir = Path(output_dir) if output_dir else root / "output" / f"report-{enterprise}-{p.text}"
    output_dir.mkdir(parents=True, exist_ok=True)
    nb_in = Path(notebook) if notebook else root / "notebooks" / "annual_report.ipynb"
    nb_out = output_dir / f"annual_report_{enterprise}_{p.text}_{language}.ipynb"
    reg = str(getattr(registry, "url", registry) or "")
    pm.execute_notebook(
        str(nb_in), str(nb_out),
        parameters={"enterprise": enterprise, "year": p.year, "period": p.text, "lake": lake_text,
                    "catalog": str(catalog.resolve()) if catalog is not None else "", "registry": reg,
                    "output_dir": str(output_dir.resolve()), "language": language, "formats": ",".join(formats)},
        progress_bar=progress, kernel_name="python3", cwd=str(output_dir), execution_timeout=timeout,
    )
    out = {"notebook": nb_out}
    for fmt, path in report_paths(output_dir.resolve(), enterprise, p, language, formats).items():
        if not path.exists():
            raise FileNotFoundError(f"the notebook ran but wrote no {fmt} report at {path}")
        out[fmt] = path
    return out
