"""Chart readability: scatter labels never overlap (measured on the rendered text extents, and in a
real browser on the report's SVGs), and a one-epoch strategy is drawn as a point, not a curve."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pandas as pd
import pytest

from bench.reporting import charts
from bench.reporting.label_placement import text_extent
from bench.reporting.report import render_report
from tests.report_records import CHROMIUM, chromium, console_errors, ok_record, write_all

# the default run's groups: lora and qlora sit on one trainable-parameter count,
# and "lora · smollm2" printed over "full-ft · minilm" with fixed offsets
DEFAULT_RUN = [("feature-extract", "minilm", 0.963, 1_900, 20, 960), ("full-ft", "minilm", 0.950, 22_700_000, 40, 1800),
               ("lora", "smollm2", 0.938, 1_800_000, 82, 2500), ("qlora", "smollm2", 0.923, 1_800_000, 156, 1700),
               ("zero-shot", "smollm2", 0.615, 0, 0, 1100)]
# six groups a hair apart on both axes, squeezed together by two far ones: the crowded case
CLUSTER = ([(f"strategy-{i}", "some-model", 0.90 + 0.003 * i, 1_000_000 * (1 + 0.05 * i), 60 + i, 1500 + 10 * i)
            for i in range(6)] + [("far-low", "m", 0.60, 1_000, 0, 500), ("far-high", "m", 0.97, 100_000_000, 400, 4000)])


def points(groups, cost_index: int):
    return [{"label": f"{s} · {m}", "strategy": s, "cost": float(g[cost_index]), "accuracy": g[2],
             "accuracy_std": 0.01, "pareto": i in (0, len(groups) - 1)} for i, g in enumerate(groups)
            for s, m in [g[:2]]]


def label_boxes(fig):
    """The point labels' text extents in the figure as saved."""
    charts.to_svg(fig, "measured")  # the same save as the report's: layout, tight bounding box
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if (t.get_gid() or "").startswith("point-label")]
    return labels, [text_extent(t, renderer) for t in labels], fig.bbox


@pytest.mark.parametrize("groups", [DEFAULT_RUN, CLUSTER], ids=["default-run", "cluster"])
@pytest.mark.parametrize("cost_index,log_x", [(3, True), (4, False), (5, False)], ids=["params", "time", "memory"])
def test_scatter_labels_never_overlap(groups, cost_index, log_x):
    fig = charts.cost_scatter_figure(points(groups, cost_index), "cost", log_x)
    labels, boxes, frame = label_boxes(fig)
    assert len(labels) == len(groups)
    overlapping = [(a.get_text(), b.get_text()) for (a, box_a), (b, box_b)
                   in itertools.combinations(zip(labels, boxes), 2) if box_a.overlaps(box_b)]
    assert not overlapping
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


def test_a_lone_point_keeps_its_label_beside_it():
    fig = charts.cost_scatter_figure(points(DEFAULT_RUN[:1], 3), "cost", True)
    (label,), _, _ = label_boxes(fig)
    assert label.xyann[0] > 0 and label.xyann[1] > 0 and max(label.xyann) < 12  # just up and right
    assert label.arrow_patch is None  # no leader line where none is needed


def test_crowded_labels_that_moved_get_leader_lines():
    fig = charts.cost_scatter_figure(points(CLUSTER, 3), "cost", True)
    labels, _, _ = label_boxes(fig)
    moved = [t for t in labels if max(abs(v) for v in t.xyann) >= 12]
    assert moved and all(t.arrow_patch is not None for t in moved)


def test_one_epoch_strategy_is_a_point_not_a_curve():
    frame = lambda epochs: pd.DataFrame({"epoch": range(1, epochs + 1), "train_loss": [1.0] * epochs,  # noqa: E731
                                         "val_loss": [0.9] * epochs, "val_accuracy": [0.8] * epochs})
    fig = charts.training_curves_figure([{"label": "lora · smollm2", "strategy": "lora", "frame": frame(1)},
                                         {"label": "full-ft · minilm", "strategy": "full-ft", "frame": frame(2)}])
    for ax in fig.axes:
        one, two = ax.get_lines()
        assert one.get_linestyle() == "None" and one.get_marker() == "D" and len(one.get_xdata()) == 1
        assert two.get_linestyle() == "-" and len(two.get_xdata()) == 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "lora · smollm2 (1 epoch: a point)", "full-ft · minilm"]


OVERLAP_PROBE = """<script>
// Test-only probe: in every chart, the rendered boxes of the point labels; any two that intersect
// are listed where --dump-dom can see them.
var found = [], counted = 0;
document.querySelectorAll("svg.chart").forEach(function (svg) {
  var boxes = Array.prototype.map.call(svg.querySelectorAll('g[id*="point-label-"]'), function (g) {
    return g.getBoundingClientRect(); });
  counted += boxes.length;
  for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
    var a = boxes[i], b = boxes[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
      found.push(svg.getAttribute("data-chart") + ":" + i + "/" + j); }
});
document.body.setAttribute("data-labels", counted);
document.body.setAttribute("data-overlaps", found.join(","));
</script>"""
SCATTER_SHOT = Path("/tmp/report_scatter_screenshot.png")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_scatter_labels_in_a_browser(tmp_path):
    """The default run's groups, one seed each, rendered as the report; Chromium measures the label
    boxes and takes a screenshot of the accuracy-against-cost panels alone."""
    records = [ok_record(s, 0, acc, model=m, trainable=p, total=max(p, 135_000_000), train_s=t, memory_mb=mb,
                         epochs=1 if s in ("lora", "qlora") else 2)
               for s, m, acc, p, t, mb in DEFAULT_RUN]
    report = render_report(write_all(tmp_path / "results", records), tmp_path / "index.html")
    page = report.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", OVERLAP_PROBE + "</body>"))
    result = chromium(probe, tmp_path / "profile", "--dump-dom", "--window-size=1400,3000")
    assert not console_errors(result.stderr), result.stderr
    counted = re.search(r'data-labels="(\d+)"', result.stdout)
    assert counted and int(counted.group(1)) >= 3 * len(DEFAULT_RUN), "no labels found in the charts"
    assert 'data-overlaps=""' in result.stdout, re.search(r'data-overlaps="[^"]*"', result.stdout)

    panels = tmp_path / "panels.html"
    panels.write_text(page.replace("</head>", "<style>body > header, body > section:not(#cost) "
                                              "{ display: none !important; }</style></head>"))
    shot = chromium(panels, tmp_path / "profile2", f"--screenshot={SCATTER_SHOT}", "--window-size=1400,900",
                    "--hide-scrollbars")
    assert shot.returncode == 0 and SCATTER_SHOT.stat().st_size > 10_000
