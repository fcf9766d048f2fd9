"""``/status`` stays small however many stations there are (issue 10 item 9): the station
table is one page, with the total; the refused-stations metric is exported."""

from __future__ import annotations

from da_app.health import MAX_STATION_PAGE, StationPage

from .helpers import echo_window
from .ops_support import ops_service, wait_for


def test_status_lists_one_page_of_stations_with_the_total_and_the_refusals_are_metrics() -> None:
    stations = [f"S{i}" for i in range(1, 6)]
    with ops_service(echo_window, config={"SERVICE_CONFIG": {"max_stations": 5}}) as ops:
        ops.feed([*stations, "S6"], range(1))
        wait_for(lambda: len(ops.service.engine) == 5, what="the stations")
        wait_for(
            lambda: ops.service.engine.stats.stations_refused.get("station_limit", 0) >= 2,
            what="the refusals",
        )
        code, doc = ops.get("/status?stations=2&offset=1")
        assert code == 200
        assert sorted(doc["stations"]) == ["S2", "S3"]
        assert doc["stations_page"] == {"offset": 1, "limit": 2, "returned": 2, "total": 5}
        code, doc = ops.get("/status")
        assert doc["stations_page"]["limit"] == 100
        assert len(doc["stations"]) == 5
        text = ops.scrape()
        assert 'data_analysis_stations_refused_total{reason="station_limit"}' in text
        assert "data_analysis_future_items_total" in text


def test_a_station_page_is_parsed_with_bounds_and_defaults() -> None:
    assert StationPage.parse("0", None) is None
    assert StationPage.parse("", "") == StationPage(0, 100)
    assert StationPage.parse("true", "7") == StationPage(7, 100)
    assert StationPage.parse("50", "x") == StationPage(0, 50)
    assert StationPage.parse("999999", "0") == StationPage(0, MAX_STATION_PAGE)
