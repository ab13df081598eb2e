"""Alembic migrations of the calibration history (run programmatically on open)."""
