"""The jobs: each turns a window of events into metric documents.

Drift, performance (realised and estimated), explainability, fairness, and
the building of reference profiles. Jobs read through the store protocols and
return documents; the scheduler (:mod:`mlmon.schedule`) writes them.
"""
