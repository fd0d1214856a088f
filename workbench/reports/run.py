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
                           progress: bool = True, notebook=None) -> dict:
    """Execute ``notebooks/inventory.ipynb``; return paths of the executed notebook and outputs."""
    import papermill as pm

    from ..inventory import months

    root = project_root()
    period_start = period_start or period_end
    months(period_start, period_end)  # validates the range before starting a kernel
    catalog = Path(catalog) if catalog else root / "catalogs" / "demo.yaml"
    if not catalog.exists():
        raise FileNotFoundError(f"catalog {catalog} not found (run `workbench demo generate` first?)")
    output_dir = Path(output_dir) if output_dir else root / "output" / f"inventory-{period_end}"
    output_dir.mkdir(parents=True, exist_ok=True)
    nb_in = Path(notebook) if notebook else root / "notebooks" / "inventory.ipynb"
    nb_out = output_dir / f"inventory_{period_end}.ipynb"
    pm.execute_notebook(
        str(nb_in), str(nb_out),
        parameters={"catalog": str(catalog.resolve()), "enterprise": enterprise or "",
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
