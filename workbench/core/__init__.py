"""The core: what every other layer of the workbench stands on, and nothing else of it imports.

:mod:`.errors` (:class:`~.errors.WorkbenchError`, the file/row/column :class:`~.errors.Problem`) ·
:mod:`.units` (one pint registry) · :mod:`.boundary` (the organisational boundary) ·
:mod:`.meters` (the meter register and the local-time convention) · :mod:`.registers` (register
rules: rollover, reset, replacement) · :mod:`.activity` (activity records) · :mod:`.factors` (the
factor library with provenance) · :mod:`.regime` (the interface and registry of accounting regimes)
· :mod:`.results` (what a connector hands on) · :mod:`.encodings` · :mod:`.sqlstore`.
"""
