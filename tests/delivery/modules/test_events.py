"""The in-process event bus: delivery, retries, parking, dead letters."""

from __future__ import annotations

import pytest

from delivery.events import Event, EventBus, InProcessEventBus


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_is_an_event_bus():
    bus: EventBus = InProcessEventBus()
    assert hasattr(bus, "publish") and hasattr(bus, "subscribe")


def test_every_subscriber_of_the_topic_gets_the_event():
    bus = InProcessEventBus()
    seen: list[tuple[str, Event]] = []
    bus.subscribe("track.published", lambda e: seen.append(("a", e)), name="a")
    bus.subscribe("track.published", lambda e: seen.append(("b", e)), name="b")
    bus.subscribe("play.recorded", lambda e: seen.append(("c", e)), name="c")
    event = bus.publish("track.published", {"track_id": "t1"})
    assert [name for name, _ in seen] == ["a", "b"]
    assert seen[0][1] is event and event.payload == {"track_id": "t1"}
    assert event.to_dict()["topic"] == "track.published" and event.id
    assert bus.subscribers("track.published") == ["a", "b"]


def test_invalid_topics_are_refused():
    bus = InProcessEventBus()
    for bad in ("", "track", "Track.Published", "a..b", "a.b c"):
        with pytest.raises(ValueError):
            bus.publish(bad, {})


def test_a_failing_handler_is_retried_at_once_and_never_reaches_the_publisher():
    bus = InProcessEventBus(immediate_attempts=3)
    calls = []

    def flaky(event):
        calls.append(event.id)
        if len(calls) < 2:
            raise RuntimeError("database busy")

    bus.subscribe("play.recorded", flaky)
    bus.publish("play.recorded", {"play_id": "p"})
    assert len(calls) == 2 and bus.pending == 0 and bus.delivered == 1


def test_parked_deliveries_are_retried_later_then_dead_lettered():
    clock = Clock()
    bus = InProcessEventBus(immediate_attempts=1, max_attempts=3, backoff_s=1.0, clock=clock)
    calls = []

    def broken(event):
        calls.append(event.id)
        raise RuntimeError("still down")

    ok = []
    bus.subscribe("track.published", broken, name="broken")
    bus.subscribe("track.published", ok.append, name="ok")
    event = bus.publish("track.published", {"track_id": "t"})
    assert len(calls) == 1 and len(ok) == 1 and bus.pending == 1
    assert bus.redeliver() == 0  # not due yet
    clock.now = 1.0
    assert bus.redeliver() == 1 and len(calls) == 2 and bus.pending == 1
    clock.now = 2.5  # backoff doubled: due at 3.0
    assert bus.redeliver() == 0
    clock.now = 3.0
    bus.publish("play.recorded", {})  # publishing also retries what is due
    assert len(calls) == 3 and bus.pending == 0
    assert [(d.event.id, d.handler, d.attempts) for d in bus.dead_letters] == [
        (event.id, "broken", 3)
    ]
    assert "still down" in bus.dead_letters[0].error
    assert len(ok) == 1  # the healthy handler was never re-run


def test_a_recovered_handler_empties_the_queue():
    clock = Clock()
    bus = InProcessEventBus(immediate_attempts=1, max_attempts=5, clock=clock)
    state = {"down": True}
    got = []

    def handler(event):
        if state["down"]:
            raise RuntimeError("down")
        got.append(event.payload["n"])

    bus.subscribe("playlist.changed", handler)
    for n in range(3):
        bus.publish("playlist.changed", {"n": n})
    assert bus.pending == 3
    state["down"] = False
    assert bus.redeliver(force=True) == 3
    assert sorted(got) == [0, 1, 2] and bus.pending == 0 and not bus.dead_letters
