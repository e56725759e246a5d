"""Scheduling: rounds, ``--every``, backfills. The only writer of metric documents and checkpoints."""
