"""Grafana provisioning and dashboards as code, for the Prometheus + Grafana stack.

``python -m mlmon.stack.grafana`` (re)writes ``grafana/`` at the repository root from
the definitions in this package; ``python -m mlmon.stack.grafana --check`` fails when
the committed files differ. Grafana reads them through its file provisioning:

- ``grafana/provisioning/datasources/mlmon.yml``: Prometheus and Elasticsearch (the
  metric documents), with fixed uids the dashboards reference;
- ``grafana/provisioning/dashboards/mlmon.yml``: the provider that loads
- ``grafana/dashboards/*.json``: the dashboards (Grafana's JSON model).

Grafana cannot run on the development machines, so the tests type-check every
dashboard against ``@grafana/schema`` (``tests/grafana/schema_check.py``).

Modules, in reading order:

- :mod:`.datasources` - the two datasources, their uids and provisioning files
- :mod:`.promql` - the metric names and the label selectors every query shares
- :mod:`.panels` - panels (time series, stat, state timeline, heatmap, table) and their queries
- :mod:`.layout` - a dashboard: rows of panels on the 24-column grid, variables, links
- :mod:`.dashboards` - what users see: service, drift, performance, fairness and explainability, jobs
- :mod:`.build` - every file, rendered; write and check
"""
