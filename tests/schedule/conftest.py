"""Fixtures of the schedule tests (defined in schedule_helpers.py)."""
from schedule_helpers import tiny_notebook  # noqa: F401
