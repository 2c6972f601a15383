"""SingleFlight: one run per key shared by concurrent callers, failures to all, then afresh."""

from __future__ import annotations

import asyncio

import pytest

from common.singleflight import SingleFlight


def test_concurrent_callers_share_one_run_and_the_next_call_runs_again():
    async def main():
        flights, runs, gate = SingleFlight(), [], asyncio.Event()

        async def work():
            runs.append(1)
            await gate.wait()
            return len(runs)

        callers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(10)]
        await asyncio.sleep(0)
        assert len(flights) == 1
        gate.set()
        assert await asyncio.gather(*callers) == [1] * 10
        await asyncio.sleep(0)
        assert len(flights) == 0
        assert await flights.run("k", work) == 2

    asyncio.run(main())


def test_a_failure_reaches_every_caller_and_a_cancelled_caller_leaves_the_run_alone():
    async def main():
        flights, gate = SingleFlight(), asyncio.Event()

        async def work():
            await gate.wait()
            raise LookupError("no")

        leaving = asyncio.ensure_future(flights.run("k", work))
        staying = asyncio.ensure_future(flights.run("k", work))
        await asyncio.sleep(0)
        leaving.cancel()
        gate.set()
        with pytest.raises(LookupError):
            await staying
        assert leaving.cancelled()

    asyncio.run(main())
