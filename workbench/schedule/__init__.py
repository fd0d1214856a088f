"""Scheduled report runs (issue 14, point 2): schedules in YAML, run records, restatements."""
