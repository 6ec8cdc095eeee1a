"""Point labels that keep apart: no two overlap, none covers a marker, all stay inside the axes.

A few dozen lines of our own rather than adjustText, which would bring scipy into the report extra and
only reduces overlaps iteratively, where this rules them out wherever the axes have room, and is
deterministic: the same results render the same PNG.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class _Box:
    """An axis-aligned rectangle in display pixels (y up, as matplotlib's display space)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def around(cls, x: float, y: float, half_w: float, half_h: float) -> _Box:
        return cls(x - half_w, y - half_h, x + half_w, y + half_h)

    def overlaps(self, other: _Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def inside(self, other: _Box) -> bool:
        return other.x0 <= self.x0 and self.x1 <= other.x1 and other.y0 <= self.y0 and self.y1 <= other.y1

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def crossed_by(self, start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Whether the segment from ``start`` to ``end`` passes through the box (Liang-Barsky clipping)."""
        (x, y), (dx, dy) = start, (end[0] - start[0], end[1] - start[1])
        low, high = 0.0, 1.0
        for step, room in ((-dx, x - self.x0), (dx, self.x1 - x), (-dy, y - self.y0), (dy, self.y1 - y)):
            if step == 0:
                if room <= 0:
                    return False
                continue
            t = room / step
            if step < 0:
                low = max(low, t)
            else:
                high = min(high, t)
            if low >= high:
                return False
        return True


@dataclass(frozen=True)
class PointLabel:
    """A label for one plotted point, and how far (in points) its marker reaches from its centre."""

    x: float
    y: float
    text: str
    marker_radius: float
    color: str = "black"
    """The series colour: in a crowd, colour is what ties a label to its point."""


# Where a label goes around its point, as a fraction of the way along each axis of the ring rectangle
# (below): the four corners first (the usual "up and to the right" spot leads), then above and below,
# which suit the common case of cells in a near-horizontal row (batching barely changes ROUGE), then the
# sides, then the quarter points in between.
_SPOTS: tuple[tuple[float, float], ...] = (
    (1, 1), (-1, 1), (1, -1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0),
    (0.5, 1), (-0.5, 1), (0.5, -1), (-0.5, -1), (1, 0.5), (-1, 0.5), (1, -0.5), (-1, -0.5),
)  # fmt: skip
_GAP_PT = 2.0
"""Space between a marker's edge and the nearest edge of its label, in points."""


def _candidates(
    x: float, y: float, half_w: float, half_h: float, reach: float, step: float
) -> Iterator[tuple[int, _Box]]:
    """Label boxes around (x, y), ring by ring outwards: ring k keeps the box at least ``reach + k * step``
    from the point on one axis, so no box of any ring covers the point's own marker. Endless; the caller
    stops."""
    ring = 0
    while True:
        dx, dy = half_w + reach + ring * step, half_h + reach + ring * step
        for fx, fy in _SPOTS:
            yield ring, _Box.around(x + fx * dx, y + fy * dy, half_w, half_h)
        ring += 1


def place_point_labels(fig, ax, labels: Sequence[PointLabel], fontsize: str = "x-small") -> list:
    """Annotate each point so that no two labels overlap, none covers a marker, and all stay in the axes.

    Greedy and deterministic, in the order given (put the labels that matter most first): each label takes
    the first free spot of ``_SPOTS`` right beside its point, or failing that the first free one on a wider
    ring, joined to its point by a thin leader line so it still reads as that point's. Placement is done in
    display pixels of the laid-out figure, so it must run after everything that moves the axes or the data
    limits (scales, margins, reference lines) and the labels are kept out of the layout so that the saved
    figure is laid out exactly as the one measured. The rings reach across the whole axes, so only a label
    that finds the axes full falls back to the first spot, overlapping. Returns the annotations.
    """
    if not labels:
        return []
    fig.draw_without_rendering()  # runs the layout and autoscaling the pixels below depend on
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72
    frame = ax.get_window_extent(renderer)
    frame_box = _Box(frame.x0 + 1, frame.y0 + 1, frame.x1 - 1, frame.y1 - 1)
    centres = [tuple(ax.transData.transform((lab.x, lab.y))) for lab in labels]
    markers = [
        _Box.around(cx, cy, lab.marker_radius * px_per_pt, lab.marker_radius * px_per_pt)
        for lab, (cx, cy) in zip(labels, centres, strict=True)
    ]
    placed: list[_Box] = []
    leaders: list[tuple[tuple[float, float], tuple[float, float]]] = []

    def free(ring: int, box: _Box, point: tuple[float, float]) -> bool:
        """In the axes, clear of every marker, label and leader line, and (away from its point) joined to
        it by a leader line that crosses no other label."""
        return (
            box.inside(frame_box)
            and not any(box.overlaps(other) for other in (*markers, *placed))
            and not any(box.crossed_by(a, b) for a, b in leaders)
            and (ring == 0 or not any(other.crossed_by(point, box.centre) for other in placed))
        )

    gap = _GAP_PT * px_per_pt
    annotations = []
    for lab, (cx, cy) in zip(labels, centres, strict=True):
        probe = ax.text(0, 0, lab.text, fontsize=fontsize)
        size = probe.get_window_extent(renderer)
        probe.remove()
        half_w, half_h = size.width / 2, size.height / 2
        reach, step = lab.marker_radius * px_per_pt + gap, 2 * half_h
        last_ring = int(max(frame.width, frame.height) / step) + 1
        ring, box = next(_candidates(cx, cy, half_w, half_h, reach, step))
        for r, b in _candidates(cx, cy, half_w, half_h, reach, step):
            if r > last_ring:
                break
            if free(r, b, (cx, cy)):
                ring, box = r, b
                break
        placed.append(box)
        if ring > 0:
            leaders.append(((cx, cy), box.centre))
        # Away from its point, a leader line says whose label it is.
        leader = {"arrowstyle": "-", "color": lab.color, "linewidth": 0.6, "shrinkA": 1, "shrinkB": lab.marker_radius}
        ann = ax.annotate(
            lab.text,
            (lab.x, lab.y),
            textcoords="offset points",
            xytext=((box.centre[0] - cx) / px_per_pt, (box.centre[1] - cy) / px_per_pt),
            ha="center",
            va="center",
            fontsize=fontsize,
            color=lab.color,
            zorder=5,
            arrowprops=leader if ring > 0 else None,
        )
        ann.set_in_layout(False)
        annotations.append(ann)
    return annotations
