"""What every report page carries: its stylesheet, the chart bundle and the few lines that start it."""

from __future__ import annotations

from functools import cache


@cache
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one classic script defining ``window.vegaEmbed`` (~0.9 MB).

    vl-convert bundles the Vega-Lite version Altair writes specs for; it is built once per process
    (about two seconds) and inlined, so the report needs no network to draw.
    """
    import altair
    import vl_convert

    major, minor = altair.SCHEMA_VERSION.lstrip("v").split(".")[:2]  # "v6.4.1" -> the 6.4 bundle
    bundle: str = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed;", vl_version=f"{major}.{minor}")
    return bundle.replace("</script", "<\\/script")


#: Draws every chart (specs are JSON script elements), sorts tables, expands segment rows.
INIT_JS = """
(function () {
  const failed = [];
  for (const el of document.querySelectorAll('div[data-spec]')) {
    const spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
    vegaEmbed(el, spec, {actions: false, renderer: 'svg', tooltip: {theme: 'light'}})
      .then(() => { el.dataset.rendered = '1'; })
      .catch(err => { failed.push(el.dataset.chart); el.textContent = 'chart failed: ' + err; console.error(err); });
  }
  window.mlmonChartFailures = failed;
  for (const table of document.querySelectorAll('table.sortable')) {
    table.querySelectorAll('th[data-sort]').forEach((th, col) => {
      th.addEventListener('click', () => {
        const asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
        const rows = [...table.querySelectorAll('tr[data-feature]')];
        const key = r => { const c = r.children[[...th.parentNode.children].indexOf(th)];
                           const v = c.dataset.v !== undefined ? c.dataset.v : c.textContent;
                           return th.dataset.sort === 'num' ? (v === '' ? -Infinity : parseFloat(v)) : v; };
        rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1));
        for (const r of rows) {
          table.appendChild(r);
          const id = r.querySelector('button.expand');
          if (id) table.querySelectorAll(`tr[data-parent="${id.dataset.expand}"]`).forEach(s => table.appendChild(s));
        }
      });
    });
  }
  for (const b of document.querySelectorAll('button.expand')) {
    b.addEventListener('click', () => {
      document.querySelectorAll(`tr[data-parent="${b.dataset.expand}"]`).forEach(r => { r.hidden = !r.hidden; });
    });
  }
})();
"""

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 24px 24px;color:#222;max-width:1280px}
header{position:sticky;top:0;background:#fff;z-index:10;border-bottom:1px solid #ddd;padding:8px 0 4px}
h1{margin:4px 0;font-size:22px} .sub{color:#555;margin:2px 0 6px;font-size:13px}
nav.contents{font-size:13px;display:flex;flex-wrap:wrap;gap:4px 18px} nav.contents a{margin-right:8px;color:#0059a0}
section.model{margin:18px 0} section.family{margin:24px 0;border-top:1px solid #ddd;padding-top:4px}
h2{font-size:20px;margin:14px 0 8px} h3{font-size:16px;margin:18px 0 6px} h4{margin:4px 0;font-size:14px}
[id]{scroll-margin-top:90px}
.summary{display:grid;grid-template-columns:1fr 1.35fr 1fr;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;font-size:13px;background:#fafafa}
.card ul{margin:4px 0;padding-left:18px} .card li{margin:2px 0} .big{font-size:16px;margin:4px 0}
.warn{background:#fff4e0;border-left:3px solid #E69F00;padding:4px 8px}
.dim{color:#666;font-size:12px;font-weight:normal} .seg{color:#555;font-size:12px}
.notes{font-size:12px;color:#555}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:11px;line-height:17px;white-space:nowrap}
.s-ok{background:#009E73;color:#fff} .s-warning{background:#E69F00;color:#000} .s-alert{background:#D55E00;color:#fff}
.s-insufficient_data{background:#8c8c8c;color:#fff} .s-no_threshold,.s-no_data{background:#e6e6e6;color:#333}
table{border-collapse:collapse;font-size:13px;margin:6px 0} td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}
th[data-sort]{cursor:pointer;text-decoration:underline dotted} tr.segrow td{background:#f6f6f6;font-size:12px}
button.expand{font-size:11px;padding:0 4px;margin-left:4px;cursor:pointer}
table.alerts details summary{cursor:pointer;color:#0059a0} table.alerts details{max-width:420px}
.charts{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:flex-start} .chart{min-height:40px}
details.more>summary{cursor:pointer;color:#0059a0;margin:8px 0}
svg.spark{vertical-align:middle}
"""
