"""Labels beside scatter points that never overlap one another, a point or the legend.

Each label tries a fixed set of offsets around its point (8 directions, growing distances) and takes
the best by, in this order: no collision with what is already placed (labels, markers, the legend)
nor with the axes' edge; then not nearer another point than its own; then nearest its point. So a
lone point keeps its label just up and right, as before; where none of the 64 spots is free (dozens
of points in one cluster), the least colliding one. Extents are the figure's real text extents;
a label that had to move away gets a thin leader line to its point. The layout is drawn once and
then frozen, so the saved figure has exactly the geometry the labels were placed in. Deterministic.
Written here rather than taken from adjustText, whose iterative repulsion lowers overlaps but does
not promise none.
"""

from __future__ import annotations

from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

# (dx, dy) unit directions with the text alignment that keeps the text on that side of its point:
# up-right first (the old fixed offset), then the other diagonals, then the four sides
DIRECTIONS = [((1, 1), "left", "bottom"), ((1, -1), "left", "top"), ((-1, 1), "right", "bottom"),
              ((-1, -1), "right", "top"), ((1, 0), "left", "center"), ((-1, 0), "right", "center"),
              ((0, 1), "center", "bottom"), ((0, -1), "center", "top")]
RADII_PT = [8, 12, 18, 26, 36, 48, 62, 80]
LEADER_FROM_PT = 12  # labels this far from their point or farther get a leader line
GAP_PX = 2.0  # minimum clear space between two labels, or a label and a marker


def freeze_layout(fig) -> object:
    """Run the figure's layout once and keep it: what is measured next is what is saved."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    fig.set_layout_engine("none")
    return canvas.get_renderer()


def text_extent(label: Annotation, renderer) -> Bbox:
    """The label's text alone, in display pixels (an Annotation's own extent adds its leader line)."""
    label.update_positions(renderer)  # the text's place follows its offset only once this runs
    return Text.get_window_extent(label, renderer)


def _distance(box: Bbox, point) -> float:
    nearest_x = min(max(point[0], box.x0), box.x1)
    nearest_y = min(max(point[1], box.y0), box.y1)
    return ((point[0] - nearest_x) ** 2 + (point[1] - nearest_y) ** 2) ** 0.5


def _hits_marker(box: Bbox, center, radius: float) -> float:
    """How deep `box` reaches into a round marker grown by GAP_PX (0 when clear)."""
    return max(radius + GAP_PX - _distance(box, center), 0.0) ** 2


def _ambiguity(box: Bbox, own, centers) -> float:
    """Pixels by which the label sits nearer another point than its own (0 when its own is nearest)."""
    mine = _distance(box, own)
    return sum(max(mine - _distance(box, other) + GAP_PX, 0.0) for other in centers if other is not own)


def _overlap(a: Bbox, b: Bbox, gap: float) -> float:
    """Area by which `a`, grown by `gap` on every side, overlaps `b` (0 when clear)."""
    width = min(a.x1 + gap, b.x1) - max(a.x0 - gap, b.x0)
    height = min(a.y1 + gap, b.y1) - max(a.y0 - gap, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _outside(box: Bbox, frame: Bbox) -> float:
    """How far, in pixels summed over the sides, `box` sticks out of `frame`."""
    return (max(frame.x0 - box.x0, 0) + max(box.x1 - frame.x1, 0) + max(frame.y0 - box.y0, 0)
            + max(box.y1 - frame.y1, 0))


def place_point_labels(ax, points: Sequence[tuple[float, float, str]], marker_radius_pt: float,
                       fontsize: float = 8, gid_prefix: str = "point-label") -> list[Annotation]:
    """Annotate each (x, y, text) of `points` on `ax` without overlaps; returns the annotations
    (gids `gid_prefix`-0, -1, ...). Call after everything else is drawn on the figure."""
    fig = ax.figure
    renderer = freeze_layout(fig)
    px_per_pt = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    centers = [ax.transData.transform((x, y)) for x, y, _ in points]
    radius = marker_radius_pt * px_per_pt
    taken: list[Bbox] = []
    legend = ax.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))
    probe = ax.annotate("", (0, 0), xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
    labels = []
    for i, (x, y, text) in enumerate(points):
        probe.set_text(text)
        probe.xy = (x, y)
        best = None  # (score, radius, offset, ha, va)
        for r in RADII_PT:
            for (ux, uy), ha, va in DIRECTIONS:
                scale = 0.8 if ux and uy else 1.0  # diagonals: about the same distance as the sides
                offset = (ux * r * scale, uy * r * scale)
                probe.xyann = offset
                probe.set_horizontalalignment(ha)
                probe.set_verticalalignment(va)
                box = text_extent(probe, renderer)
                collisions = (sum(_overlap(box, other, GAP_PX) for other in taken) + 50 * _outside(box, frame)
                              + sum(_hits_marker(box, center, radius) for center in centers))
                # any collision outweighs everything else; then: nearest its own point, nearer than others
                score = 1e6 * collisions + _ambiguity(box, centers[i], centers) + r * px_per_pt
                if best is None or score < best[0]:
                    best = (score, r, offset, ha, va)
        _, r, offset, ha, va = best
        leader = dict(arrowstyle="-", color="#888888", linewidth=0.6, shrinkA=1,
                      shrinkB=marker_radius_pt) if r >= LEADER_FROM_PT else None
        label = ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", fontsize=fontsize,
                            ha=ha, va=va, arrowprops=leader, zorder=4)
        label.set_gid(f"{gid_prefix}-{i}")
        taken.append(text_extent(label, renderer))
        labels.append(label)
    probe.remove()
    return labels
