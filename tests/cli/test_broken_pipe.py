"""`workbench … | head`: the reader closing the pipe is not a bug — no crash log, no traceback, the
exit status a shell gives a command killed by SIGPIPE (141)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# a command under the workbench group that writes far more than a pipe holds
PROGRAM = """
import click
from workbench.cli.errors import WorkbenchGroup

@click.group(cls=WorkbenchGroup)
def main():
    pass

@main.command()
def many():
    for i in range(200_000):
        click.echo(f"line {i} of many")

main(["many"])
"""


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=tmp_path)
    assert proc.stdout.readline() == b"line 0 of many\n"
    proc.stdout.close()                      # the reader goes away, as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "bug" not in err and "Traceback" not in err and not list(tmp_path.rglob("*crash*")), err
