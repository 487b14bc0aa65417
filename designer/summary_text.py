"""The plain-text per-layer table of ``convas summary``."""

from __future__ import annotations

from dataclasses import replace

from engine import MemoryEstimate, Report, human_count
from engine.analysis import NodeInfo

HEADERS = ("id", "type", "output shape", "params", "MACs", "RF", "jump")
RIGHT_ALIGNED = {3, 4, 5, 6}


def _shape(info: NodeInfo) -> str:
    if info.error is not None:
        return "error"
    if info.output_shape is None:
        return "?"
    return "[" + ", ".join(str(d) for d in info.output_shape) + "]"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _row(info: NodeInfo, frozen: bool) -> tuple[str, ...]:
    kind = f"{info.type} (frozen)" if frozen else info.type
    return (info.id, kind, _shape(info), f"{info.params:,}" if info.params else "0",
            human_count(info.macs) if info.macs else "0", _num(info.receptive_field),
            _num(info.jump))


def format_summary(report: Report, memory: MemoryEstimate | None = None,
                   expand: bool = False) -> str:
    """An aligned table like ``torchinfo``'s, plus totals in human units and problems;
    frozen blocks (SPEC §8) are marked, and their parameters left out of the trainable.
    ``expand`` lists the body of each block made of blocks after it, as
    ``instance/inner_id`` rows (SPEC §9); the totals count each block once."""
    if expand:
        from engine.user_blocks import expanded

        rows = [HEADERS] + [_row(replace(i, id=path), path in report.frozen)
                            for path, i in expanded(report.nodes)]
    else:
        rows = [HEADERS] + [_row(i, n in report.frozen) for n, i in report.nodes.items()]
    widths = [max(len(r[c]) for r in rows) for c in range(len(HEADERS))]

    def line(r: tuple[str, ...]) -> str:
        cells = [r[c].rjust(widths[c]) if c in RIGHT_ALIGNED else r[c].ljust(widths[c])
                 for c in range(len(r))]
        return "  ".join(cells).rstrip()

    rule = "─" * len(line(rows[0]))
    out = [f"{report.name}", rule, line(rows[0]), rule]
    out += [line(r) for r in rows[1:]]
    out.append(rule)
    total = report.total_params
    out.append(f"Total params:     {total:,} ({human_count(total)})")
    trainable = report.trainable_params
    frozen = f" ({total - trainable:,} frozen)" if trainable != total else ""
    out.append(f"Trainable params: {trainable:,}{frozen}")
    out.append(f"Total MACs:       {report.total_macs:,} ({human_count(report.total_macs)})")
    if report.output_shape is not None:
        out.append("Output shape:     [" + ", ".join(map(str, report.output_shape)) + "]")
    if memory is not None:
        out.append(f"Training memory:  {memory.describe()}")
    for w in report.warnings:
        out.append(f"warning: {w}")
    for e in report.errors:
        out.append(f"error: {e}")
    return "\n".join(out) + "\n"
