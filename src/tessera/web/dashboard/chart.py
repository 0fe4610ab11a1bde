"""A key's requests per day as an inline SVG bar chart: accepted and refused stacked, a y-axis
with round steps, the full width of its panel; no script needed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT = 1000, 220
LEFT, BOTTOM, TOP = 48, 22, 10  # room for the y-axis labels, the dates, the top label
GAP = 3


def axis_step(peak: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) cutting ``peak`` in 4 parts or fewer."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * 4 >= peak:
                return step * factor
        step *= 10


def usage_chart(days: Sequence[dict[str, Any]]) -> str:
    if not days:
        return '<svg viewBox="0 0 1000 40" role="img" aria-label="No data"></svg>'
    step = axis_step(max(d["requests"] for d in days))
    top = step * max(1, -(-max(d["requests"] for d in days) // step))
    plot = HEIGHT - BOTTOM - TOP
    parts = _y_axis(step, top, plot)
    bar = (WIDTH - LEFT - GAP * len(days)) / len(days)
    for index, day in enumerate(days):
        x = LEFT + index * (bar + GAP)
        parts.append(_bars(day, x, bar, plot / top))
        if index % 5 == 0 or index == len(days) - 1:
            parts.append(
                f'<text class="x" x="{x + bar / 2:.1f}" y="{HEIGHT - 6}">{day["date"][5:]}</text>'
            )
    label = f"Requests per day, {days[0]['date']} to {days[-1]['date']}"
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        + "".join(parts)
        + "</svg>"
    )


def _y_axis(step: int, top: int, plot: float) -> list[str]:
    parts = []
    for value in range(0, top + 1, step):
        y = TOP + plot - value / top * plot
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="y" x="{LEFT - 6}" y="{y + 4:.1f}">{value:,}</text>')
    return parts


def _bars(day: dict[str, Any], x: float, width: float, scale: float) -> str:
    refused = day["rejected"]
    accepted = day["requests"] - refused
    base = HEIGHT - BOTTOM
    ok, no = accepted * scale, refused * scale
    title = f"{day['date']}: {day['requests']} requests, {accepted} accepted, {refused} refused"
    return (
        f"<g><title>{title}</title>"
        f'<rect class="bar accepted" x="{x:.1f}" y="{base - ok:.1f}" '
        f'width="{width:.1f}" height="{ok:.1f}"/>'
        f'<rect class="bar rejected" x="{x:.1f}" y="{base - ok - no:.1f}" '
        f'width="{width:.1f}" height="{no:.1f}"/></g>'
    )
