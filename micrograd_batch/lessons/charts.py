"""Tiny SVG charts in pure Python: line charts with axes, ticks and a legend, and scatter plots
over a decision-boundary grid. No dependencies; each function returns the SVG as text, and the
`save_*` functions write it to a file (creating the folder) and return its path.

    line_chart_svg([Series("batch 1", xs, ys)], title="loss", x_label="examples seen")
    decision_boundary_svg(points, [("batch 16", predict)], bounds=(-1.5, 2.5, -1, 1.5))

Coordinates: data (x, y) are mapped into a plot area inside margins; y grows upwards as usual.
Log axes take base-10 logarithms (all values on them must be positive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union
from xml.sax.saxutils import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
"""Line colours, used in order for series that do not name one."""

FONT = 'font-family="Helvetica, Arial, sans-serif"'


@dataclass
class Series:
    """One line of a chart: its legend `label`, points `xs`/`ys`, and how to draw it."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: Optional[str] = None
    dashed: bool = False
    markers: bool = False
    width: float = 2.0

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.ys):
            raise ValueError(f"series {self.label!r}: {len(self.xs)} xs but {len(self.ys)} ys")


@dataclass
class _Axis:
    """A data range [lo, hi] mapped to pixels [start, end], linearly or on a log10 scale."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False
    ticks: list[float] = field(default_factory=list)

    def t(self, v: float) -> float:
        """The value on the (possibly logarithmic) scale the axis is linear in."""
        return math.log10(v) if self.log else v

    def px(self, v: float) -> float:
        """Pixel coordinate of data value v."""
        lo, hi = self.t(self.lo), self.t(self.hi)
        span = hi - lo or 1.0
        return self.start + (self.t(v) - lo) / span * (self.end - self.start)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values (steps of 1, 2 or 5 × 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"ticks need a finite range, got [{lo}, {hi}]")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v / step) * step)
        v += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten within [lo, hi] (both must be positive); when fewer than four of them
    fit, the 1-2-5 steps (1, 2, 5, 10, 20, ...) within [lo, hi] instead."""
    if lo <= 0 or hi <= 0:
        raise ValueError(f"a log axis needs positive values, got [{lo}, {hi}]")
    ticks = [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             if lo * (1 - 1e-9) <= 10.0 ** k <= hi * (1 + 1e-9)]
    if len(ticks) >= 4:
        return ticks
    return [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in (1, 2, 5) if lo * (1 - 1e-9) <= m * 10.0 ** k <= hi * (1 + 1e-9)]


def format_number(v: float) -> str:
    """A short tick label: 0.001, 0.5, 20, 1e+04, 2.5e-05."""
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.6g}"
    return f"{v:.2g}"


def _range(values: Sequence[float], log: bool, pad: float = 0.04) -> tuple[float, float]:
    """The data range of `values`, widened a little (multiplicatively on a log axis)."""
    finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not finite:
        raise ValueError("nothing to plot: no finite values" + (" > 0 on a log axis" if log else ""))
    lo, hi = min(finite), max(finite)
    if log:
        factor = (hi / lo) ** pad if hi > lo else 2.0
        return lo / factor, hi * factor
    span = hi - lo or (abs(hi) or 1.0)
    return lo - pad * span, hi + pad * span


def _svg_open(width: float, height: float) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}">',
        f'<rect x="0" y="0" width="{width:g}" height="{height:g}" fill="white"/>',
    ]


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {FONT}'
            f'{" " + extra if extra else ""}>{escape(s)}</text>')


def line_chart_svg(
    series: Sequence[Series],
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    log_x: bool = False,
    log_y: bool = False,
    x_ticks: Optional[Sequence[float]] = None,
    y_ticks: Optional[Sequence[float]] = None,
    y_range: Optional[tuple[float, float]] = None,
    width: int = 640,
    height: int = 400,
    legend: str = "top-right",
) -> str:
    """A line chart of `series` as SVG text: axes, ticks, grid lines, axis labels, a legend
    ("top-right", "bottom-left", ... or "none"), and optional log10 axes."""
    if not series:
        raise ValueError("a line chart needs at least one series")
    left, right, top, bottom = 70, 20, 40 if title else 20, 55
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys]
    x_lo, x_hi = _range(xs, log_x, pad=0.02)
    y_lo, y_hi = y_range if y_range is not None else _range(ys, log_y)
    xa = _Axis(x_lo, x_hi, left, width - right, log_x)
    ya = _Axis(y_lo, y_hi, height - bottom, top, log_y)
    xa.ticks = list(x_ticks) if x_ticks is not None else (log_ticks(x_lo, x_hi) if log_x else nice_ticks(x_lo, x_hi))
    ya.ticks = list(y_ticks) if y_ticks is not None else (log_ticks(y_lo, y_hi) if log_y else nice_ticks(y_lo, y_hi))
    out = _svg_open(width, height)
    if title:
        out.append(_text(width / 2, 24, title, 15, extra='font-weight="bold"'))
    # grid and ticks
    for v in xa.ticks:
        if x_lo <= v <= x_hi:
            p = xa.px(v)
            out.append(f'<line x1="{p:.1f}" y1="{top}" x2="{p:.1f}" y2="{height - bottom}" stroke="#e5e5e5"/>')
            out.append(_text(p, height - bottom + 16, format_number(v), 11))
    for v in ya.ticks:
        if y_lo <= v <= y_hi:
            p = ya.px(v)
            out.append(f'<line x1="{left}" y1="{p:.1f}" x2="{width - right}" y2="{p:.1f}" stroke="#e5e5e5"/>')
            out.append(_text(left - 6, p + 4, format_number(v), 11, anchor="end"))
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
               'fill="none" stroke="#333"/>')
    if x_label:
        out.append(_text((left + width - right) / 2, height - 14, x_label, 12))
    if y_label:
        cy = (top + height - bottom) / 2
        out.append(_text(18, cy, y_label, 12, extra=f'transform="rotate(-90 18 {cy:.1f})"'))
    # the lines, clipped to the plot area
    out.append(f'<clipPath id="plot-area"><rect x="{left}" y="{top}" width="{width - left - right}" '
               f'height="{height - top - bottom}"/></clipPath>')
    out.append('<g clip-path="url(#plot-area)">')
    colors = []
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        colors.append(color)
        points = [(xa.px(x), ya.px(y)) for x, y in zip(s.xs, s.ys)
                  if math.isfinite(x) and math.isfinite(y) and (x > 0 or not log_x) and (y > 0 or not log_y)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                       f'stroke-width="{s.width:g}"{dash} stroke-linejoin="round"/>')
        if s.markers or len(points) == 1:
            out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>' for x, y in points)
    out.append("</g>")
    if legend != "none":
        out.extend(_legend([s.label for s in series], colors, [s.dashed for s in series],
                           legend, left, right, top, bottom, width, height))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(labels: list[str], colors: list[str], dashed: list[bool], where: str, left: float,
            right: float, top: float, bottom: float, width: float, height: float) -> list[str]:
    """A boxed legend in one corner of the plot area."""
    box_w = 40 + 7 * max(len(label) for label in labels)
    box_h = 8 + 18 * len(labels)
    x0 = width - right - box_w - 8 if "right" in where else left + 8
    y0 = top + 8 if "top" in where else height - bottom - box_h - 8
    out = [f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{box_w}" height="{box_h}" fill="white" '
           'fill-opacity="0.85" stroke="#999"/>']
    for i, (label, color, dash) in enumerate(zip(labels, colors, dashed)):
        y = y0 + 15 + 18 * i
        style = ' stroke-dasharray="6 4"' if dash else ""
        out.append(f'<line x1="{x0 + 6:.1f}" y1="{y - 4:.1f}" x2="{x0 + 30:.1f}" y2="{y - 4:.1f}" '
                   f'stroke="{color}" stroke-width="2.5"{style}/>')
        out.append(_text(x0 + 36, y, label, 11, anchor="start"))
    return out


Point = tuple[float, float, object]
Predict = Callable[[float, float], float]


def _num(v: float) -> str:
    """A pixel coordinate with at most one decimal and no trailing zeros (smaller files)."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _cell_colour(score: float, levels: int = 3) -> str:
    """A pale blue (score < 0) or pale red (score > 0) whose depth grows with |score|,
    quantised to `levels` shades so that neighbouring cells can be merged."""
    strength = min(abs(math.tanh(score)), 0.999)
    level = 1 + int(strength * levels)  # 1..levels
    mix = 0.12 + 0.28 * level / levels
    base = (31, 119, 180) if score < 0 else (214, 39, 40)
    r, g, b = (round(255 + (c - 255) * mix) for c in base)
    return f"#{r:02x}{g:02x}{b:02x}"


def decision_boundary_svg(
    points: Sequence[Point],
    panels: Sequence[tuple[str, Predict]],
    bounds: Optional[tuple[float, float, float, float]] = None,
    resolution: int = 40,
    title: str = "",
    panel_size: int = 300,
) -> str:
    """Scatter plots of `points` (x1, x2, label) over the sign of a score, one panel per
    (panel title, predict) in `panels`. predict(x1, x2) returns a score: cells where it is
    positive are red, negative blue, paler near 0; points whose label is 1 are red, others
    blue. `bounds` = (x_min, x_max, y_min, y_max), by default the points' range plus a margin.
    Cells of equal shade in a row are merged, which keeps the file small.
    """
    if not panels:
        raise ValueError("decision_boundary_svg needs at least one (title, predict) panel")
    if bounds is None:
        x_lo, x_hi = _range([p[0] for p in points], False, pad=0.1)
        y_lo, y_hi = _range([p[1] for p in points], False, pad=0.1)
    else:
        x_lo, x_hi, y_lo, y_hi = bounds
    gap, top = 20, (52 if title else 30)
    width = gap + len(panels) * (panel_size + gap)
    height = top + panel_size + 24
    out = _svg_open(width, height)
    if title:
        out.append(_text(width / 2, 22, title, 15, extra='font-weight="bold"'))
    cell_w = panel_size / resolution
    cell_h = panel_size / resolution
    for k, (name, predict) in enumerate(panels):
        ox = gap + k * (panel_size + gap)
        out.append(_text(ox + panel_size / 2, top - 8, name, 12))
        out.append('<g shape-rendering="crispEdges">')
        for row in range(resolution):
            y = y_hi - (row + 0.5) * (y_hi - y_lo) / resolution
            colours = [_cell_colour(predict(x_lo + (col + 0.5) * (x_hi - x_lo) / resolution, y))
                       for col in range(resolution)]
            col = 0
            while col < resolution:  # merge runs of equal colour into one rect
                run = col
                while run + 1 < resolution and colours[run + 1] == colours[col]:
                    run += 1
                out.append(f'<rect x="{_num(ox + col * cell_w)}" y="{_num(top + row * cell_h)}" '
                           f'width="{_num((run - col + 1) * cell_w + 0.3)}" height="{_num(cell_h + 0.3)}" '
                           f'fill="{colours[col]}"/>')
                col = run + 1
        out.append("</g>")
        for is_one, fill in ((False, PALETTE[0]), (True, PALETTE[1])):  # one group per class
            out.append(f'<g fill="{fill}" stroke="black" stroke-width="0.5">')
            for px, py, label in points:
                if (label == 1) != is_one or not (x_lo <= px <= x_hi and y_lo <= py <= y_hi):
                    continue
                cx = ox + (px - x_lo) / (x_hi - x_lo) * panel_size
                cy = top + (y_hi - py) / (y_hi - y_lo) * panel_size
                out.append(f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="2.6"/>')
            out.append("</g>")
        out.append(f'<rect x="{ox}" y="{top}" width="{panel_size}" height="{panel_size}" fill="none" stroke="#333"/>')
    out.append(_text(width / 2, height - 6, "red: score > 0 (class 1)   blue: score < 0 (the other class)", 11,
                     extra='fill="#555"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def save_svg_text(svg: str, path: Union[str, Path]) -> Path:
    """Write SVG text to `path` (its folder is created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg, encoding="utf-8")
    return path


def save_line_chart(path: Union[str, Path], series: Sequence[Series], **kwargs: object) -> Path:
    """`line_chart_svg(series, **kwargs)` written to `path`; returns the path."""
    return save_svg_text(line_chart_svg(series, **kwargs), path)  # type: ignore[arg-type]


def save_decision_boundary(path: Union[str, Path], points: Sequence[Point],
                           panels: Sequence[tuple[str, Predict]], **kwargs: object) -> Path:
    """`decision_boundary_svg(points, panels, **kwargs)` written to `path`; returns the path."""
    return save_svg_text(decision_boundary_svg(points, panels, **kwargs), path)  # type: ignore[arg-type]
