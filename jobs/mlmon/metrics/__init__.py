"""Metric math: pure functions over sufficient statistics. No I/O here."""
