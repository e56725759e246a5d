"""Charts as inline SVG strings, drawn with matplotlib (no scripts, opens offline)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from mlmon.outputs.report.data import CategoricalDistribution, NumericDistribution  # noqa: E402

plt.rcParams.update({
    "svg.fonttype": "none",      # text stays text: smaller files, selectable labels
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
})

#: Status -> colour, shared by heat maps and the HTML badges.
STATUS_COLOURS: dict[str, str] = {
    "ok": "#2e7d32", "warning": "#f9a825", "alert": "#c62828",
    "insufficient_data": "#9e9e9e", "no_threshold": "#cfd8dc",
}
_STATUS_ORDER = list(STATUS_COLOURS)
_XML_HEADER = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)


def _to_svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return _METADATA.sub("", _XML_HEADER.sub("", buf.getvalue(), count=1), count=1)


Point = tuple[datetime, float, bool]  # (window end, value, is_final)


def time_series(series: Mapping[str, Sequence[Point]], title: str, ylabel: str,
                warning: float | None = None, alert: float | None = None) -> str:
    """One line per series; hollow markers for provisional values, filled for final."""
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    for name, points in series.items():
        if not points:
            continue
        pts = sorted(points)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        # matplotlib plots datetimes through its date converter; its stubs only admit numbers.
        (line,) = ax.plot(cast(Any, xs), ys, label=name, linewidth=1.4)
        final = [(x, y) for x, y, f in pts if f]
        prov = [(x, y) for x, y, f in pts if not f]
        if final:
            ax.plot(*zip(*final), "o", color=line.get_color(), markersize=3)
        if prov:
            ax.plot(*zip(*prov), "o", markerfacecolor="white", color=line.get_color(), markersize=4)
    for level, colour in ((warning, STATUS_COLOURS["warning"]), (alert, STATUS_COLOURS["alert"])):
        if level is not None:
            ax.axhline(level, color=colour, linestyle="--", linewidth=1)
    ax.set_title(title, loc="left")
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=7, ncols=min(4, len(series)), loc="upper left", frameon=False)
    fig.autofmt_xdate()
    return _to_svg(fig)


def status_heatmap(rows: Sequence[str], windows: Sequence[datetime],
                   status: Mapping[tuple[str, datetime], str], title: str) -> str:
    """Rows (features) x windows, each cell coloured by its status."""
    grid = np.full((len(rows), len(windows)), _STATUS_ORDER.index("no_threshold"))
    for i, row in enumerate(rows):
        for j, w in enumerate(windows):
            s = status.get((row, w))
            if s is not None:
                grid[i, j] = _STATUS_ORDER.index(s)
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(rows) + 1.2))
    ax.imshow(grid, aspect="auto", interpolation="nearest", vmin=0, vmax=len(_STATUS_ORDER) - 1,
              cmap=ListedColormap([STATUS_COLOURS[s] for s in _STATUS_ORDER]))
    ax.set_yticks(range(len(rows)), rows)
    step = max(1, len(windows) // 8)
    ax.set_xticks(range(0, len(windows), step), [w.strftime("%m-%d %H:%M") for w in windows[::step]],
                  rotation=30, ha="right")
    ax.grid(False)
    ax.set_title(title, loc="left")
    return _to_svg(fig)


def numeric_distribution(d: NumericDistribution, max_bins: int = 40) -> str:
    """Reference vs current share per bin, merged into at most ``max_bins`` inner bins."""
    edges = np.asarray(d.edges, dtype=float)
    ref = np.asarray(d.reference, dtype=float)
    cur = np.asarray(d.current, dtype=float)
    inner_ref, inner_cur = ref[1:-1], cur[1:-1]  # outer bins are open-ended: shown as text
    group = max(1, int(np.ceil(len(inner_ref) / max_bins)))
    cut = np.arange(0, len(inner_ref), group)
    r = np.add.reduceat(inner_ref, cut) if len(inner_ref) else inner_ref
    c = np.add.reduceat(inner_cur, cut) if len(inner_cur) else inner_cur
    lefts = edges[cut]
    rights = np.append(edges[cut[1:]], edges[-1])
    r_share = r / max(ref.sum(), 1)
    c_share = c / max(cur.sum(), 1)
    fig, ax = plt.subplots(figsize=(3.6, 2.4))
    ax.stairs(r_share, np.append(lefts, rights[-1]), label="reference", fill=True, alpha=0.35)
    ax.stairs(c_share, np.append(lefts, rights[-1]), label="current", linewidth=1.5)
    below = (ref[0] / max(ref.sum(), 1), cur[0] / max(cur.sum(), 1))
    above = (ref[-1] / max(ref.sum(), 1), cur[-1] / max(cur.sum(), 1))
    ax.set_title(f"{d.feature}\n<min ref {below[0]:.1%}/cur {below[1]:.1%}, "
                 f">max ref {above[0]:.1%}/cur {above[1]:.1%}", loc="left", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return _to_svg(fig)


def categorical_distribution(d: CategoricalDistribution, top: int = 12) -> str:
    cats = sorted(set(d.reference) | set(d.current), key=lambda k: -(d.reference.get(k, 0) + d.current.get(k, 0)))[:top]
    rt, ct = max(sum(d.reference.values()), 1), max(sum(d.current.values()), 1)
    x = np.arange(len(cats))
    fig, ax = plt.subplots(figsize=(3.6, 2.4))
    ax.bar(x - 0.2, [d.reference.get(k, 0) / rt for k in cats], 0.4, label="reference", alpha=0.6)
    ax.bar(x + 0.2, [d.current.get(k, 0) / ct for k in cats], 0.4, label="current")
    ax.set_xticks(x, cats, rotation=30, ha="right")
    ax.set_title(d.feature, loc="left", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return _to_svg(fig)


def distribution(d: NumericDistribution | CategoricalDistribution) -> str:
    return numeric_distribution(d) if isinstance(d, NumericDistribution) else categorical_distribution(d)
