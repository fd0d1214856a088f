"""Verification packages for third-party verifiers (issue 14, point 3; seed §9.3)."""
