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
