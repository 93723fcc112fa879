"""The pure-Python SVG writer: ticks, line charts, decision-boundary panels."""

import xml.etree.ElementTree as ET

import pytest

from micrograd_batch.lessons.charts import (
    Series,
    decision_boundary_svg,
    format_number,
    line_chart_svg,
    log_ticks,
    nice_ticks,
    save_decision_boundary,
    save_line_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks = nice_ticks(0.03, 0.97)
    assert ticks == pytest.approx([0.2, 0.4, 0.6, 0.8])
    ticks = nice_ticks(-3.0, 17.0, count=4)
    assert ticks == [0, 5, 10, 15]
    assert nice_ticks(2.0, 2.0) == [2.0]
    with pytest.raises(ValueError):
        nice_ticks(0.0, float("inf"))


def test_log_ticks():
    assert log_ticks(0.005, 200) == pytest.approx([0.01, 0.1, 1, 10, 100])
    assert log_ticks(0.02, 3) == pytest.approx([0.02, 0.05, 0.1, 0.2, 0.5, 1, 2])
    with pytest.raises(ValueError, match="positive"):
        log_ticks(0, 10)


def test_format_number():
    assert format_number(0) == "0"
    assert format_number(0.5) == "0.5"
    assert format_number(20000.0) == "20000"
    assert format_number(2.5e-5) == "2.5e-05"


def test_line_chart_has_a_line_per_series_axes_and_a_legend():
    svg = line_chart_svg([Series("a < b", [0, 1, 2], [1.0, 0.5, 0.25]),
                          Series("second", [0, 1, 2], [0.9, 0.6, 0.3], dashed=True, markers=True)],
                         title="loss", x_label="examples seen", y_label="loss")
    root = parse(svg)
    lines = root.findall(f".//{SVG}polyline")
    assert len(lines) == 2
    assert "stroke-dasharray" in lines[1].attrib and "stroke-dasharray" not in lines[0].attrib
    texts = [t.text for t in root.iter(SVG + "text")]
    assert {"loss", "examples seen", "a < b", "second"} <= set(texts)
    assert len(root.findall(f".//{SVG}circle")) == 3  # markers of the second series


def test_line_chart_maps_larger_y_higher_up():
    root = parse(line_chart_svg([Series("s", [0, 1], [0.0, 1.0])], legend="none"))
    (line,) = root.findall(f".//{SVG}polyline")
    (x0, y0), (x1, y1) = (map(float, p.split(",")) for p in line.attrib["points"].split())
    assert x1 > x0 and y1 < y0


def test_log_log_chart_has_a_straight_line_for_a_power_law():
    ms = [1, 2, 4, 8, 16]
    root = parse(line_chart_svg([Series("1/m", ms, [1 / m for m in ms])], log_x=True, log_y=True,
                                x_ticks=ms))
    points = [tuple(map(float, p.split(","))) for p in
              root.find(f".//{SVG}polyline").attrib["points"].split()]
    slopes = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(points, points[1:])]
    assert max(slopes) - min(slopes) < 0.01  # pixels are rounded to 0.1


def test_line_chart_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one series"):
        line_chart_svg([])
    with pytest.raises(ValueError, match="2 xs but 3 ys"):
        Series("s", [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="log axis"):
        line_chart_svg([Series("s", [1, 2], [-1.0, 0.0])], log_y=True)


def test_decision_boundary_colours_cells_by_the_sign_of_the_score():
    points = [(-1.0, 0.0, 0), (1.0, 0.0, 1), (50.0, 50.0, 1)]  # the last is outside the bounds
    svg = decision_boundary_svg(points, [("x > 0", lambda a, b: a), ("x < 0", lambda a, b: -a)],
                                bounds=(-2, 2, -2, 2), resolution=10, title="t")
    root = parse(svg)
    assert len(root.findall(f".//{SVG}circle")) == 4  # 2 points in bounds x 2 panels
    fills = [r.attrib["fill"] for r in root.iter(SVG + "rect") if r.attrib.get("y", "0") != "0"]
    reds = [f for f in fills if f.startswith("#") and int(f[1:3], 16) > int(f[5:7], 16)]
    blues = [f for f in fills if f.startswith("#") and int(f[1:3], 16) < int(f[5:7], 16)]
    assert reds and blues
    texts = [t.text for t in root.iter(SVG + "text")]
    assert "x > 0" in texts and "x < 0" in texts
    with pytest.raises(ValueError, match="panel"):
        decision_boundary_svg(points, [])


def test_merged_cells_keep_the_file_small():
    svg = decision_boundary_svg([(0.0, 0.0, 1)], [("flat", lambda a, b: 5.0)],
                                bounds=(-1, 1, -1, 1), resolution=40)
    assert svg.count("<rect") < 50  # one merged rect per row, not 1600 cells


def test_save_functions_write_parseable_files(tmp_path):
    p = save_line_chart(tmp_path / "sub" / "c.svg", [Series("s", [0, 1], [0, 1])], title="c")
    q = save_decision_boundary(tmp_path / "d.svg", [(0.0, 0.0, 1)], [("p", lambda a, b: a + b)])
    for path in (p, q):
        assert path.exists()
        parse(path.read_text(encoding="utf-8"))
