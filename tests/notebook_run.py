"""Notebooks executed in the tests: papermill in a process of its own.

The suite's worker processes hold threads, event loops and clients that earlier tests left behind
(Playwright, Dask, servers); a papermill client in such a process has, now and then, waited for
ever on a kernel that had finished.  A fresh ``python -m papermill`` process per notebook has none
of that, and a hard timeout turns any wait into a failure that names the notebook."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def execute_notebook(input_path, output_path, *, parameters=None, cwd=None, kernel_name="python3",
                     execution_timeout=300, timeout=900, progress_bar=False, **_ignored):
    """Run ``input_path`` → ``output_path`` with papermill's command line; raise with its output when
    it fails or takes longer than ``timeout`` seconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as f:
        yaml.safe_dump(parameters or {}, f, allow_unicode=True)
        params = f.name
    cmd = [sys.executable, "-m", "papermill", str(input_path), str(output_path), "-f", params, "-k", kernel_name,
           "--execution-timeout", str(execution_timeout), "--no-progress-bar", "--log-level", "WARNING"]
    if cwd is not None:
        cmd += ["--cwd", str(cwd)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"papermill {input_path}: no end within {timeout} s\n{exc.stderr or ''}") from None
    finally:
        os.unlink(params)
    if r.returncode != 0:
        raise AssertionError(f"papermill {input_path} failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return Path(output_path)
