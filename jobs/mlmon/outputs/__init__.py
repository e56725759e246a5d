"""Readers of metric documents for people and other systems: the HTML report (and exporters)."""
