"""The pieces of the HTML report (``cimkit.report.html``): number formatting with SI prefixes and units, escaped
sortable tables, figures (matplotlib as inline base64 PNG; scatter plots built by hand as inline SVG so that
hovering a point shows its tooltip), and one section renderer per result kind.

A renderer is registered with ``@section("Kind")`` for the ``"result"`` name of a result's ``to_dict()`` (or the
name ``html.recognise`` gives a benchmark file of a known shape); it takes the result's plain data and returns
the section's HTML body. A kind without a renderer gets ``generic``: its scalar fields as a table and a note
saying that the kind is not specifically rendered, so that no file is ever dropped silently.

Every string taken from a result is user data: it goes through ``esc`` (``html.escape``) before it reaches the
page, and matplotlib draws it with math text off (a ``$`` in a layer name is text, not TeX).
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .protocol import SI_PREFIXES
from .protocol import si as protocol_si

#: a section renderer: the result's data -> the section's HTML body
Renderer = Callable[[dict[str, Any]], str]
#: result kind -> its renderer (``section`` fills it)
SECTIONS: dict[str, Renderer] = {}
#: result kind -> a short human title of the kind
TITLES: dict[str, str] = {}
#: at most this many rows in a table (a study of 100,000 trials would make the page unusable); a note says so
MAX_ROWS = 2000
#: at most this many bars (layers) in a per-layer figure; the rest are summed into one bar
MAX_BARS = 60


def section(kind: str, title: str = "") -> Callable[[Renderer], Renderer]:
    """Register the decorated function as the renderer of results whose ``"result"`` is ``kind``."""

    def register(fn: Renderer) -> Renderer:
        SECTIONS[kind] = fn
        TITLES[kind] = title or kind
        return fn

    return register


# ---- numbers and text --------------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    """``value`` as text safe inside HTML content and quoted attributes."""
    return html.escape(str(value), quote=True)


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, a bool, a string, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def values(items: Iterable[Any]) -> np.ndarray:
    """``items`` as a float array, NaN where an item is not a finite number (0 stays 0)."""
    return np.array([math.nan if (v := number(x)) is None else v for x in items], dtype=float)


def si(value: Any, unit: str = "", digits: int = 4) -> str:
    """``value`` with an SI prefix and ``unit`` (``1.234 µJ``, ``56.7 ns``); "n/a" when undefined: the
    terminal summaries' formatting (``cimkit.report.protocol.si``) at four significant digits, trailing
    zeros dropped."""
    v = number(value)
    if v is None:
        return "n/a"
    mantissa, _, rest = protocol_si(v, unit, digits).partition(" ")
    if "." in mantissa and "e" not in mantissa:  # a page's columns read better without trailing zeros
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa} {rest}".strip()


def plain(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (thousands separated for integers), a bool as yes / no, any
    other value as its text; "n/a" for None / NaN."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = number(value)
    if isinstance(value, (float, np.floating)):
        return "n/a" if v is None else f"{v:.{digits}g}"
    return str(value)


def pct(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage (``0.9712`` -> ``97.12%``); "n/a" when undefined."""
    v = number(value)
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def signed_pct(value: Any, digits: int = 0) -> str:
    """A relative change as a signed percentage (``-0.5`` -> ``-50%``); "n/a" when undefined."""
    v = number(value)
    return "n/a" if v is None else f"{100 * v:+.{digits}f}%"


def _negated(value: Any) -> float | None:
    v = number(value)
    return None if v is None else -v


def mm2(value: Any) -> str:
    """An area in mm² (``12.35 mm²``); "n/a" when undefined."""
    v = number(value)
    return "n/a" if v is None else f"{v:.4g} mm²"


def fmt(key: str, value: Any) -> str:
    """A field's value formatted by the unit its name ends with (the naming contract of
    ``cimkit.report.protocol``): ``_j`` joules, ``_s`` seconds, ``_mm2`` mm², ``accuracy`` a percentage."""
    if number(value) is None:
        return plain(value)
    k = key.lower()
    if k.endswith("_mm2"):
        return mm2(value)
    if k.endswith(("_j", "_js")):
        return si(value, "J s" if k.endswith(("_js", "edp")) else "J")
    if k.endswith("_s") and not k.endswith("_per_s"):
        return si(value, "s")
    if k.endswith("_per_s"):
        return si(value, "/s")
    if "accuracy" in k or k in ("acc", "utilization", "sparsity", "float", "chance") or k.startswith("acc_"):
        return pct(value)
    return plain(value)


def cell_value(value: Any) -> str:
    """The ``data-v`` sort key of a table cell: the number itself where there is one, else the text."""
    v = number(value)
    return repr(v) if v is not None else ("" if value is None else str(value))


# ---- HTML blocks ---------------------------------------------------------------------------------------------------
def note(text: str, kind: str = "note") -> str:
    """A paragraph in a box (``kind``: "note", "warn" or "render-error"); ``text`` is escaped."""
    return f'<p class="{kind}">{esc(text)}</p>'


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Key figures as a grid of cards: (label, formatted value) each, both escaped."""
    body = "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>' for k, v in items
    )
    return f'<div class="cards">{body}</div>'


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    formats: Sequence[Callable[[Any], str] | None] | None = None,
    caption: str = "",
) -> str:
    """A sortable table (click a header to sort, numbers by value): ``rows`` of raw values, shown through
    ``formats`` (one per column; None: ``plain``) and sorted by their raw value (``data-v``). Everything is
    escaped; at most ``MAX_ROWS`` rows, with a note when cut."""
    formats = list(formats or [None] * len(columns))
    head = "".join(f'<th scope="col" title="click to sort">{esc(c)}</th>' for c in columns)
    shown = rows[:MAX_ROWS]
    body = []
    for row in shown:
        tds = []
        for value, f in zip(row, formats):
            text = (f or plain)(value)
            cls = ' class="num"' if number(value) is not None else ""
            tds.append(f'<td{cls} data-v="{esc(cell_value(value))}">{esc(text)}</td>')
        body.append(f"<tr>{''.join(tds)}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    cut = (
        note(f"{len(rows) - MAX_ROWS:,} more rows not shown (first {MAX_ROWS:,} of {len(rows):,})")
        if len(rows) > MAX_ROWS
        else ""
    )
    return f'<table class="sortable">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{cut}'


def key_table(data: Mapping[str, Any], keys: Iterable[str] | None = None) -> str:
    """The scalar fields of ``data`` (all, or ``keys``) as a two-column sortable table, formatted by unit."""
    names = [k for k in (keys if keys is not None else data) if k in data and _scalar(data[k])]
    return table(["field", "value"], [[k, data[k]] for k in names], formats=[None, None]) if names else ""


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def h3(text: str) -> str:
    """A sub-heading of a section, escaped."""
    return f"<h3>{esc(text)}</h3>"


# ---- figures -------------------------------------------------------------------------------------------------------
def png_figure(draw: Callable[[Any, Any], None], *, size: tuple[float, float], alt: str, ncols: int = 1) -> str:
    """A matplotlib figure drawn by ``draw(fig, ax)`` (Agg, math text off), as an inline base64 PNG ``<img>``;
    the figure is always closed. ``size`` in inches at 100 dpi."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"text.parse_math": False, "font.size": 8, "axes.titlesize": 9}):
        fig, ax = plt.subplots(1, ncols, figsize=size, dpi=100)
        try:
            draw(fig, ax)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        finally:
            plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<figure class="fig"><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></figure>'


def stacked_bars(
    labels: Sequence[str],
    parts: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    title: str,
    horizontal: bool = False,
    unit: str = "",
) -> str:
    """Stacked bars: one bar per label, one stack segment per part (``parts[name][i]`` for bar ``i``), as a PNG
    figure; with a ``unit`` the values are shown with the SI prefix that suits the tallest bar. More than
    ``MAX_BARS`` bars: the largest ones, the rest summed as "(others)"."""
    labels = [str(x) for x in labels]
    names = [n for n in parts if np.nansum(np.abs(np.asarray(parts[n], dtype=float))) > 0] or list(parts)[:1]
    values = np.nan_to_num(np.array([np.asarray(parts[n], dtype=float) for n in names]).reshape(len(names), -1))
    if values.shape[1] > MAX_BARS:
        keep = np.sort(np.argsort(-values.sum(axis=0), kind="stable")[: MAX_BARS - 1])
        rest = np.setdiff1d(np.arange(values.shape[1]), keep)
        labels = [labels[i] for i in keep] + [f"(others: {len(rest)})"]
        values = np.concatenate([values[:, keep], values[:, rest].sum(axis=1, keepdims=True)], axis=1)
    n = values.shape[1]
    if unit:
        factor, prefix = scale_prefix(values.sum(axis=0))
        values = values / factor
        ylabel = f"{ylabel} ({prefix}{unit})"

    def draw(fig, ax) -> None:
        base = np.zeros(n)
        cmap = _colors(len(names))
        for i, name in enumerate(names):
            if horizontal:
                ax.barh(range(n), values[i], left=base, label=name, color=cmap[i])
            else:
                ax.bar(range(n), values[i], bottom=base, label=name, color=cmap[i])
            base += values[i]
        if horizontal:
            ax.set_yticks(range(n), labels)
            ax.invert_yaxis()
            ax.set_xlabel(ylabel)
        else:
            ax.set_xticks(range(n), labels, rotation=90 if n > 6 else 0, fontsize=7 if n > 12 else 8)
            ax.set_ylabel(ylabel)
        ax.set_title(title)
        if len(names) > 1:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    width = min(16.0, max(6.5, 0.28 * n + 3.5)) if not horizontal else 8.0
    height = 4.2 if not horizontal else max(2.2, 0.35 * n + 1.2)
    return png_figure(draw, size=(width, height), alt=title)


def scale_prefix(values: Any) -> tuple[float, str]:
    """The SI factor and prefix for showing ``values`` (by their largest magnitude): ``(1e-9, "n")``."""
    v = np.abs(np.asarray(values, dtype=float))
    top = float(np.nanmax(v)) if v.size and np.isfinite(v).any() else 0.0
    for factor, prefix in SI_PREFIXES:
        if top >= factor * 0.9995:
            return factor, prefix
    return 1.0, ""


#: objective (metric) name of a study -> how its values are written
METRIC_FORMATS: dict[str, Callable[[Any], str]] = {
    "energy": lambda v: si(v, "J"),
    "latency": lambda v: si(v, "s"),
    "area": lambda v: mm2(v),
    "edp": lambda v: si(v, "J s"),
    "edap": lambda v: si(v, "J s mm²"),
    "accuracy": lambda v: pct(v),
}


def metric_format(name: str) -> Callable[[Any], str]:
    """How to write a study objective's or figure's values (by its name: energy, energy_j, area_mm2, ...)."""
    base = name.split(":")[0].lower()
    for key in ("energy", "latency", "area", "edap", "edp", "accuracy"):
        if base == key or base.startswith(key + "_"):
            return METRIC_FORMATS[key]
    return lambda v: fmt(name, v)


def shares_figure(breakdowns: Mapping[str, Mapping[str, Any]], title: str) -> str:
    """One 100 % stacked bar per quantity (area, energy, latency), segments the components' shares."""
    comps = list(dict.fromkeys(c for b in breakdowns.values() for c in b))
    labels = list(breakdowns)
    parts: dict[str, list[float]] = {c: [] for c in comps}
    for b in breakdowns.values():
        vals = np.array([number(b.get(c)) or 0.0 for c in comps])
        total = vals.sum()
        for c, v in zip(comps, vals / total * 100 if total > 0 else vals):
            parts[c].append(float(v))
    return stacked_bars(labels, parts, ylabel="share (%)", title=title, horizontal=True)


def log_axis(axis: Any, unit: str = "") -> None:
    """Label a logarithmic matplotlib axis in plain text (math text is off, so the default ``10^k`` labels would
    show as TeX source): decades as ``si(value, unit)``, no minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, numticks=8))
    axis.set_major_formatter(FuncFormatter(lambda v, _: si(v, unit, 3) if unit else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(n)]


#: colours of point groups in hand-built plots (matplotlib's tab10)
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Nice axis ticks between ``lo`` and ``hi`` (decades on a log axis)."""
    from matplotlib.ticker import MaxNLocator

    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        step = max(1, (b - a) // 6)
        return [10.0**e for e in range(a, b + 1, step) if lo <= 10.0**e <= hi] or [lo, hi]
    return [float(t) for t in MaxNLocator(5).tick_values(lo, hi) if lo - 1e-12 * abs(hi - lo) <= t <= hi]


def pareto_mask(x: Any, y: Any) -> np.ndarray:
    """Which points (both objectives minimized) no other point dominates (no worse in both, better in one);
    equal points are all kept. O(n log n): sorted by x, a point is dominated when a point of smaller x has a
    y no larger, or a point of the same x a smaller y."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    first = np.r_[True, xs[1:] != xs[:-1]]  # the first (least y) point of each x
    group = np.cumsum(first) - 1
    least = ys[first]
    before = np.r_[np.inf, np.minimum.accumulate(least)[:-1]]  # least y among smaller x
    dominated = (before[group] <= ys) | (ys > least[group])
    mask = np.empty(x.size, dtype=bool)
    mask[order] = ~dominated
    return mask


#: at most this many points in a hand-built plot (every highlighted point, then an even sample of the others)
MAX_POINTS = 3000


def scatter_svg(
    x: Sequence[Any],
    y: Sequence[Any],
    tips: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    highlight: Sequence[bool] | None = None,
    xunit: Callable[[float], str] = plain,
    yunit: Callable[[float], str] = plain,
    front: bool = True,
    groups: Sequence[str] | None = None,
) -> str:
    """A scatter plot as inline SVG built by hand: each point a ``<circle>`` with a ``<title>`` and ``data-tip``
    (hover shows its tooltip); ``highlight``ed points (the Pareto front) drawn larger in red and joined by a
    line when ``front``; ``groups`` (one name per point) colour the points, with a legend. Axes become logarithmic when the values span more than 30x. Points with an undefined
    coordinate are left out (the caption counts them)."""
    xs, ys = values(x), values(y)
    ok = np.isfinite(xs) & np.isfinite(ys)
    hl = np.asarray(highlight if highlight is not None else np.zeros(len(xs), bool), dtype=bool)
    others = np.flatnonzero(ok & ~hl)
    room = max(MAX_POINTS - int((ok & hl).sum()), 0)
    sampled = len(others) > room
    if sampled:  # keep the plot light: drop all but an even sample of the points off the front
        ok[np.setdiff1d(others, others[np.linspace(0, len(others) - 1, room).astype(int)] if room else [])] = False
    if not ok.any():
        return note(f"{title}: no point with both figures defined")
    W, H, L, R, T, B = 560, 360, 78, 16, 28, 46
    logx = bool(np.all(xs[ok] > 0) and xs[ok].max() > 30 * xs[ok].min())
    logy = bool(np.all(ys[ok] > 0) and ys[ok].max() > 30 * ys[ok].min())

    def scale(v: np.ndarray, log: bool, lo_px: float, hi_px: float, lo: float, hi: float) -> np.ndarray:
        f = np.log10 if log else (lambda a: a)
        a, b = f(lo), f(hi)
        return lo_px + (f(v) - a) / (b - a) * (hi_px - lo_px) if b > a else np.full_like(v, (lo_px + hi_px) / 2)

    def bounds(v: np.ndarray, log: bool) -> tuple[float, float]:
        lo, hi = float(v.min()), float(v.max())
        if log:
            return lo / 1.3, hi * 1.3
        pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = bounds(xs[ok], logx), bounds(ys[ok], logy)
    px = scale(np.where(ok, xs, x0), logx, L, W - R, x0, x1)
    py = scale(np.where(ok, ys, y0), logy, H - B, T, y0, y1)
    out = [
        f'<svg class="scatter" role="img" aria-label="{esc(title)}" viewBox="0 0 {W} {H}" width="{W}" height="{H}">',
        f'<text x="{W / 2}" y="16" class="t">{esc(title)}</text>',
        f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" class="frame"/>',
    ]
    for t in _ticks(x0, x1, logx):
        p = float(scale(np.array([t]), logx, L, W - R, x0, x1)[0])
        out.append(f'<line x1="{p:.1f}" x2="{p:.1f}" y1="{T}" y2="{H - B}" class="grid"/>')
        out.append(f'<text x="{p:.1f}" y="{H - B + 14}" class="tick" text-anchor="middle">{esc(xunit(t))}</text>')
    for t in _ticks(y0, y1, logy):
        p = float(scale(np.array([t]), logy, H - B, T, y0, y1)[0])
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{p:.1f}" y2="{p:.1f}" class="grid"/>')
        out.append(f'<text x="{L - 4}" y="{p + 3:.1f}" class="tick" text-anchor="end">{esc(yunit(t))}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 8}" class="lab" text-anchor="middle">{esc(xlabel)}</text>')
    out.append(
        f'<text x="14" y="{(T + H - B) / 2}" class="lab" text-anchor="middle" '
        f'transform="rotate(-90 14 {(T + H - B) / 2})">{esc(ylabel)}</text>'
    )
    sel = np.flatnonzero(ok & hl)
    if front and len(sel) > 1:
        order = sel[np.argsort(xs[sel], kind="stable")]
        pts = " ".join(f"{px[i]:.1f},{py[i]:.1f}" for i in order)
        out.append(f'<polyline points="{pts}" class="front"/>')
    names = list(dict.fromkeys(str(g) for g in groups)) if groups is not None else []
    palette = dict(zip(names, _PALETTE * (len(names) // len(_PALETTE) + 1)))
    for k, name in enumerate(names):
        out.append(
            f'<circle cx="{L + 10}" cy="{T + 10 + 13 * k}" r="4" fill="{palette[name]}"/>'
            f'<text x="{L + 18}" y="{T + 14 + 13 * k}" class="tick">{esc(name)}</text>'
        )
    for i in np.flatnonzero(ok & ~hl).tolist() + sel.tolist():
        cls, r = ("pt pareto", 5.5) if hl[i] else ("pt", 3.5)
        tip = esc(tips[i])
        fill = f' style="fill:{palette[str(groups[i])]}"' if groups is not None else ""
        out.append(
            f'<circle class="{cls}" cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="{r}"{fill} data-tip="{tip}">'
            f"<title>{tip}</title></circle>"
        )
    out.append("</svg>")
    left = int((~ok).sum()) - (len(others) - room if sampled else 0)
    cap = f"{int(ok.sum())} point(s)" + (f", {int((ok & hl).sum())} on the Pareto front (red)" if hl.any() else "")
    cap += f"; {left} without both figures left out" if left else ""
    cap += (
        f"; {len(others) - room:,} points off the front not drawn (an even sample of {room:,} shown)" if sampled else ""
    )
    return f'<figure class="fig">{"".join(out)}<figcaption>{esc(cap)}; hover a point for details</figcaption></figure>'


def lines_figure(
    series: Sequence[dict[str, Any]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    percent: bool = True,
    hlines: Sequence[tuple[str, Any]] = (),
    logx: bool | None = None,
) -> str:
    """Line plot of ``series`` (dicts of ``label``, ``x``, ``y`` and optional ``low`` / ``high`` band, fractions
    shown as % when ``percent``) with horizontal reference lines (label, value). The x axis is logarithmic when
    ``logx`` (None: when the positive x span more than 100x)."""
    k = 100.0 if percent else 1.0

    def arr(v: Sequence[Any] | None) -> np.ndarray:
        return np.array([number(a) if number(a) is not None else math.nan for a in (v or [])], dtype=float)

    xs_all = np.concatenate([arr(s["x"]) for s in series]) if series else np.zeros(0)
    pos = xs_all[np.isfinite(xs_all) & (xs_all > 0)]
    log = logx if logx is not None else bool(len(pos) > 1 and pos.max() / pos.min() > 100)

    def draw(fig, ax) -> None:
        for s in series:
            x, y = arr(s["x"]), arr(s["y"]) * k
            if log:
                x = np.where(x > 0, x, pos.min() / 10 if len(pos) else 1e-12)
            (line,) = ax.plot(x, y, marker="o", ms=3, label=str(s.get("label", "")))
            if s.get("low") is not None and s.get("high") is not None:
                ax.fill_between(x, arr(s["low"]) * k, arr(s["high"]) * k, alpha=0.2, color=line.get_color())
        for label, value in hlines:
            if number(value) is not None:
                ax.axhline(float(value) * k, ls=":", lw=1, color="k", label=label)
        if log:
            ax.set_xscale("log")
            log_axis(ax.xaxis, "s" if xlabel.endswith("_s") else "")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if any(s.get("label") for s in series) or hlines:
            ax.legend(fontsize=7)

    return png_figure(draw, size=(6.8, 3.8), alt=title)


def heatmap(
    matrix: Sequence[Sequence[Any]], rows: Sequence[str], cols: Sequence[str], *, title: str, label: str
) -> str:
    """A matrix as a colour map with the row and column names (values annotated when small)."""
    m = np.array([[number(v) if number(v) is not None else math.nan for v in r] for r in matrix], dtype=float)

    def draw(fig, ax) -> None:
        im = ax.imshow(m, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
        step = max(1, len(cols) // 25)
        ax.set_xticks(range(0, len(cols), step), [str(c) for c in cols][::step], fontsize=7, rotation=45, ha="right")
        if m.size <= 100:
            for (i, j), v in np.ndenumerate(m):
                if math.isfinite(v):
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=6, color="w")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, label=label)

    return png_figure(
        draw, size=(min(14.0, max(5.0, 0.35 * len(cols) + 3)), max(2.4, 0.32 * len(rows) + 1.6)), alt=title
    )


# ---- the generic fallback ------------------------------------------------------------------------------------------
def generic(data: Mapping[str, Any]) -> str:
    """Any result: its scalar fields as a table, its nested fields named, and a note that the kind is not
    specifically rendered."""
    kind = data.get("result", "?")
    nested = [k for k, v in data.items() if not _scalar(v)]
    parts = [
        note(
            f"result kind {kind!s} is not specifically rendered by this cimkit version: its scalar fields are shown"
            + (f"; nested fields not shown: {', '.join(map(str, nested))}" if nested else ""),
            "warn",
        )
    ]
    scalars = {k: v for k, v in data.items() if _scalar(v) and not str(k).startswith("_")}
    parts.append(table(["field", "value"], [[k, fmt(k, v)] for k, v in scalars.items()]) if scalars else "")
    return "".join(parts)


# ---- cost: Report --------------------------------------------------------------------------------------------------
def _breakdown_rows(d: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    comps = list(
        dict.fromkeys(
            [
                *(d.get("area_breakdown_mm2") or {}),
                *(d.get("energy_breakdown_j") or {}),
                *(d.get("latency_breakdown_s") or {}),
            ]
        )
    )
    e_tot = number(d.get("energy_j")) or 0.0
    rows = []
    for c in comps:
        e = (d.get("energy_breakdown_j") or {}).get(c)
        share = (number(e) or 0.0) / e_tot if e_tot else None
        rows.append(
            [c, (d.get("area_breakdown_mm2") or {}).get(c), e, share, (d.get("latency_breakdown_s") or {}).get(c)]
        )
    return comps, rows


def _component_section(d: Mapping[str, Any], what: str) -> str:
    """Area / energy / latency by component: shares as stacked bars and a table."""
    _, rows = _breakdown_rows(d)
    if not rows:
        return ""
    bds = {
        label: d[key]
        for label, key in (
            ("area", "area_breakdown_mm2"),
            ("energy", "energy_breakdown_j"),
            ("latency", "latency_breakdown_s"),
        )
        if isinstance(d.get(key), dict) and any(number(v) for v in d[key].values())
    }
    fig = shares_figure(bds, f"{what}: share of each component") if bds else ""
    tab = table(
        ["component", "area", "energy", "energy share", "latency"],
        rows,
        formats=[None, mm2, lambda v: si(v, "J"), pct, lambda v: si(v, "s")],
    )
    return h3("By component") + fig + tab


@section("Report", "cost of a workload on a chip")
def render_report(d: dict[str, Any]) -> str:
    """A ``Report``: the totals, area / energy / latency by component, energy per layer and component (stacked
    bars), energy by operator class (op kind: conv, linear, matmul, softmax, norm, ...), the units, endurance."""
    out = []
    if d.get("feasible") is False:
        out.append(note(f"INFEASIBLE: {d.get('reason') or 'the chip cannot hold the workload'}", "warn"))
    if d.get("unmapped"):
        names = [str(n) for n in d["unmapped"]]
        out.append(
            note(
                f"not priced: {len(names)} unmapped op(s) no op rule matches: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}",
                "warn",
            )
        )
    arrays = f"{plain(d.get('arrays'))} ({plain(d.get('tiles'))} tiles)"
    out.append(
        cards(
            [
                ("chip area", mm2(d.get("area_mm2"))),
                ("energy / inference", si(d.get("energy_j"), "J")),
                ("latency / inference", si(d.get("latency_s"), "s")),
                ("period", si(d.get("period_s"), "s")),
                ("throughput", si(d.get("fps"), "FPS")),
                ("TOPS", plain(d.get("tops"))),
                ("TOPS/W", plain(d.get("tops_per_w"))),
                ("TOPS/mm²", plain(d.get("tops_per_mm2"))),
                ("EDP", si(d.get("edp_js"), "J s")),
                ("operations", si(d.get("ops"), "OP")),
                ("arrays", arrays),
                ("utilization", pct(d.get("utilization"), 1)),
            ]
        )
    )
    out.append(_component_section(d, f"{d.get('workload', '')} on {d.get('spec', '')}"))
    layers = [row for row in d.get("layers") or [] if isinstance(row, dict)]
    if layers:
        comps = list(
            dict.fromkeys(
                k[len("energy_") : -2]
                for row in layers
                for k in row
                if k.startswith("energy_") and k.endswith("_j") and k != "energy_j"
            )
        )
        names = [str(row.get("name", i)) for i, row in enumerate(layers)]
        parts = {c: [number(row.get(f"energy_{c}_j")) or 0.0 for row in layers] for c in comps}
        out.append(h3("By layer"))
        if any(any(v) for v in parts.values()):
            out.append(
                stacked_bars(
                    names, parts, ylabel="energy per inference", title="energy per layer and component", unit="J"
                )
            )
        cols = ["layer", "kind", *(["unit"] if any("unit" in r for r in layers) else []), "arrays", "energy", "latency"]
        rows = [
            [
                r.get("name"),
                r.get("kind"),
                *([r.get("unit")] if "unit" in cols else []),
                r.get("arrays"),
                r.get("energy_j"),
                r.get("latency_s"),
            ]
            for r in layers
        ]
        fm: list[Callable[[Any], str] | None] = [None] * (len(cols) - 2) + [lambda v: si(v, "J"), lambda v: si(v, "s")]
        out.append(table(cols, rows, formats=fm, caption="per layer (click a header to sort)"))
    kinds = d.get("by_kind") or {}
    if isinstance(kinds, dict) and kinds:
        names = list(kinds)
        moved = [number(kinds[k].get("data_movement_j")) or 0.0 for k in names]
        total = [number(kinds[k].get("energy_j")) or 0.0 for k in names]
        out.append(h3("By operator class"))
        out.append(
            stacked_bars(
                names,
                {"compute": [t - m for t, m in zip(total, moved)], "data movement": moved},
                ylabel="energy per inference",
                title="energy by operator class (op kind)",
                unit="J",
            )
        )
        e_tot = number(d.get("energy_j")) or sum(total)
        rows = [
            [
                k,
                kinds[k].get("ops"),
                kinds[k].get("energy_j"),
                (number(kinds[k].get("energy_j")) or 0) / e_tot if e_tot else None,
                kinds[k].get("data_movement_j"),
                kinds[k].get("latency_s"),
            ]
            for k in names
        ]
        out.append(
            table(
                ["operator class", "ops", "energy", "share", "data movement", "latency"],
                rows,
                formats=[None, plain, lambda v: si(v, "J"), pct, lambda v: si(v, "J"), lambda v: si(v, "s")],
            )
        )
    units = d.get("units") or {}
    if isinstance(units, dict) and units:
        out.append(h3("Units"))
        keys = list(dict.fromkeys(k for u in units.values() if isinstance(u, dict) for k in u))
        rows = [
            [name, *[fmt(k, u.get(k)) if _scalar(u.get(k)) else ", ".join(map(str, u.get(k) or [])) for k in keys]]
            for name, u in units.items()
            if isinstance(u, dict)
        ]
        out.append(table(["unit", *keys], rows))
    if d.get("endurance"):
        out.append(h3("Endurance"))
        out.append(key_table(d["endurance"]))
    return "".join(out)


@section("ManyReport", "cost of a workload on many chips")
def render_many(d: dict[str, Any]) -> str:
    """A ``ManyReport``: how many configurations are feasible, energy against area with the Pareto front (hover:
    the configuration), and a sortable table of the configurations."""
    n = int(number(d.get("configurations")) or len(d.get("energy_j") or []))
    feas = [bool(v) for v in d.get("feasible") or [False] * n]
    specs = [str(s) for s in d.get("specs") or []] or [f"configuration {i}" for i in range(n)]
    e, a, t = (list(d.get(k) or [None] * n) for k in ("energy_j", "area_mm2", "latency_s"))
    tw = list(d.get("tops_per_w") or [None] * n)
    ok = np.array([f and number(x) is not None and number(y) is not None for f, x, y in zip(feas, a, e)], dtype=bool)
    best = min([v for v in (number(x) for x, f in zip(e, ok) if f) if v is not None], default=None)
    out = [
        cards(
            [
                ("configurations", plain(n)),
                ("feasible", plain(int(ok.sum()))),
                ("least energy", si(best, "J")),
                (
                    "least area",
                    mm2(min([v for v in (number(x) for x, f in zip(a, ok) if f) if v is not None], default=None)),
                ),
            ]
        )
    ]
    if ok.any():
        av = values(a)
        ev = values(e)
        front = np.zeros(n, bool)
        idx = np.flatnonzero(ok)
        front[idx] = pareto_mask(av[idx], ev[idx])
        tips = [
            f"{specs[i] if i < len(specs) else i}: area {mm2(a[i])}, energy {si(e[i], 'J')}, latency {si(t[i], 's')}, TOPS/W {plain(tw[i])}"
            for i in range(n)
        ]
        out.append(h3("Pareto front"))
        out.append(
            scatter_svg(
                av.tolist(),
                ev.tolist(),
                tips,
                xlabel="chip area (mm²)",
                ylabel="energy per inference (J)",
                title="energy against area",
                highlight=front.tolist(),
                yunit=lambda v: si(v, "J"),
            )
        )
    rows = [[i, specs[i] if i < len(specs) else "", feas[i], a[i], e[i], t[i], tw[i]] for i in range(n)]
    out.append(
        table(
            ["#", "spec", "feasible", "area", "energy", "latency", "TOPS/W"],
            rows,
            formats=[plain, None, plain, mm2, lambda v: si(v, "J"), lambda v: si(v, "s"), plain],
        )
    )
    return "".join(out)


# ---- CAM -----------------------------------------------------------------------------------------------------------
def _segments_figure(fractions: Mapping[str, Sequence[Any]], title: str) -> str:
    series = [{"label": k, "x": list(range(1, len(v) + 1)), "y": list(v)} for k, v in fractions.items() if v]
    if not series:
        return ""
    return lines_figure(
        series, xlabel="match-line segment", ylabel="evaluated fraction of rows", title=title, logx=False, percent=False
    )


@section("CamReport", "analog-CAM cost of a tree ensemble")
def render_cam(d: dict[str, Any]) -> str:
    """A ``CamReport``: cost per decision, the program's sparsity, energy and area per component, the rows
    searched in each match-line segment."""
    out = [
        cards(
            [
                ("scheme", str(d.get("scheme", ""))),
                ("energy / decision", si(d.get("energy_j"), "J")),
                ("latency", si(d.get("latency_s"), "s")),
                ("throughput", si(d.get("throughput_per_s"), "decisions/s")),
                ("area", mm2(d.get("area_mm2"))),
                ("arrays", plain(d.get("arrays"))),
                ("program rows", plain(d.get("rows"))),
                ("sparsity (don't care)", pct(d.get("sparsity"), 1)),
                ("cell evaluations", si(d.get("cell_evaluations"))),
            ]
        ),
        _component_section(d, f"scheme {d.get('scheme', '')}"),
        _segments_figure(
            {str(d.get("scheme", "")): d.get("evaluated_fraction") or []}, "CAM sparsity: rows searched per segment"
        ),
    ]
    return "".join(out)


@section("TreesResult", "tree ensemble on analog CAM")
def render_trees(d: dict[str, Any]) -> str:
    """A ``TreesResult``: accuracy of the model, its exact and quantized CAM programs; the program's size and
    sparsity; energy per decision by scheme and component; rows searched per segment; a table of schemes."""
    out = [
        cards(
            [
                ("model accuracy", pct(d.get("model_accuracy"))),
                ("exact CAM accuracy", pct(d.get("cam_accuracy"))),
                (f"{plain(d.get('bits'))}-bit CAM accuracy", pct(d.get("quantized_accuracy"))),
                ("program rows", plain(d.get("rows"))),
                ("features", plain(d.get("features"))),
                ("sparsity (don't care)", pct(d.get("sparsity"), 1)),
                ("trees x depth", f"{plain(d.get('trees'))} x {plain(d.get('depth'))}"),
                ("test samples", plain(d.get("test_samples"))),
            ]
        )
    ]
    if d.get("hardware"):
        out.append(note(f"hardware: {d['hardware']}"))
    schemes = {str(k): v for k, v in (d.get("schemes") or {}).items() if isinstance(v, dict)}
    if schemes:
        comps = list(dict.fromkeys(c for s in schemes.values() for c in s.get("energy_breakdown_j") or {}))
        parts = {
            c: [number((s.get("energy_breakdown_j") or {}).get(c)) or 0.0 for s in schemes.values()] for c in comps
        }
        out.append(h3("Energy per decision by scheme and component"))
        out.append(
            stacked_bars(list(schemes), parts, ylabel="energy per decision", title="energy by search scheme", unit="J")
        )
        out.append(
            _segments_figure(
                {k: s.get("evaluated_fraction") or [] for k, s in schemes.items()},
                "CAM sparsity: rows searched per segment",
            )
        )
        rows = [
            [
                k,
                s.get("arrays"),
                s.get("energy_j"),
                s.get("latency_s"),
                s.get("throughput_per_s"),
                s.get("area_mm2"),
                s.get("sparsity"),
            ]
            for k, s in schemes.items()
        ]
        out.append(
            table(
                ["scheme", "arrays", "energy / decision", "latency", "decisions/s", "area", "sparsity"],
                rows,
                formats=[None, plain, lambda v: si(v, "J"), lambda v: si(v, "s"), si, mm2, pct],
            )
        )
    return "".join(out)


# ---- explore -------------------------------------------------------------------------------------------------------
@section("StudyResult", "design-space study")
def render_study(d: dict[str, Any]) -> str:
    """A ``StudyResult``: the run, why designs are infeasible, the objective scatter with the Pareto front (hover:
    the trial's parameters and figures; every stored trial when the result carries ``trials``), the best
    designs as a table."""
    best = [b for b in d.get("best") or [] if isinstance(b, dict)]
    objectives = [str(o) for o in d.get("objectives") or []]
    out = [
        cards(
            [
                ("study", str(d.get("name", ""))),
                ("trials", plain(d.get("completed"))),
                ("evaluated now", plain(d.get("evaluated_now"))),
                ("feasible", plain(d.get("feasible"))),
                ("best designs", plain(len(best))),
                ("seconds", plain(d.get("seconds"), 3)),
            ]
        )
    ]
    if d.get("workloads"):
        out.append(note(f"workloads: {', '.join(map(str, d['workloads']))}; objectives: {', '.join(objectives)}"))
    if not best:
        out.append(note(f"no feasible design: {d.get('infeasibility', '')}", "warn"))
        return "".join(out)
    trials = [t for t in d.get("trials") or [] if isinstance(t, dict)]
    best_numbers = {b.get("number") for b in best}
    pool = best + [t for t in trials if t.get("number") not in best_numbers and t.get("feasible", True) is True]
    if trials:
        out.append(
            note(
                f"{len(trials)} stored trial(s)" + (f" read from {d['_trials_from']}" if d.get("_trials_from") else "")
            )
        )
    else:
        out.append(note("this JSON holds the best designs only; the other trials are in the study's trials.csv"))

    def tip(t: Mapping[str, Any]) -> str:
        params = ", ".join(f"{k}={plain(v)}" for k, v in (t.get("params") or {}).items())
        figs = ", ".join(f"{k} {fmt(k, t.get(k))}" for k in ("energy_j", "latency_s", "area_mm2") if k in t)
        front = " (Pareto front)" if t.get("number") in best_numbers else ""
        return f"trial #{t.get('number')}{front}: {params}; {figs}"

    if len(objectives) >= 2 and all(len(t.get("values") or []) >= 2 for t in pool):
        x = [t["values"][0] for t in pool]
        y = [t["values"][1] for t in pool]
        xl, yl = objectives[0], objectives[1]
    else:
        x = [t.get("area_mm2") for t in pool]
        y = [t.get("energy_j") for t in pool]
        xl, yl = "area", "energy"
    out.append(h3("Pareto front"))
    out.append(
        scatter_svg(
            x,
            y,
            [tip(t) for t in pool],
            xlabel=xl,
            ylabel=yl,
            title=f"study {d.get('name', '')}: {yl} against {xl}",
            highlight=[t.get("number") in best_numbers for t in pool],
            xunit=metric_format(xl),
            yunit=metric_format(yl),
        )
    )
    params = list(dict.fromkeys(k for b in best for k in b.get("params") or {}))
    cols = ["trial", *params, *(f"objective: {o}" for o in objectives), "energy", "latency", "area"]
    rows = [
        [
            b.get("number"),
            *[(b.get("params") or {}).get(p) for p in params],
            *(list(b.get("values") or []) + [None] * len(objectives))[: len(objectives)],
            b.get("energy_j"),
            b.get("latency_s"),
            b.get("area_mm2"),
        ]
        for b in best
    ]
    fm: list[Callable[[Any], str] | None] = [
        None,
        *[None] * len(params),
        *(metric_format(o) for o in objectives),
        lambda v: si(v, "J"),
        lambda v: si(v, "s"),
        mm2,
    ]
    out.append(table(cols, rows, formats=fm, caption="the best feasible designs (the Pareto front)"))
    return "".join(out)


@section("JointResult", "joint design across workloads")
def render_joint(d: dict[str, Any]) -> str:
    """A ``JointResult``: EDAP of each workload on the largest-network, joint and own chips (log bars), and the
    improvements."""
    from ..explore.joint import TABLE_COLUMNS

    ws = [str(w) for w in d.get("workloads") or []]
    on = {k: d.get(k) or {} for k in ("edap_on_largest", "edap_on_joint", "edap_on_own")}

    def draw(fig, ax) -> None:
        x = np.arange(len(ws))
        for i, (label, vals) in enumerate(on.items()):
            ax.bar(
                x + (i - 1) * 0.27,
                values(vals.get(w) for w in ws),
                0.27,
                label=label.replace("edap_on_", "on ") + " chip",
            )
        ax.set_xticks(x, ws)
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        ax.set_ylabel("EDAP (J s mm²)")
        ax.set_title(f"EDAP per workload (largest network: {d.get('largest', '')})")
        ax.legend(fontsize=7)

    out = [png_figure(draw, size=(max(5.0, 1.2 * len(ws) + 2), 3.6), alt="EDAP per workload")] if ws else []
    imp, loss, paper = d.get("improvement") or {}, d.get("loss_vs_own") or {}, d.get("paper_improvement") or {}
    rows = [
        [
            w,
            on["edap_on_largest"].get(w),
            on["edap_on_joint"].get(w),
            on["edap_on_own"].get(w),
            _negated(imp.get(w)),  # an EDAP reduction is a negative change, as the terminal table writes it
            _negated(paper.get(w)),
            loss.get(w),
        ]
        for w in ws
    ]
    out.append(
        table(
            list(TABLE_COLUMNS),
            rows,
            formats=[None, plain, plain, plain, signed_pct, signed_pct, signed_pct],
        )
    )
    return "".join(out)


# ---- simulation and robustness -------------------------------------------------------------------------------------
@section("SimulationResult", "accuracy on sampled chips")
def render_simulation(d: dict[str, Any]) -> str:
    """A ``SimulationResult``: mean ± std accuracy over chips, each chip's accuracy with the float model's."""
    per = [r for r in d.get("per_chip") or [] if isinstance(r, dict)]
    out = [
        cards(
            [
                ("mean accuracy", pct(d.get("mean_accuracy"))),
                ("std", pct(d.get("std_accuracy"))),
                ("min / max", f"{pct(d.get('min_accuracy'))} / {pct(d.get('max_accuracy'))}"),
                ("float model", pct(d.get("float_accuracy"))),
                ("chips", plain(d.get("chips"))),
                ("test images", plain(d.get("images"))),
                ("images/s", plain(d.get("images_per_s"), 3)),
            ]
        )
    ]
    if per:
        series = [{"label": "each chip", "x": [r.get("chip") for r in per], "y": [r.get("accuracy") for r in per]}]
        hl = [("float model", d.get("float_accuracy"))] if d.get("float_accuracy") is not None else []
        out.append(
            lines_figure(
                series,
                xlabel="chip",
                ylabel="accuracy (%)",
                title="accuracy of each sampled chip",
                hlines=[("mean", d.get("mean_accuracy")), *hl],
                logx=False,
            )
        )
        out.append(
            table(
                ["chip", "seed", "correct", "total", "accuracy"],
                [[r.get("chip"), r.get("seed"), r.get("correct"), r.get("total"), r.get("accuracy")] for r in per],
                formats=[plain, plain, plain, plain, pct],
            )
        )
    return "".join(out)


@section("AttackResult", "adversarial attacks")
def render_attack(d: dict[str, Any]) -> str:
    """An ``AttackResult``: accuracy against attack strength per attack (one line per model; a band where several
    curves share a model and attack, e.g. several chips), the transfer matrix."""
    curves = [c for c in d.get("curves") or [] if isinstance(c, dict)]
    out = [cards([("images", plain(d.get("images"))), ("curves", plain(len(curves)))])]
    by_attack: dict[str, list[dict[str, Any]]] = {}
    for c in curves:
        by_attack.setdefault(str(c.get("attack", "")), []).append(c)
    for attack, cs in by_attack.items():
        series = []
        groups: dict[str, list[dict[str, Any]]] = {}
        for c in cs:
            groups.setdefault(str(c.get("model", "")), []).append(c)
        for model, g in groups.items():
            acc = np.array(
                [[number(a) if number(a) is not None else math.nan for a in c.get("accuracy") or []] for c in g],
                dtype=float,
            )
            s: dict[str, Any] = {
                "label": model,
                "x": g[0].get("strengths") or [],
                "y": np.nanmean(acc, axis=0).tolist() if acc.size else [],
            }
            if len(g) > 1 and acc.ndim == 2:
                s.update(low=np.nanmin(acc, axis=0).tolist(), high=np.nanmax(acc, axis=0).tolist())
            series.append(s)
        norm = "L-inf eps" if cs[0].get("norm") == "inf" else "L2 radius"
        out.append(h3(f"{attack}: accuracy against strength"))
        out.append(
            lines_figure(
                series,
                xlabel=norm,
                ylabel="accuracy (%)",
                title=f"{attack}: accuracy against attack strength",
                logx=False,
            )
        )
    if curves:
        rows = [
            [
                c.get("model"),
                c.get("attack"),
                c.get("norm"),
                s,
                a,
                c.get("clean_accuracy"),
                c.get("queries_per_image"),
                c.get("seconds"),
            ]
            for c in curves
            for s, a in zip(c.get("strengths") or [], c.get("accuracy") or [])
        ]
        out.append(
            table(
                ["model", "attack", "norm", "strength", "accuracy", "clean", "queries/image", "seconds"],
                rows,
                formats=[None, None, None, plain, pct, pct, plain, plain],
            )
        )
    tr = d.get("transfer") or {}
    if isinstance(tr, dict) and tr.get("accuracy"):
        src, tgt = [str(s) for s in tr.get("sources") or []], [str(t) for t in tr.get("targets") or []]
        out.append(h3(f"Transfer: {tr.get('attack', '')} eps={plain(tr.get('eps'))}"))
        out.append(
            heatmap(
                tr["accuracy"],
                src,
                tgt,
                title="accuracy of each target (columns) on examples crafted on each source (rows)",
                label="accuracy",
            )
        )
        out.append(
            table(
                ["crafted on", *tgt],
                [[s, *row] for s, row in zip(src, tr["accuracy"])],
                formats=[None, *[pct] * len(tgt)],
            )
        )
    return "".join(out)


@section("CurveResult", "fault / drift curves")
def render_curves(d: dict[str, Any]) -> str:
    """A ``CurveResult``: accuracy against the swept value (fault rate, read time) with the confidence band of the
    mean over chips, and the float model's accuracy."""
    curves = [c for c in d.get("curves") or [] if isinstance(c, dict)]
    x_name = str(d.get("x_name", "x"))
    out = [
        cards(
            [
                ("study", str(d.get("study", ""))),
                ("chips per point", plain(d.get("chips"))),
                ("images", plain(d.get("images"))),
                ("float accuracy", pct(d.get("float_accuracy"))),
            ]
        )
    ]
    series = [
        {
            "label": c.get("label", ""),
            "x": c.get("x") or [],
            "y": c.get("mean") or [],
            "low": c.get("low"),
            "high": c.get("high"),
        }
        for c in curves
    ]
    conf = number(curves[0].get("confidence")) if curves else None
    band = f"{100 * conf:.0f}% band" if conf else "band"
    if series:
        out.append(
            lines_figure(
                series,
                xlabel=x_name,
                ylabel="accuracy (%)",
                title=f"{d.get('study', '')} on {d.get('spec', '')}: mean over chips, {band}",
                hlines=[("float", d.get("float_accuracy"))] if d.get("float_accuracy") is not None else [],
            )
        )
    rows = [
        [c.get("label"), x, m, lo, hi, s]
        for c in curves
        for x, m, lo, hi, s in zip(
            c.get("x") or [], c.get("mean") or [], c.get("low") or [], c.get("high") or [], c.get("std") or []
        )
    ]
    out.append(
        table(["curve", x_name, "mean accuracy", "low", "high", "std"], rows, formats=[None, plain, pct, pct, pct, pct])
    )
    return "".join(out)


@section("AxcResult", "approximate computing")
def render_axc(d: dict[str, Any]) -> str:
    """An ``AxcResult``: accuracy against relative energy per technique (hover: the setting), and the AxC table."""
    rows = [r for r in d.get("rows") or [] if isinstance(r, dict)]
    out = [
        cards(
            [
                ("model", str(d.get("model", ""))),
                ("float accuracy", pct(d.get("float_accuracy"))),
                ("images", plain(d.get("images"))),
                ("chips", plain(d.get("chips"))),
            ]
        )
    ]
    priced = [r for r in rows if number(r.get("relative_energy")) is not None]
    if priced:
        out.append(
            scatter_svg(
                [r["relative_energy"] for r in priced],
                [r.get("accuracy") for r in priced],
                [
                    f"{r.get('technique')} {r.get('setting')}: accuracy {pct(r.get('accuracy'))}, energy {si(r.get('energy_j'), 'J')} ({plain(r.get('relative_energy'))} of exact)"
                    for r in priced
                ],
                xlabel="energy relative to the exact setting",
                ylabel="accuracy",
                title="AxC trade-offs",
                yunit=lambda v: pct(v, 0),
                front=False,
                groups=[str(r.get("technique", "")) for r in priced],
            )
        )
    out.append(
        table(
            [
                "taxonomy",
                "technique",
                "setting",
                "accuracy",
                "std",
                "energy",
                "relative energy",
                "energy from",
                "energy covers",
            ],
            [
                [
                    r.get("taxonomy"),
                    r.get("technique"),
                    r.get("setting"),
                    r.get("accuracy"),
                    r.get("accuracy_std"),
                    r.get("energy_j"),
                    r.get("relative_energy"),
                    r.get("energy_source"),
                    r.get("scope"),
                ]
                for r in rows
            ],
            formats=[
                None,
                None,
                None,
                pct,
                pct,
                lambda v: "not priced" if v is None else si(v, "J"),
                plain,
                None,
                None,
            ],
        )
    )
    return "".join(out)


@section("AttackBudgets", "attack time budgets (benchmark)")
def render_budgets(d: dict[str, Any]) -> str:
    """``benchmarks/results/robust_budgets.json``: per attack, accuracy on the ideal model and on the chip, the
    time it took and the chip's slow-down factor."""
    attacks = {str(k): v for k, v in (d.get("attacks") or {}).items() if isinstance(v, dict)}
    names = list(attacks)
    out = [note(f"machine: {d.get('machine', '')}; {plain(d.get('images'))} images")]

    def draw(fig, ax) -> None:
        x = np.arange(len(names))
        for i, (key, label) in enumerate((("ideal_accuracy", "ideal model"), ("chip_accuracy", "on the chip"))):
            ax.bar(x + (i - 0.5) * 0.4, [100 * (number(attacks[n].get(key)) or 0) for n in names], 0.4, label=label)
        ax.set_xticks(x, names, rotation=30)
        ax.set_ylabel("accuracy under attack (%)")
        ax.set_title("accuracy under each attack")
        ax.legend(fontsize=7)

    if names:
        out.append(png_figure(draw, size=(7.0, 3.6), alt="accuracy under each attack"))
    keys = list(dict.fromkeys(k for v in attacks.values() for k in v))
    out.append(
        table(
            ["attack", *keys],
            [[n, *[attacks[n].get(k) for k in keys]] for n in names],
            formats=[None, *[(lambda v, k=k: fmt(k, v)) for k in keys]],
        )
    )
    return "".join(out)


# ---- SNN -----------------------------------------------------------------------------------------------------------
def _flat(entry: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The scalar leaves of a nested benchmark entry as "a.b" keys (chip accuracies as their means)."""
    out: dict[str, Any] = {}
    for k, v in entry.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            if "mean" in v and _scalar(v["mean"]):
                out[key] = v["mean"]
            else:
                out.update(_flat(v, key + "."))
        elif _scalar(v):
            out[key] = v
    return out


def _snn_fmt(key: str, value: Any) -> str:
    """A benchmark entry's field: accuracies (``float``, ``acc``, ``chip.<preset>``, ``mismatch_...``) as %."""
    if key in ("float", "acc") or key.startswith(("chip.", "mismatch", "acc_")):
        return pct(value)
    return fmt(key, value)


@section("SnnTasks", "spiking-network tasks (benchmark)")
def render_snn_tasks(d: dict[str, Any]) -> str:
    """``benchmarks/results/snn_tasks.json``: each section's entries as a table (accuracy in float and on each
    chip), and accuracy against precision (bits) for the quantization section."""
    out = []
    for name, sec in (d.get("sections") or {}).items():
        if not isinstance(sec, dict):
            continue
        entries = {str(k): _flat(v) for k, v in (sec.get("entries") or {}).items() if isinstance(v, dict)}
        out.append(h3(f"{name} ({sec.get('mode', '')})"))
        sweep: dict[str, dict[float, float]] = {}
        for k, e in entries.items():
            bits, acc = number(e.get("bits")), number(e.get("acc"))
            if bits is not None and acc is not None and "/" in k:
                sweep.setdefault(k.split("/")[0], {})[bits] = acc
        if sweep:
            series = [{"label": m, "x": sorted(v), "y": [v[b] for b in sorted(v)]} for m, v in sweep.items()]
            out.append(
                lines_figure(
                    series,
                    xlabel="weight bits",
                    ylabel="accuracy (%)",
                    title=f"{name}: accuracy against precision",
                    logx=False,
                )
            )
        keys = [
            k
            for k in dict.fromkeys(k for e in entries.values() for k in e)
            if not k.endswith(("wall_s", "train_s", "make_s")) and k != "unsupported"
        ]
        keys = keys[:14]
        out.append(
            table(
                ["entry", *keys],
                [[n, *[e.get(k) for k in keys]] for n, e in entries.items()],
                formats=[None, *[(lambda v, k=k: _snn_fmt(k, v)) for k in keys]],
            )
        )
    meta = d.get("meta") or {}
    if isinstance(meta, dict) and meta:
        out.append(note("; ".join(f"{k}: {v}" for k, v in meta.items() if _scalar(v))))
    return "".join(out)


def _steps(v: Any) -> list[float]:
    return [number(x) or 0.0 for x in (v if isinstance(v, list) else [])]


@section("SpikeActivity", "spike activity")
def render_spikes(d: dict[str, Any]) -> str:
    """A spiking run (``cimkit.snn.snn_activity_report``'s ``SpikeActivity`` as plain data: ``steps``, ``batch``
    and ``layers`` by name, each with ``kind``, ``fn``, ``density`` per time step, ``counts`` and ``elements``):
    the density (spike rate of a neuron layer, input density of a weighted one) per layer and time step, the
    overall rate per layer."""
    layers = d.get("layers") or {}
    if isinstance(layers, list):
        layers = {str(x.get("name", i)): x for i, x in enumerate(layers) if isinstance(x, dict)}
    layers = {str(k): v for k, v in layers.items() if isinstance(v, dict)}
    out = [
        cards(
            [
                ("workload", str(d.get("workload", d.get("name", "")))),
                ("time steps", plain(d.get("steps"))),
                ("batch", plain(d.get("batch"))),
                ("layers", plain(len(layers))),
            ]
        )
    ]
    dens = {n: _steps(v.get("density")) for n, v in layers.items()}
    t = max((len(v) for v in dens.values()), default=0)
    if t:
        matrix = [v + [math.nan] * (t - len(v)) for v in dens.values()]
        out.append(
            heatmap(
                matrix,
                [f"{n} ({layers[n].get('kind', '')})" for n in dens],
                [str(i) for i in range(t)],
                title="activity per layer and time step (spike rate / input density)",
                label="density",
            )
        )

    def rate(v: Mapping[str, Any]) -> float | None:
        if number(v.get("rate")) is not None:
            return number(v["rate"])
        c, e = sum(_steps(v.get("counts"))), sum(_steps(v.get("elements")))
        return c / e if e else None

    rows = [[n, v.get("kind"), v.get("fn"), len(dens[n]), rate(v), v.get("binary")] for n, v in layers.items()]
    out.append(
        table(
            ["layer", "kind", "function", "calls", "rate", "binary"],
            rows,
            formats=[None, None, None, plain, lambda v: plain(v, 4), plain],
        )
    )
    return "".join(out)


# ---- training ------------------------------------------------------------------------------------------------------
@section("StepCost", "in-situ training step")
def render_step(d: dict[str, Any]) -> str:
    """A training step's cost (``cimkit.train.cost.StepCost.to_dict``): latency and energy of the forward, error
    and update phases, and per layer."""
    rule = str(d.get("rule", ""))
    out = [
        cards(
            [
                ("rule", rule),
                ("batch", plain(d.get("batch"))),
                ("step latency", si(d.get("latency_s"), "s")),
                ("step energy", si(d.get("energy_j"), "J")),
            ]
        )
    ]
    phases = ("forward", "error", "update")
    out.append(
        shares_figure(
            {
                "energy": {p: d.get(f"{p}_energy_j") for p in phases},
                "latency": {p: d.get(f"{p}_latency_s") for p in phases},
            },
            f"{rule}: share of each phase",
        )
    )
    out.append(
        table(
            ["phase", "energy", "latency"],
            [[p, d.get(f"{p}_energy_j"), d.get(f"{p}_latency_s")] for p in phases],
            formats=[None, lambda v: si(v, "J"), lambda v: si(v, "s")],
        )
    )
    layers = [x for x in d.get("layers") or [] if isinstance(x, dict)]
    if layers:
        keys = [k for k in dict.fromkeys(k for x in layers for k in x) if k != "name"]
        out.append(
            table(
                ["layer", *keys],
                [[x.get("name"), *[x.get(k) for k in keys]] for x in layers],
                formats=[None, *[(lambda v, k=k: fmt(k, v)) for k in keys]],
            )
        )
    return "".join(out)


@section("TrainingHistory", "training history")
def render_history(d: dict[str, Any]) -> str:
    """A training run's history (records with ``epoch`` and figures such as ``loss`` / ``accuracy``, e.g. a
    trainer's ``history_``): each figure averaged per epoch against the epoch."""
    records = [r for r in d.get("history") or [] if isinstance(r, dict)]
    keys = [
        k
        for k in dict.fromkeys(k for r in records for k in r)
        if k not in ("epoch", "step", "end_epoch") and any(number(r.get(k)) is not None for r in records)
    ]
    epochs = sorted({int(number(r.get("epoch")) or 0) for r in records})
    means = {
        k: [
            float(
                np.mean(
                    [
                        number(r.get(k))
                        for r in records
                        if int(number(r.get("epoch")) or 0) == e and number(r.get(k)) is not None
                    ]
                    or [math.nan]
                )
            )
            for e in epochs
        ]
        for k in keys
    }
    out = [cards([("records", plain(len(records))), ("epochs", plain(len(epochs)))])]
    acc = [k for k in keys if "acc" in k]
    other = [k for k in keys if k not in acc]
    if other:
        out.append(
            lines_figure(
                [{"label": k, "x": epochs, "y": means[k]} for k in other],
                xlabel="epoch",
                ylabel="value (epoch mean)",
                title="training figures per epoch",
                percent=False,
                logx=False,
            )
        )
    if acc:
        out.append(
            lines_figure(
                [{"label": k, "x": epochs, "y": means[k]} for k in acc],
                xlabel="epoch",
                ylabel="accuracy (%)",
                title="accuracy per epoch",
                logx=False,
            )
        )
    out.append(table(["epoch", *keys], [[e, *[means[k][i] for k in keys]] for i, e in enumerate(epochs)]))
    return "".join(out)
