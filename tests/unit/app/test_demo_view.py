"""What ``da-app demo`` shows: units, the live table and plain lines within 100 columns, the
module graph, the dead-letter arithmetic and ``da-app demo --help``."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from da_app.demo_view import (
    WIDTH,
    Figures,
    ModuleFigures,
    dead_letter_lines,
    final_text,
    fmt_duration,
    fmt_span,
    live_table,
    plain_line,
    render_graph,
)
from da_app.main import main
from da_core.catalog import default_catalog
from da_core.dependency_graph import DependencyGraph


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.0, "0.0µs"),
        (8.6e-7, "0.9µs"),
        (3.04e-6, "3.0µs"),
        (1.8e-5, "18µs"),
        (9.994e-4, "999µs"),
        (9.996e-4, "1.00ms"),
        (1.234e-3, "1.23ms"),
        (4.56e-2, "45.6ms"),
        (0.8123, "812ms"),
        (0.9996, "1.00s"),
        (1.5, "1.50s"),
        (42.0, "42.0s"),
    ],
)
def test_durations_are_shown_in_the_unit_that_suits_them(seconds: float | None, text: str) -> None:
    assert fmt_duration(seconds) == text
    assert len(fmt_duration(seconds)) <= 6


def test_simulated_spans() -> None:
    assert [fmt_span(s) for s in (5, 125, 3 * 3600 + 7 * 60 + 5)] == ["5s", "2m05s", "3h07m"]


def _busy() -> Figures:
    """Figures of a big, long demo (500 stations for 10 minutes at x60): wide numbers."""
    graph = DependencyGraph.from_catalog(default_catalog())
    mods = {
        name: ModuleFigures(
            stations=500,
            records=12_345_678,
            runs=1_234_567,
            runs_per_s=1_234.0,
            batches=123_456,
            timed_out=1_234,
            uploads=123_456,
            dead_letters=1_111,
            failed_runs=12,
            p50=1.234e-5,
            p99=0.8123,
        )
        for name in graph.topological_order()
    }
    return Figures(
        elapsed=600.0,
        sim_elapsed=36_000.0,
        published=12_345_678,
        msg_per_s=45_678.0,
        runs_per_s=11_106.0,
        modules=mods,
    )


def _render(width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(live_table(_busy()))
    return console.export_text().splitlines()


def test_the_live_table_fits_100_columns_without_wrapping_with_large_figures() -> None:
    narrow = _render(WIDTH)
    wide = _render(200)  # a wider terminal does not stretch or change it
    assert narrow == wide
    assert max(len(line) for line in narrow) <= WIDTH
    assert len(narrow) == 2 + 1 + 9  # headline, header, rule, one row per module: no wrapping
    row = next(line for line in narrow if line.startswith("operation_optimization"))
    assert "12,345,678" in row
    assert "12µs" in row
    assert "812ms" in row
    assert "0.00ms" not in "\n".join(narrow)


def test_plain_lines_fit_100_columns_and_carry_the_p50_range_when_room() -> None:
    line = plain_line(_busy())
    assert len(line) <= WIDTH
    assert "12,345,678 msgs (45,678/s)" in line
    assert "9,999 dead" in line
    small = Figures(
        elapsed=3.0,
        sim_elapsed=180.0,
        published=9_000,
        msg_per_s=3_000.0,
        runs_per_s=900.0,
        modules={
            "a": ModuleFigures(stations=50, p50=3.2e-6),
            "b": ModuleFigures(stations=50, p50=1.5e-3),
        },
    )
    text = plain_line(small)
    assert text.endswith("| p50 3.2µs..1.50ms")
    assert "50 stations" in text
    assert "sim +3m00s" in text


def test_the_module_graph_lists_each_module_with_what_it_reads_by_level() -> None:
    cat = default_catalog()
    graph = DependencyGraph.from_catalog(cat)
    order = graph.topological_order()
    text = render_graph(order, {n: graph.dependencies(n) for n in order})
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert "->" not in text  # not a pipeline chain
    assert len(lines) == 1 + len(order)  # a header, then one line per module
    by_name = {
        line.split()[-1] if "<-" not in line else line.split("<-")[0].split()[-1]: line
        for line in lines[1:]
    }
    assert by_name["load_prediction"].strip().endswith("load_prediction")  # reads no results
    op = by_name["operation_optimization"]
    assert op.split("<-")[1].strip() == "load_prediction"
    ep = by_name["electricity_price"].split("<-")[1]
    assert {d.strip() for d in ep.split(",")} == set(graph.dependencies("electricity_price"))
    # levels: a module is one level below the deepest module it reads
    level_of: dict[str, int] = {}
    current = -1
    for line in lines[1:]:
        if line.startswith("  level "):
            current = int(line.split()[1])
        name = line.split("<-")[0].split()[-1]
        level_of[name] = current
    for name in order:
        deps = graph.dependencies(name)
        assert level_of[name] == (1 + max(level_of[d] for d in deps) if deps else 0)


def test_long_dependency_lists_wrap_within_100_columns() -> None:
    deps = {"z": [f"module_{i:02d}" for i in range(30)]}
    order = [*deps["z"], "z"]
    lines = render_graph(order, deps).splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert sum("module_" in line for line in lines if "level 0" not in line) > 30


def test_the_dead_letter_count_is_explained_with_its_arithmetic() -> None:
    lines = dead_letter_lines(
        49,
        {"SCHEDULE-CAR-ORDER": 9, "SCHEDULE-DEVICE-STORAGE": 1},
        {
            "SCHEDULE-CAR-ORDER": ("a", "b", "c", "d", "e"),
            "SCHEDULE-DEVICE-STORAGE": ("a", "b", "c", "d"),
        },
    )
    text = "\n".join(lines)
    assert "dead letters 49" in text
    assert "10 corrupted records" in text
    assert "every module reading its topic" in text
    assert "9 corrupted x 5 modules =   45" in text
    assert "1 corrupted x 4 modules =    4" in text
    assert "total 49 expected" in text
    assert "unread" not in text
    short = "\n".join(dead_letter_lines(40, {"T": 9}, {"T": ("a", "b", "c", "d", "e")}))
    assert "5 were still unread when the demo stopped" in short
    assert max(len(line) for line in lines) <= WIDTH


def test_the_final_summary_fits_100_columns_and_names_the_log_file() -> None:
    big = {
        "stations": 500,
        "records": 12_345_678,
        "runs": 1_234_567,
        "batches": 123_456,
        "timed_out": 12_345,
        "uploads": 123_456,
        "dead_letters": 9_999,
        "failed_runs": 999,
        "p50_ms": 0.0123,
        "p99_ms": 812.3,
    }
    summary = {
        "published": 123_456_789,
        "corrupted_sent": 1_234,
        "elapsed_s": 3600.0,
        "sim_elapsed_s": 216_000.0,
        "dead_letters": 5,
        "corrupted_by_topic": {"SCHEDULE-DEVICE-HOST-DCDC": 1, "SCHEDULE-CAR-ORDER": 1},
        "topic_readers": {"SCHEDULE-DEVICE-HOST-DCDC": ("a",), "SCHEDULE-CAR-ORDER": ("a",)},
        "log_file": "/tmp/x/demo.log",
        "modules": {"operation_optimization": big, "load_prediction": big},
    }
    text = final_text(summary)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "12µs" in text
    assert "812ms" in text
    assert text.splitlines()[-1] == "log file: /tmp/x/demo.log"
    assert "3 more came from other bad input" in text


def test_demo_help_documents_every_option_with_its_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # argparse wraps help at the terminal's width
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option, default in [
        ("--stations", "50"),
        ("--duration", "20.0"),
        ("--acceleration", "10.0"),
        ("--max-workers", "8"),
        ("--interval", "1.0"),
        ("--view", "auto"),
    ]:
        assert option in text
        assert f"(default: {default})" in text, option
    assert "--log-file" in text
    assert text.count("(default:") == 7  # every option, the log file included
