"""The self-contained HTML report: ``mlmon report --store URL --out report.html``.

``gather`` reads a range of a store (metric documents, alerts, reference vs latest window, label
joins), ``summary`` answers the monitor's questions first, ``series`` ranks series by their metric's
direction, ``charts`` writes Vega-Lite specs (Altair), ``preview`` the table's tiny SVGs, ``html``
lays the page out and ``assets`` inlines the chart bundle, so the file opens offline.
"""
