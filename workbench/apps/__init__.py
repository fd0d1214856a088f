"""The managers' apps (Panel, Voila) and what stands behind them: who may see what
(:mod:`workbench.apps.auth`).  Apps compute nothing the package computes; they read through
:meth:`workbench.apps.auth.Principal.lake`."""
