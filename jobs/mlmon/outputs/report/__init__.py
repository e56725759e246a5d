"""The self-contained HTML report: ``mlmon report --store URL --out report.html``.

``data`` defines what a report shows, ``charts`` draws it (matplotlib, as
inline SVG so the file opens offline with no scripts), ``html`` lays it out,
and ``gather`` reads it from a store.
"""
