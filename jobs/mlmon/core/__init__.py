"""The ground floor: what every other floor speaks in, with no I/O.

Metric and alert documents (one schema, deterministic ids), aligned windows,
the sufficient statistics a store answers with and the queries that ask for
them, reference profiles, and where the shipped assets are.
"""
