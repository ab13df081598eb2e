"""Revisions of the calibration history schema."""
