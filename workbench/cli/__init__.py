"""The ``workbench`` command: one click group (:mod:`.main`) and a module per command group
(:mod:`.lake`, :mod:`.registry`, :mod:`.devices`, :mod:`.devices_manage`, :mod:`.gateway`,
:mod:`.idnode`).  Commands are thin: they parse, call the package, print."""
from workbench.cli.main import main

__all__ = ["main"]
