import pytest

from command.incidents import Decision, InvalidTransition, OpenIncident, Status, decide, transition
from command.risk.rules import Assessment, Level


def _a(level: Level) -> Assessment:
    return Assessment("flood", level, "g1", 181.0, "m", "r", "r")


def test_first_crossing_opens():
    assert decide(_a(Level.YELLOW), None) == Decision("open", Level.YELLOW)


def test_below_threshold_without_incident_does_nothing():
    assert decide(_a(Level.NONE), None).action == "none"


@pytest.mark.parametrize(("current", "new", "action"), [
    (Level.YELLOW, Level.ORANGE, "raise"),
    (Level.ORANGE, Level.BLUE, "lower"),
    (Level.ORANGE, Level.ORANGE, "none"),
    (Level.ORANGE, Level.NONE, "none"),  # easing below every threshold does not close it
])
def test_level_follows_the_hazard(current, new, action):
    d = decide(_a(new), OpenIncident(7, current))
    assert d.action == action
    assert d.incident_id == 7


def test_lifecycle_allows_only_defined_transitions():
    assert transition("open", "dispatched") is Status.DISPATCHED
    assert transition(Status.DISPATCHED, Status.OPEN) is Status.OPEN  # a failed mission
    assert transition("closed", "open") is Status.OPEN  # reopen
    with pytest.raises(InvalidTransition, match="closed to dispatched"):
        transition("closed", "dispatched")
    with pytest.raises(ValueError):
        transition("open", "exploded")


# -- one incident per phenomenon ---------------------------------------------------------
from command.incidents import Member, aggregate_level, hysteresis, verification  # noqa: E402


def test_level_rises_at_once_and_lowers_only_after_holding() -> None:
    assert hysteresis(Level.YELLOW, Level.ORANGE, pending_since_s=None, now_s=0) == (Level.ORANGE, None)
    level, since = hysteresis(Level.ORANGE, Level.BLUE, pending_since_s=None, now_s=100.0)
    assert (level, since) == (Level.ORANGE, 100.0)
    assert hysteresis(Level.ORANGE, Level.BLUE, pending_since_s=since, now_s=1000.0) == (Level.ORANGE, 100.0)
    assert hysteresis(Level.ORANGE, Level.BLUE, pending_since_s=since, now_s=1900.0) == (Level.BLUE, None)
    # back up meanwhile: the pending lowering is forgotten
    assert hysteresis(Level.ORANGE, Level.ORANGE, pending_since_s=since, now_s=1000.0) == (Level.ORANGE, None)


def test_one_good_sensor_or_suspect_data_stays_unverified_two_confirm() -> None:
    one = {"a": Member("a", Level.YELLOW, "good", "rain_gauge")}
    assert verification(one)[0] == "unverified"
    faulty = {"a": Member("a", Level.RED, "suspect", "rain_gauge")}
    state, reason = verification(faulty)
    assert state == "unverified" and "only suspect data" in reason
    two = {**one, "b": Member("b", Level.BLUE, "good", "rain_gauge")}
    assert verification(two)[0] == "confirmed"
    spiky = {**one, "b": Member("b", Level.RED, "suspect", "rain_gauge")}
    assert verification(spiky)[0] == "unverified"
    assert aggregate_level(spiky) == Level.RED
