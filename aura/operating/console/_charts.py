"""Small SVG charts drawn on the server: no chart library, no script.

Every label is escaped (step names come from users' code).
"""

from __future__ import annotations

import time
from html import escape

WIDTH, HEIGHT, PAD = 640, 180, 28


def activity_chart(per_minute: list[dict[str, float]]) -> str:
    """Bars of steps completed per minute, failures stacked in red."""
    n = max(1, len(per_minute))
    top = max([p["steps"] + p["failures"] for p in per_minute] + [1])
    bar = (WIDTH - 2 * PAD) / n
    scale = (HEIGHT - 2 * PAD) / top
    parts = [_frame("steps per minute (failures in red)", top)]
    for i, p in enumerate(per_minute):
        x = PAD + i * bar
        ok_h, fail_h = p["steps"] * scale, p["failures"] * scale
        base = HEIGHT - PAD
        label = time.strftime("%H:%M", time.localtime(p["minute"]))
        title = f"{label}: {int(p['steps'])} steps, {int(p['failures'])} failures"
        parts.append(
            f"<g><title>{escape(title)}</title>"
            f'<rect class="ok" x="{x:.1f}" y="{base - ok_h:.1f}" width="{max(bar - 1, 1):.1f}" '
            f'height="{ok_h:.1f}"/>'
            f'<rect class="fail" x="{x:.1f}" y="{base - ok_h - fail_h:.1f}" '
            f'width="{max(bar - 1, 1):.1f}" height="{fail_h:.1f}"/></g>'
        )
    if per_minute:
        first = time.strftime("%H:%M", time.localtime(per_minute[0]["minute"]))
        last = time.strftime("%H:%M", time.localtime(per_minute[-1]["minute"]))
        parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}">{first}</text>')
        parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">{last}</text>')
    return _svg("activity", parts)


def durations_chart(durations: dict[str, list[float]]) -> str:
    """Per step name: the median and the slowest of its recent attempts."""
    rows = [(name, sorted(values)) for name, values in durations.items() if values]
    height = PAD + 22 * max(1, len(rows)) + PAD
    top = max([v[-1] for _, v in rows] + [1e-3])
    left, right = 180, WIDTH - 90
    parts = [f'<text x="{PAD}" y="16">step durations (median bar, slowest tick), seconds</text>']
    for i, (name, values) in enumerate(rows):
        y = PAD + i * 22
        median = values[len(values) // 2]
        worst = values[-1]
        w = (right - left) * median / top
        wx = left + (right - left) * worst / top
        title = f"{name}: median {median:.4f}s, slowest {worst:.4f}s, {len(values)} attempts"
        parts.append(
            f"<g><title>{escape(title)}</title>"
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(name[:28])}</text>'
            f'<rect class="ok" x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="14"/>'
            f'<line class="worst" x1="{wx:.1f}" x2="{wx:.1f}" y1="{y}" y2="{y + 20}"/>'
            f'<text x="{right + 6}" y="{y + 13}">{median:.3f}s</text></g>'
        )
    if not rows:
        parts.append(f'<text x="{PAD}" y="{PAD + 14}">no step attempts yet</text>')
    return _svg("durations", parts, height)


def _frame(title: str, top: float) -> str:
    return (
        f'<text x="{PAD}" y="16">{escape(title)}</text>'
        f'<text x="{WIDTH - PAD}" y="16" text-anchor="end">max {int(top)}</text>'
        f'<line class="axis" x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" '
        f'y2="{HEIGHT - PAD}"/>'
    )


def _svg(name: str, parts: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart {name}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="{name} chart" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )
