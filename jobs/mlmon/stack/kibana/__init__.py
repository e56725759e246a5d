"""Kibana saved objects as code: data views, Discover searches and Lens dashboards.

``python -m mlmon.stack.kibana`` (re)writes ``kibana/mlmon.ndjson`` from the readable
definitions in this package; ``python -m mlmon.stack.kibana --check`` fails when the
committed file differs. The file is in the shape Kibana's saved-objects export
API produces, so ``mlmon setup`` imports it with
``POST /api/saved_objects/_import?overwrite=true``.

Modules, in reading order:

- :mod:`.saved_objects` - the export envelope (ids, references, migration versions)
- :mod:`.kql` - KQL rendered from (field, value) pairs, so fields stay checkable
- :mod:`.lens` - Lens columns, layers and visualizations, embedded by value
- :mod:`.controls` - dashboard options-list controls
- :mod:`.data_views`, :mod:`.searches`, :mod:`.dashboards` - what users see
- :mod:`.build` - everything in import order
- :mod:`.mappings`, :mod:`.checks` - offline checks against the index templates
"""
