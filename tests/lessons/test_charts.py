"""The course's matplotlib charts: valid SVG files with the series, labels and highlights asked for
(the structure of the file, not its pixels)."""

import xml.etree.ElementTree as ET

import pytest

from micrograd_batch.lessons.charts import Series, batch_product_picture, decision_boundary, line_chart, save_svg

SVG = "{http://www.w3.org/2000/svg}"
pytestmark = pytest.mark.usefixtures("needs_matplotlib")


def saved(fig, tmp_path, name="chart.svg"):
    """Save `fig`, parse the file; return (root element, every text in it)."""
    path = save_svg(fig, tmp_path / "sub" / name)
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    return root, [t.text for t in root.iter(SVG + "text") if t.text]


def line_paths(root):
    """The drawn data lines: matplotlib gives each Line2D a <g id="line2d_N"> group."""
    return [g for g in root.iter(SVG + "g") if g.get("id", "").startswith("line2d")
            and g.find(SVG + "path") is not None and "clip-path" in g.find(SVG + "path").attrib]


def test_line_chart_has_every_series_in_its_legend_and_its_labels(tmp_path):
    fig = line_chart([Series("a < b", [0, 1, 2], [1.0, 0.5, 0.25]),
                      Series("second", [0, 1, 2], [0.9, 0.6, 0.3], dashed=True, markers=True)],
                     title="loss", x_label="examples seen", y_label="mean loss")
    root, texts = saved(fig, tmp_path)
    assert {"loss", "examples seen", "mean loss", "a < b", "second"} <= set(texts)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["a < b", "second"]
    assert ax.get_lines()[1].get_linestyle() == "--" and ax.get_lines()[0].get_linestyle() == "-"
    assert len(line_paths(root)) >= 2


def test_log_axes_and_fixed_ticks(tmp_path):
    ms = [1, 2, 4, 8, 16]
    fig = line_chart([Series("1/m", ms, [1 / m for m in ms])], log_x=True, log_y=True, x_ticks=ms)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert list(ax.get_xticks()) == ms
    _, texts = saved(fig, tmp_path)
    assert {"1", "2", "4", "8", "16"} <= set(texts)


def test_line_chart_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one series"):
        line_chart([])
    with pytest.raises(ValueError, match="2 xs but 3 ys"):
        Series("s", [1, 2], [1, 2, 3])


def test_labels_are_escaped_not_injected(tmp_path):
    _, texts = saved(line_chart([Series('red"/><script>x</script>', [0, 1], [0, 1])], title="a & b"), tmp_path)
    assert 'red"/><script>x</script>' in texts and "a & b" in texts


def test_decision_boundary_has_a_panel_per_model_with_the_zero_contour(tmp_path):
    points = [(-1.0, 0.0, 0), (1.0, 0.0, 1)]
    fig = decision_boundary(points, [("x > 0", lambda a, b: a), ("x < 0", lambda a, b: -a)],
                            bounds=(-2, 2, -2, 2), resolution=10, title="boundaries")
    assert [ax.get_title() for ax in fig.axes] == ["x > 0", "x < 0"]
    for ax in fig.axes:
        scattered = [tuple(c.get_offsets()[0]) for c in ax.collections
                     if type(c).__name__ == "PathCollection" and len(c.get_offsets()) == 1]
        assert sorted(scattered) == [(-1.0, 0.0), (1.0, 0.0)]
    _, texts = saved(fig, tmp_path)
    assert {"x > 0", "x < 0", "boundaries"} <= set(texts)
    with pytest.raises(ValueError, match="panel"):
        decision_boundary(points, [], bounds=(-1, 1, -1, 1))


def test_batch_product_picture_shows_the_sum_over_examples(tmp_path):
    delta = [[0.5, 1.0], [2.0, -1.0], [0.25, 4.0]]
    acts = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    fig = batch_product_picture(delta, acts, neuron=1, source=2, delta_name="Δ2", a_name="A1")
    _, texts = saved(fig, tmp_path)
    products = [1.0 * 3.0, -1.0 * 6.0, 4.0 * 9.0]
    for p in products:
        assert f"{p:.4f}" in texts
    assert f"sum = {sum(products):.4f}" in texts
    assert {"example 1", "example 2", "example 3", "Δ2", "A1"} <= set(texts)
    with pytest.raises(ValueError, match="same number of rows"):
        batch_product_picture(delta, acts[:2], neuron=0, source=0)


def test_the_same_figure_gives_the_same_file(tmp_path):
    fig = line_chart([Series("s", [0, 1], [0, 1])])
    a = save_svg(fig, tmp_path / "a.svg").read_bytes()
    b = save_svg(fig, tmp_path / "b.svg").read_bytes()
    assert a == b
