"""Verification packages for third-party verifiers (issue 14, point 3; seed §9.3).

* :func:`export_package` — the ZIP a verifier receives: activity records with their lake batch,
  raw file and SHA-256, the raw files, the factors with provenance, the results, the report and the
  executed notebook, and a manifest of every file's SHA-256 signed with Ed25519
  (:mod:`.package`);
* :func:`check_package` — signature, hashes, and every emission recomputed from the package's own
  data with the GB/T 32150 formulas, compared row by row and in total (:mod:`.check`,
  :mod:`.recompute`); a :class:`CheckResult` names each problem's file, row and column;
* keys — :func:`generate_key`, :func:`save_private_key` (mode 0600, optionally encrypted),
  :func:`load_private_key`, :func:`load_public_key`, :func:`fingerprint` (:mod:`.keys`);
* evidence — :func:`collect` → :class:`Evidence`: the drill-down from a reported figure to its ledger
  rows, activity records, raw files and factors, shared by the package and the verifier's page
  (:mod:`.evidence`).

``workbench verify keygen|export|check`` is the command line (:mod:`workbench.cli.verify`).
"""
from workbench.verification.check import CheckResult, check_package
from workbench.verification.errors import VerificationError
from workbench.verification.evidence import Evidence, RecordEvidence, collect
from workbench.verification.keys import (
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
    public_pem,
    save_private_key,
    save_public_key,
)
from workbench.verification.package import (
    FORMAT,
    FORMAT_VERSION,
    ExportResult,
    export_package,
    report_engine,
)
from workbench.verification.recompute import emission_of

__all__ = ["FORMAT", "FORMAT_VERSION", "CheckResult", "Evidence", "ExportResult", "RecordEvidence",
           "VerificationError", "check_package", "collect", "emission_of", "export_package", "fingerprint",
           "generate_key", "load_private_key", "load_public_key", "public_pem", "report_engine", "save_private_key",
           "save_public_key"]
