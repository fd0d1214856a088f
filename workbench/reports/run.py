"""Run the parameterised report notebooks with papermill (used by the CLI and schedulers)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["project_root", "run_inventory_notebook"]


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
