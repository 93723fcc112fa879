"""The course's charts, drawn by matplotlib and written as SVG.

Every function builds a `matplotlib.figure.Figure` (no pyplot, so no global backend or state is
touched: it works the same in a script, a test and a notebook) and returns it; `save_svg`
writes a figure to a file with its text kept as text, so the labels stay searchable.

    fig = line_chart([Series("batch 1", xs, ys)], title="loss", x_label="examples seen")
    save_svg(fig, "out/loss.svg")

matplotlib is a dependency of the course only (the `course` extra); the library never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from collections.abc import Callable, Sequence

from .common import PathLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = "the course's charts need matplotlib: pip install 'micrograd_batch[course]' (or pip install matplotlib)"


def have_matplotlib() -> bool:
    """Whether matplotlib is installed (the lessons print their numbers without it, but draw no charts)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure of that size in inches, laid out so nothing overlaps (no pyplot: no global
    backend or state); a clear error naming the extra to install when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ModuleNotFoundError(INSTALL_HINT) from None
    return Figure(figsize=(width, height), layout="constrained")


@dataclass
class Series:
    """One line of a chart: its legend `label`, points `xs`/`ys`, and how to draw it."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    dashed: bool = False
    markers: bool = False

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.ys):
            raise ValueError(f"series {self.label!r}: {len(self.xs)} xs but {len(self.ys)} ys")


def line_chart(series: Sequence[Series], *, title: str = "", x_label: str = "", y_label: str = "",
               log_x: bool = False, log_y: bool = False, x_ticks: Sequence[float] | None = None,
               y_range: tuple[float, float] | None = None) -> Figure:
    """A line chart of `series` with a legend, axis labels and optional log axes."""
    if not series:
        raise ValueError("a line chart needs at least one series")
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    for s in series:
        ax.plot(s.xs, s.ys, label=s.label, linestyle="--" if s.dashed else "-",
                marker="o" if s.markers else None)
    ax.set(title=title, xlabel=x_label, ylabel=y_label)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if x_ticks is not None:
        ax.set_xticks(list(x_ticks), [f"{t:g}" for t in x_ticks])
    if y_range is not None:
        ax.set_ylim(*y_range)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


Point = tuple[float, float, object]
Score = Callable[[float, float], float]


def decision_boundary(points: Sequence[Point], panels: Sequence[tuple[str, Score]], *,
                      bounds: tuple[float, float, float, float], resolution: int = 40,
                      title: str = "") -> Figure:
    """One panel per (panel title, score) in `panels`: the sign of score(x1, x2) on a grid over
    `bounds` = (x_min, x_max, y_min, y_max) (red > 0, blue < 0, the boundary where it is 0), and
    the `points` (x1, x2, label) on top, red where label == 1."""
    if not panels:
        raise ValueError("decision_boundary needs at least one (title, score) panel")
    x_lo, x_hi, y_lo, y_hi = bounds
    grid_x = [x_lo + (x_hi - x_lo) * i / (resolution - 1) for i in range(resolution)]
    grid_y = [y_lo + (y_hi - y_lo) * j / (resolution - 1) for j in range(resolution)]
    fig = new_figure(3.2 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, score) in zip(axes, panels, strict=True):
        scores = [[score(x, y) for x in grid_x] for y in grid_y]
        ax.contourf(grid_x, grid_y, scores, levels=[-1e300, 0.0, 1e300], colors=["#c6dbef", "#fcbba1"])
        ax.contour(grid_x, grid_y, scores, levels=[0.0], colors="black", linewidths=1.0)
        for is_one, colour in ((False, "#1f77b4"), (True, "#d62728")):
            chosen = [(p[0], p[1]) for p in points if (p[2] == 1) == is_one]
            ax.scatter([p[0] for p in chosen], [p[1] for p in chosen], s=8, c=colour,
                       edgecolors="black", linewidths=0.3)
        ax.set(title=name, xlim=(x_lo, x_hi), ylim=(y_lo, y_hi), xticks=[], yticks=[])
    if title:
        fig.suptitle(title)
    return fig


def _cell(ax: Axes, x: float, y: float, text: str, colour: str) -> None:
    """One matrix entry: a box at (x, y) (its top left corner) with `text` in it."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="#555555"))
    ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=8)


def _matrix(ax: Axes, rows: Sequence[Sequence[float]], left: float, name: str, highlight: int,
            colour: str) -> None:
    """A matrix drawn with one row per example, column `highlight` coloured."""
    for i, row in enumerate(rows):
        for k, value in enumerate(row):
            _cell(ax, left + k, i, f"{value:.3f}", colour if k == highlight else "white")
    ax.text(left + len(rows[0]) / 2, -0.4, name, ha="center", fontsize=10)


def batch_product_picture(delta: Sequence[Sequence[float]], activations: Sequence[Sequence[float]], *,
                          neuron: int, source: int, delta_name: str = "Δ", a_name: str = "A",
                          title: str = "") -> Figure:
    """The batch as matrices, one row per example: Δ (m × n_out) and A (m × n_in), with Δ's
    column `neuron` and A's column `source` highlighted and, on the right, the row-by-row
    products Δ[i][neuron]·A[i][source] whose sum is entry (neuron, source) of Δᵀ A."""
    m = len(delta)
    if m == 0 or len(activations) != m:
        raise ValueError(f"Δ and A need the same number of rows (examples), got {len(delta)} and {len(activations)}")
    products = [d[neuron] * a[source] for d, a in zip(delta, activations, strict=True)]
    width_d, width_a = len(delta[0]), len(activations[0])
    left_a, left_p = width_d + 1.5, width_d + width_a + 3.0
    fig = new_figure(1.0 * (left_p + 3), 0.9 * (m + 3))
    ax = fig.add_subplot()
    _matrix(ax, delta, 0.0, delta_name, neuron, "#fdd0a2")
    _matrix(ax, activations, left_a, a_name, source, "#c7e9c0")
    for i, p in enumerate(products):
        ax.text(-0.3, i + 0.5, f"example {i + 1}", ha="right", va="center", fontsize=9)
        _cell(ax, left_p, i, f"{p:.4f}", "#dadaeb")
        ax.text(left_p - 0.75, i + 0.5, "→", ha="center", va="center", fontsize=12)
    ax.text(left_p + 0.5, -0.4, "product", ha="center", fontsize=10)
    ax.text(left_p + 0.5, m + 0.6, f"sum = {sum(products):.4f}", ha="center", fontsize=10, fontweight="bold")
    ax.text((left_p + 1) / 2, m + 1.4,
            f"({delta_name}ᵀ {a_name})[{neuron + 1}][{source + 1}] = Σ over the {m} examples of "
            f"{delta_name}[i][{neuron + 1}]·{a_name}[i][{source + 1}]", ha="center", fontsize=10)
    ax.set(xlim=(-2.2, left_p + 1.5), ylim=(m + 1.9, -1.0), title=title)
    ax.axis("off")
    return fig


def save_svg(fig: Figure, path: PathLike) -> Path:
    """Write `fig` to `path` as SVG (folders created; text kept as <text>, no timestamp, so the
    same figure gives the same file); returns the path."""
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "micrograd_batch"}):
        fig.savefig(path, format="svg", metadata={"Date": None})
    return path
