"""The Prometheus exporter of the jobs' metric documents (``mlmon serve-metrics``).

Prometheus holds "the newest value mlmon knew at time t": each refresh reads the newest
metric document of every series (and each job's health) from the store, renders gauges
without sample timestamps, and lets go of the store; scrapes are answered from memory.
The per-window history, recomputed as labels arrive, stays in the store.
"""
