"""Test harnesses for model authors: a service on the in-memory bus, no Kafka needed.

    from da_app.testing import Harness

    def my_model(station_id, module_input):
        return {"load": module_input["outputPowerPerStationAvg"]}

    with Harness("load_prediction", my_model) as h:      # stopped (drained, committed) at exit
        h.publish_sample("SCHEDULE-STATION-PARAM")      # payloads from spec/samples, or your own
        h.publish("SCHEDULE-STATION-REALTIME-DATA", {"realTimeData": [...]})
        h.run_until_idle()
        results = h.results()                            # what the module published
        h.advance(5)                                     # move the manual clock (batch timeouts)

The asyncio service has the same harness, with coroutines where it drives the loop:

    from da_app.testing import AsyncHarness

    async with AsyncHarness("load_prediction", my_async_model) as h:
        h.publish_sample("SCHEDULE-STATION-PARAM")
        h.publish_sample("SCHEDULE-STATION-REALTIME-DATA")
        await h.run_until_idle()
        results = h.results()

Either harness drives its service's runner step by step from the caller (callbacks still run
in the worker pool, or as tasks of the caller's event loop), so tests are deterministic and
never sleep. A harness not used as a context manager must be stopped (``stop()`` or
``crash()``): its runner's worker threads live until then.
"""

from da_app.testing.aio import AsyncHarness
from da_app.testing.base import SAMPLES_DIR, HarnessBase, Settling, load_sample
from da_app.testing.sync import Harness

__all__ = ["SAMPLES_DIR", "AsyncHarness", "Harness", "HarnessBase", "Settling", "load_sample"]
