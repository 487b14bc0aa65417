"""Human-readable counts and sizes, shared by the command line and the GUI."""

from __future__ import annotations


def _three_digits(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 99.95 else f"{v:.1f}" if abs(v) >= 9.995 else f"{v:.2f}"


def human_count(n: float) -> str:
    """11689512 → '11.7 M', 1814073344 → '1.81 G', 6998552 → '7.00 M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{_three_digits(n / scale)} {unit}"
    return str(int(n))


def human_bytes(n: float) -> str:
    """Binary units, as GPU memory is reported: 1536 → '1.50 KiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{_three_digits(n / scale)} {unit}"
    return f"{int(n)} B"


def json_text(value: object) -> str:
    """A parameter value as the graph file writes it: true, null, "same", [3, 5]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
