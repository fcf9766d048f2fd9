"""What ``da-app demo`` shows: durations in readable units, the live table, plain progress
lines, the module graph and the final summary with its dead-letter arithmetic.

Pure rendering: every function takes figures (``Figures``, ``ModuleFigures``) and returns text
or a rich renderable; nothing here reads a clock or a service. Every line it produces fits
``WIDTH`` (100) columns, so the demo never wraps on a 100-column terminal or in a log.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:  # rich is imported only when a live table is drawn
    from rich.console import RenderableType

WIDTH = 100
"""Columns every line of the demo's output fits in."""


def fmt_duration(seconds: float | None) -> str:
    """A duration in the unit that suits it, at most 3 significant digits and 6 characters:
    ``860ns`` is shown as ``0.9µs``, then ``18µs``, ``1.23ms``, ``45.6ms``, ``812ms``, ``1.50s``.
    ``None`` (no measurement yet) is ``-``. Thresholds account for rounding, so 999.6 µs reads
    ``1.00ms``, never ``1000µs``."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    us = s * 1e6
    if us < 9.95:
        return f"{us:.1f}µs"
    if us < 999.5:
        return f"{us:.0f}µs"
    ms = s * 1e3
    if ms < 9.995:
        return f"{ms:.2f}ms"
    if ms < 99.95:
        return f"{ms:.1f}ms"
    if ms < 999.5:
        return f"{ms:.0f}ms"
    return f"{s:.2f}s" if s < 9.995 else f"{s:.1f}s"


def fmt_span(seconds: float) -> str:
    """Simulated time elapsed, as ``45s``, ``12m05s`` or ``3h07m``."""
    t = int(max(0.0, seconds))
    if t < 60:
        return f"{t}s"
    if t < 3600:
        return f"{t // 60}m{t % 60:02d}s"
    return f"{t // 3600}h{t % 3600 // 60:02d}m"


@attrs.frozen
class ModuleFigures:
    """One module's counters since start; latencies in seconds (None: no run yet)."""

    stations: int = 0
    records: int = 0
    runs: int = 0
    runs_per_s: float = 0.0
    batches: int = 0
    timed_out: int = 0
    uploads: int = 0
    dead_letters: int = 0
    failed_runs: int = 0
    p50: float | None = None
    p99: float | None = None


@attrs.frozen
class Figures:
    """A snapshot of the whole demo: wall and simulated seconds since start, messages published
    and their rate (per wall second), and every module's figures in graph order."""

    elapsed: float
    sim_elapsed: float
    published: int
    msg_per_s: float
    runs_per_s: float
    modules: Mapping[str, ModuleFigures]

    @property
    def stations(self) -> int:
        return max((m.stations for m in self.modules.values()), default=0)

    @property
    def dead_letters(self) -> int:
        return sum(m.dead_letters for m in self.modules.values())

    @property
    def batches(self) -> int:
        return sum(m.batches for m in self.modules.values())


def headline(f: Figures) -> str:
    """The line above the live table (and the start of every plain line)."""
    return (
        f"{f.elapsed:4.0f}s (sim +{fmt_span(f.sim_elapsed)}) | {f.stations} stations | "
        f"{f.published:,} msgs ({f.msg_per_s:,.0f}/s) | {f.runs_per_s:,.0f} runs/s | "
        f"{f.dead_letters:,} dead"
    )


def plain_line(f: Figures) -> str:
    """One progress line for a log or a pipe (stdout not a terminal): the headline, then the
    fastest and slowest module's p50 callback time while they fit ``WIDTH``."""
    line = headline(f)
    p50s = [m.p50 for m in f.modules.values() if m.p50 is not None]
    if p50s:
        extra = f" | p50 {fmt_duration(min(p50s))}..{fmt_duration(max(p50s))}"
        if len(line) + len(extra) <= WIDTH:
            line += extra
    return line[:WIDTH]


_COLUMNS = (
    ("module", "left"),
    ("stations", "right"),
    ("records", "right"),
    ("runs", "right"),
    ("runs/s", "right"),
    ("batches", "right"),
    ("dead", "right"),
    ("p50", "right"),
    ("p99", "right"),
)


def table_rows(f: Figures) -> list[tuple[str, ...]]:
    """The live table's cells, one row per module (shared by the rich and the text table)."""
    return [
        (
            name,
            f"{m.stations:,}",
            f"{m.records:,}",
            f"{m.runs:,}",
            f"{m.runs_per_s:,.0f}",
            f"{m.batches:,}",
            f"{m.dead_letters:,}",
            fmt_duration(m.p50),
            fmt_duration(m.p99),
        )
        for name, m in f.modules.items()
    ]


def live_table(f: Figures) -> RenderableType:
    """The live view for a terminal: the headline over a compact table (p50/p99: callback
    time). Its natural width is under ``WIDTH`` with realistic figures; ``expand`` is off so a
    wider terminal does not stretch it."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False)
    for title, justify in _COLUMNS:
        table.add_column(title, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in table_rows(f):
        table.add_row(*row)
    return Group(Text(headline(f), no_wrap=True, overflow="ellipsis"), table)


def render_graph(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> str:
    """The module graph by level: level 0 modules read only raw topics; a module of level n
    reads the results of the modules after its ``<-``, the deepest of which is on level n-1.
    ``order`` is a topological order; each line fits ``WIDTH`` (long lists wrap, indented)."""
    level: dict[str, int] = {}
    for name in order:
        level[name] = 1 + max((level[d] for d in deps.get(name, ())), default=-1)
    name_w = max((len(n) for n in order), default=0)
    lines = ["module graph (a module <- the modules whose results it reads):"]
    for lv in range(max(level.values(), default=-1) + 1):
        for i, name in enumerate(n for n in order if level[n] == lv):
            prefix = f"  level {lv}  " if i == 0 else " " * 11
            ds = deps.get(name, ())
            if not ds:
                lines.append(f"{prefix}{name}")
                continue
            head = f"{prefix}{name:<{name_w}}  <- "
            lines += textwrap.wrap(
                ", ".join(ds),
                width=WIDTH,
                initial_indent=head,
                subsequent_indent=" " * len(head),
                break_on_hyphens=False,
            )
    return "\n".join(lines)


def dead_letter_lines(
    dead_letters: int, corrupted: Mapping[str, int], readers: Mapping[str, Sequence[str]]
) -> list[str]:
    """Why ``dead_letters`` exceeds the number of corrupted records: every module reading a
    topic consumes (and so dead-letters) each of its corrupted records, so the expected total is
    the sum over topics of corrupted records × modules reading it. A shortfall means records
    still unread when the demo stopped."""
    sent = sum(corrupted.values())
    if not sent and not dead_letters:
        return ["dead letters 0 (no corrupted records were sent)"]
    lines = [
        f"dead letters {dead_letters}: the {sent} corrupted records, each dead-lettered by every "
        "module reading its topic:"
    ]
    expected = 0
    topic_w = max((len(t) for t in corrupted), default=0)
    for topic, n in sorted(corrupted.items()):
        k = len(readers.get(topic, ()))
        expected += n * k
        lines.append(f"  {topic:<{topic_w}}  {n:3d} corrupted x {k} modules = {n * k:4d}")
    note = f"  total {expected} expected"
    if dead_letters < expected:
        note += f"; {expected - dead_letters} were still unread when the demo stopped"
    elif dead_letters > expected:
        note += f"; {dead_letters - expected} more came from other bad input"
    lines.append(note + " (the 'dead' column counts them per module)")
    return lines


def final_text(summary: Mapping[str, Any]) -> str:
    """The final summary as text (figures from ``demo._summary``), every line within WIDTH."""
    lines = [
        f"final summary: published {summary['published']:,} messages "
        f"({summary['corrupted_sent']} deliberately corrupted) in {summary['elapsed_s']}s "
        f"(sim +{fmt_span(summary.get('sim_elapsed_s', 0.0))})",
        f"{'module':22s} {'stations':>8s} {'records':>8s} {'runs':>7s} {'batches':>7s} "
        f"{'timeouts':>8s} {'uploads':>7s} {'dead':>5s} {'fail':>4s} {'p50':>7s} {'p99':>7s}",
    ]
    for name, m in summary["modules"].items():
        p50 = None if m["p50_ms"] is None else m["p50_ms"] / 1000
        p99 = None if m["p99_ms"] is None else m["p99_ms"] / 1000
        lines.append(
            f"{name:22s} {m['stations']:8d} {m['records']:8d} {m['runs']:7d} {m['batches']:7d} "
            f"{m['timed_out']:8d} {m['uploads']:7d} {m['dead_letters']:5d} {m['failed_runs']:4d} "
            f"{fmt_duration(p50):>7s} {fmt_duration(p99):>7s}"
        )
    lines += dead_letter_lines(
        summary["dead_letters"], summary["corrupted_by_topic"], summary["topic_readers"]
    )
    if summary.get("log_file"):
        lines.append(f"log file: {summary['log_file']}")
    return "\n".join(lines)
