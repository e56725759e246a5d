"""A feature's distribution preview for the drift table: a tiny inline SVG, reference vs current.

Drawn by hand on purpose: 30+ table rows of a dozen numbers each need no chart library and no script
(they show even before the chart bundle runs).
"""

from __future__ import annotations

from html import escape

import numpy as np

from mlmon.outputs.report.data import CategoricalDistribution, Distribution, NumericDistribution

W, H, BINS = 96, 22, 20
REFERENCE, CURRENT = "#999999", "#0072B2"


def sparkline(d: Distribution) -> str:
    title = f"{d.feature}: reference (grey) vs current (blue)"
    body = _numeric(d) if isinstance(d, NumericDistribution) else _categorical(d)
    return (f'<svg class="spark" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">'
            f"<title>{escape(title)}</title>{body}</svg>")


def _numeric(d: NumericDistribution) -> str:
    edges = np.asarray(d.edges, dtype=float)
    if len(edges) < 2:
        return ""
    ref, cur = np.asarray(d.reference, dtype=float)[1:-1], np.asarray(d.current, dtype=float)[1:-1]
    # Equal-width groups over the reference range, so the shape reads as a density.
    grid = np.linspace(edges[0], edges[-1], BINS + 1)
    mids = (edges[:-1] + edges[1:]) / 2
    which = np.clip(np.searchsorted(grid, mids, side="right") - 1, 0, BINS - 1)
    r = np.bincount(which, ref, minlength=BINS) / max(ref.sum(), 1.0)
    c = np.bincount(which, cur, minlength=BINS) / max(cur.sum(), 1.0)
    top = max(float(r.max()), float(c.max()), 1e-12)
    xs = np.linspace(0, W, BINS + 1)

    def steps(v: np.ndarray) -> str:
        pts = []
        for i, h in enumerate(v):
            y = H - 1 - (H - 2) * h / top
            pts += [f"{xs[i]:.1f},{y:.1f}", f"{xs[i + 1]:.1f},{y:.1f}"]
        return " ".join(pts)

    return (f'<polygon points="0,{H - 1} {steps(r)} {W},{H - 1}" fill="{REFERENCE}" fill-opacity="0.5"/>'
            f'<polyline points="{steps(c)}" fill="none" stroke="{CURRENT}" stroke-width="1.3"/>')


def _categorical(d: CategoricalDistribution, top: int = 8) -> str:
    cats = sorted(set(d.reference) | set(d.current), key=lambda k: -(d.reference.get(k, 0) + d.current.get(k, 0)))[:top]
    if not cats:
        return ""
    rt, ct = max(sum(d.reference.values()), 1.0), max(sum(d.current.values()), 1.0)
    shares = [(d.reference.get(k, 0) / rt, d.current.get(k, 0) / ct) for k in cats]
    peak = max(max(s) for s in shares) or 1.0
    slot = W / len(cats)
    bars = []
    for i, (r, c) in enumerate(shares):
        for j, (v, colour) in enumerate(((r, REFERENCE), (c, CURRENT))):
            h = (H - 2) * v / peak
            bars.append(f'<rect x="{i * slot + j * slot / 2 + 0.5:.1f}" y="{H - 1 - h:.1f}" width="{slot / 2 - 1:.1f}" '
                        f'height="{h:.1f}" fill="{colour}"/>')
    return "".join(bars)
