"""Per-cell risk score (command.risk.score): INFORM's geometric form, monotonicity, levels, the "why"."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.risk.exposure import POPULATION, ROAD_LENGTH
from command.risk.grid import Grid, GridError
from command.risk.rules import Level
from command.risk.score import (
    DEFAULT_EXPOSURE_NORMS,
    ExposureNorm,
    LevelBreaks,
    ScoreError,
    ScoreParams,
    compute_risk,
    lack_of_coping_from_distance,
    normalise_exposure,
    union,
)

GRID = Grid(west_m=600_000.0, north_m=3_300_000.0, cell_m=30.0, nrows=4, ncols=5)
CELL_KM2 = 30.0 * 30.0 / 1e6


def layers(**kw: float | np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.broadcast_to(np.asarray(v, dtype=float), GRID.shape).copy() for k, v in kw.items()}


def exposure(pop: float | np.ndarray = 0.0, schools: float | np.ndarray = 0.0,
             road: float | np.ndarray = 0.0) -> dict[str, np.ndarray]:
    return layers(**{POPULATION: pop, "schools_count": schools, ROAD_LENGTH: road})


def test_inform_geometric_form_by_hand() -> None:
    # One hazard, population at the reference density (E = 1), V and L given: Risk = (H·E)^⅓ V^⅓ L^⅓.
    pop = 10_000.0 * CELL_KM2
    risk = compute_risk(GRID, layers(flood=0.6), exposure(pop=pop), vulnerability=0.5, lack_of_coping=0.8)
    assert risk.exposure[0, 0] == pytest.approx(1.0)
    assert risk.hazard[0, 0] == pytest.approx(0.6)
    assert risk.score[0, 0] == pytest.approx((0.6 * 1.0 * 0.5 * 0.8) ** (1 / 3), rel=1e-6)
    # Two hazards: probabilistic union.
    risk = compute_risk(GRID, layers(flood=0.5, landslide=0.5), exposure(pop=pop), vulnerability=1.0,
                        lack_of_coping=1.0)
    assert risk.hazard[0, 0] == pytest.approx(0.75)
    assert risk.score[0, 0] == pytest.approx(0.75 ** (1 / 3), rel=1e-6)


def test_no_exposure_no_risk() -> None:
    risk = compute_risk(GRID, layers(flood=1.0), exposure(), vulnerability=1.0, lack_of_coping=1.0)
    assert np.all(risk.score == 0.0) and np.all(risk.level == Level.NONE)


def test_exposure_normalisation() -> None:
    pop = DEFAULT_EXPOSURE_NORMS[POPULATION]
    assert pop(np.array([0.0]), 30.0)[0] == 0.0
    assert pop(np.array([10_000.0 * CELL_KM2]), 30.0)[0] == pytest.approx(1.0)
    assert pop(np.array([100.0 * CELL_KM2]), 30.0)[0] == pytest.approx(math.log10(101) / math.log10(10_001))
    assert pop(np.array([1e9]), 30.0)[0] == 1.0  # capped
    road = DEFAULT_EXPOSURE_NORMS[ROAD_LENGTH]
    assert road(np.array([15.0]), 30.0)[0] == pytest.approx(0.5)
    assert road(np.array([30.0]), 100.0)[0] == pytest.approx(0.3)
    assert ExposureNorm(ref=2.0)(np.array([1.0, 4.0]), 30.0).tolist() == [0.5, 1.0]
    with pytest.raises(ScoreError, match="≥ 0"):
        ExposureNorm(ref=1.0)(np.array([-1.0]), 30.0)
    with pytest.raises(ScoreError):
        ExposureNorm(ref=0.0)
    with pytest.raises(ScoreError, match="no normalisation"):
        normalise_exposure({"cows_count": np.zeros(3)}, cell_m=30.0)


def test_union() -> None:
    assert float(union({"a": np.array(0.2)}, {"a": 1.0})) == pytest.approx(0.2)
    assert float(union({"a": np.array(1.0), "b": np.array(0.3)}, {"a": 1.0, "b": 1.0})) == 1.0
    assert float(union({"a": np.array(1.0)}, {"a": 0.25})) == pytest.approx(0.25)  # weight caps the reach
    assert np.isnan(union({"a": np.array(np.nan), "b": np.array(0.3)}, {"a": 1.0, "b": 1.0}))
    with pytest.raises(ScoreError):
        union({}, {})


# --- monotone in every input ----------------------------------------------------------------------

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
positive_unit = st.floats(min_value=0.01, max_value=1.0, allow_nan=False)
count = st.floats(min_value=0.0, max_value=5_000.0, allow_nan=False)


def _score(h1: float, h2: float, pop: float, schools: float, road: float, v: float, lc: float) -> float:
    risk = compute_risk(GRID, layers(flood=h1, fire=h2), exposure(pop, schools, road), vulnerability=v,
                        lack_of_coping=lc)
    return float(risk.score[0, 0])


@settings(max_examples=150, deadline=None)
@given(unit, unit, count, st.floats(0.0, 3.0), st.floats(0.0, 100.0), positive_unit, positive_unit,
       st.integers(0, 6), st.floats(min_value=0.0, max_value=1.0))
def test_score_is_monotone_in_each_input(h1: float, h2: float, pop: float, schools: float, road: float, v: float,
                                         lc: float, which: int, bump: float) -> None:
    args = [h1, h2, pop, schools, road, v, lc]
    more = list(args)
    if which in (0, 1, 5, 6):  # 0..1 inputs
        more[which] = min(1.0, args[which] + bump)
    else:  # raw exposure counts
        more[which] = args[which] + bump * 1000.0
    before, after = _score(*args), _score(*more)
    assert 0.0 <= before <= 1.0
    assert after >= before - 1e-6, (which, args, more, before, after)


def test_score_strictly_rises_with_hazard_where_exposed() -> None:
    scores = [_score(h, 0.0, 5.0, 0.0, 0.0, 0.5, 0.5) for h in (0.1, 0.3, 0.6, 0.9)]
    assert scores == sorted(scores) and len(set(scores)) == 4


# --- levels -----------------------------------------------------------------------------------------


def test_level_breaks() -> None:
    b = LevelBreaks()
    s = np.array([0.0, 0.19, 0.2, 0.35, 0.49, 0.5, 0.65, 1.0, np.nan], dtype=np.float32)
    assert b.levels(s).tolist() == [0, 0, 1, 2, 2, 3, 4, 4, -1]
    assert b.level(0.55) is Level.ORANGE and b.level(math.nan) is Level.NONE
    custom = LevelBreaks.from_mapping({"red": 0.9, "ignored": 1})
    assert custom.red == 0.9 and custom.levels(np.array([0.8]))[0] == Level.ORANGE
    for bad in ({"blue": 0.0}, {"yellow": 0.1}, {"red": 1.5}):
        with pytest.raises(ScoreError, match="rise strictly"):
            LevelBreaks(**bad)


def test_levels_follow_the_breaks_in_the_map() -> None:
    pop = 10_000.0 * CELL_KM2
    h = np.linspace(0.0, 1.0, GRID.size).reshape(GRID.shape)
    risk = compute_risk(GRID, {"flood": h}, exposure(pop=pop), vulnerability=1.0, lack_of_coping=1.0)
    assert np.array_equal(risk.level, LevelBreaks().levels(risk.score))
    assert risk.level.max() == Level.RED and risk.level.min() == Level.NONE


# --- missing data, masks and bad input ----------------------------------------------------------------


def test_nan_propagates_to_the_cell_only() -> None:
    h = np.full(GRID.shape, 0.5)
    h[1, 2] = np.nan
    risk = compute_risk(GRID, {"flood": h, "fire": np.zeros(GRID.shape)}, exposure(pop=5.0),
                        vulnerability=0.5, lack_of_coping=0.5)
    assert np.isnan(risk.score[1, 2]) and risk.level[1, 2] == -1
    assert np.isfinite(np.delete(risk.score.ravel(), 1 * GRID.ncols + 2)).all()
    why = risk.why(1, 2)
    assert "flood" in why.no_data and math.isnan(why.score)


def test_outside_the_district_is_blank() -> None:
    inside = np.ones(GRID.shape, dtype=bool)
    inside[0, :] = False
    risk = compute_risk(GRID, layers(flood=0.9), exposure(pop=5.0), vulnerability=0.5, lack_of_coping=0.5,
                        inside=inside)
    assert np.all(np.isnan(risk.score[0])) and np.all(risk.level[0] == -1)
    assert np.all(risk.score[1:] > 0)


@pytest.mark.parametrize(("hazards", "match"), [
    ({}, "at least one hazard"),
    ({"flood": np.full((4, 5), 1.5)}, "within \\[0, 1\\]"),
    ({"flood": np.full((4, 5), -0.1)}, "within \\[0, 1\\]"),
])
def test_bad_hazards(hazards: dict[str, np.ndarray], match: str) -> None:
    with pytest.raises(ScoreError, match=match):
        compute_risk(GRID, hazards, exposure(), vulnerability=0.5, lack_of_coping=0.5)


def test_bad_inputs() -> None:
    with pytest.raises(GridError, match="shape"):
        compute_risk(GRID, {"flood": np.zeros((2, 2))}, exposure(), vulnerability=0.5, lack_of_coping=0.5)
    with pytest.raises(ScoreError, match="vulnerability"):
        compute_risk(GRID, layers(flood=0.1), exposure(), vulnerability=2.0, lack_of_coping=0.5)
    with pytest.raises(ScoreError, match="no weight for exposure layer"):
        compute_risk(GRID, layers(flood=0.1), layers(bridges_count=0, cows_count=1.0), vulnerability=0.5,
                     lack_of_coping=0.5,
                     params=ScoreParams.from_mapping({"exposure_norms": {"cows_count": {"ref": 1.0}}}))
    with pytest.raises(ScoreError, match="at least one exposure"):
        compute_risk(GRID, layers(flood=0.1), {}, vulnerability=0.5, lack_of_coping=0.5)
    with pytest.raises(ScoreError, match="dimension_weights"):
        ScoreParams(dimension_weights=(0.5, 0.5, 0.5))
    with pytest.raises(ScoreError, match="within \\[0, 1\\]"):
        ScoreParams.from_mapping({"hazard_weights": {"flood": 2.0}})


def test_params_from_mapping_merge_with_defaults() -> None:
    p = ScoreParams.from_mapping({"hazard_weights": {"fire": 0.5}, "exposure_weights": {ROAD_LENGTH: 0.3},
                                  "breaks": {"blue": 0.1}, "dimension_weights": [0.5, 0.25, 0.25]})
    assert p.hazard_weight("fire") == 0.5 and p.hazard_weight("flood") == 1.0
    assert p.exposure_weight(ROAD_LENGTH) == 0.3 and p.exposure_weight(POPULATION) == 1.0
    assert p.breaks.blue == 0.1 and p.breaks.red == 0.65
    risk = compute_risk(GRID, layers(flood=0.64), exposure(pop=10_000.0 * CELL_KM2), vulnerability=0.25,
                        lack_of_coping=1.0, params=p)
    assert risk.score[0, 0] == pytest.approx(0.64 ** 0.5 * 0.25 ** 0.25, rel=1e-6)


def test_lack_of_coping_from_distance() -> None:
    lc = lack_of_coping_from_distance(np.array([0.0, 2_500.0, 5_000.0, 50_000.0]))
    assert lc.tolist() == pytest.approx([0.2, 0.6, 1.0, 1.0])
    with pytest.raises(ScoreError):
        lack_of_coping_from_distance(np.array([-1.0]))
    with pytest.raises(ScoreError):
        lack_of_coping_from_distance(np.array([1.0]), floor=0.0)


# --- the why ---------------------------------------------------------------------------------------


def test_why_names_the_top_layers_and_shares_add_up() -> None:
    pop = np.zeros(GRID.shape)
    pop[2, 3] = 5_000.0 * CELL_KM2
    schools = np.zeros(GRID.shape)
    schools[2, 3] = 1.0
    risk = compute_risk(GRID, layers(flood=0.8, landslide=0.2, fire=0.0),
                        {POPULATION: pop, "schools_count": schools, ROAD_LENGTH: np.zeros(GRID.shape)},
                        vulnerability=0.5, lack_of_coping=0.7)
    why = risk.why(2, 3)
    assert why.top_hazard is not None and why.top_hazard.layer == "flood"
    assert why.top_hazard.value == pytest.approx(0.8)
    assert sum(c.share for c in why.hazards) == pytest.approx(1.0)
    assert [c.layer for c in why.hazards] == ["flood", "landslide", "fire"]
    assert why.hazards[-1].share == 0.0
    # Shares are the −ln(1 − x) terms: flood's is ln(0.2) / (ln(0.2) + ln(0.8)).
    assert why.hazards[0].share == pytest.approx(math.log(0.2) / (math.log(0.2) + math.log(0.8)), rel=1e-6)
    # A school in the cell saturates exposure: it is the top exposure layer, with its count.
    assert why.top_exposure is not None and why.top_exposure.layer == "schools_count"
    assert why.top_exposure.raw == 1.0
    assert sum(c.share for c in why.exposures) == pytest.approx(1.0)
    assert why.vulnerability == 0.5 and why.lack_of_coping == pytest.approx(0.7)
    assert why.level == risk.params.breaks.level(why.score)
    assert "flood 0.80" in why.describe() and "schools_count 1" in why.describe()


def test_why_of_a_region_sums_exposure_and_finds_the_peak() -> None:
    pop = np.arange(GRID.size, dtype=float).reshape(GRID.shape)
    h = np.full(GRID.shape, 0.5)
    h[3, 4] = 0.9
    risk = compute_risk(GRID, {"flood": h}, exposure(pop=pop), vulnerability=0.5, lack_of_coping=0.5)
    cells = np.array([0, 1, 18, 19])
    why = risk.why_cells(cells)
    assert why.n_cells == 4 and why.peak_cell == 19
    assert why.score == pytest.approx(float(risk.score.ravel()[19]))
    pop_c = next(c for c in why.exposures if c.layer == POPULATION)
    assert pop_c.raw == pytest.approx(0 + 1 + 18 + 19)
    assert why.hazards[0].value == pytest.approx(0.9)
    with pytest.raises(ScoreError, match="no cells"):
        risk.why_cells([])
    with pytest.raises(ScoreError, match="out of the grid"):
        risk.why_cells([GRID.size])
    with pytest.raises(ScoreError, match="off the"):
        risk.why(10, 0)


def test_with_hazards_equals_a_full_compute() -> None:
    rng = np.random.default_rng(5)
    g = Grid(west_m=600_000.0, north_m=3_300_000.0, cell_m=30.0, nrows=40, ncols=50)
    pop = rng.random(g.shape) * 20.0
    ex = {POPULATION: pop, ROAD_LENGTH: rng.random(g.shape) * 30.0}
    flood = rng.random(g.shape)
    fire = rng.random(g.shape)
    lcc = rng.uniform(0.2, 1.0, g.shape)
    before = compute_risk(g, {"flood": flood, "fire": fire}, ex, vulnerability=0.5, lack_of_coping=lcc)
    window = (slice(5, 22), slice(10, 45))
    flood2 = flood.copy()
    flood2[window] = rng.random((17, 35))
    after = before.with_hazards(window, {"flood": flood2[window]})
    full = compute_risk(g, {"flood": flood2, "fire": fire}, ex, vulnerability=0.5, lack_of_coping=lcc)
    assert np.array_equal(after.score, full.score) and np.array_equal(after.level, full.level)
    assert np.array_equal(after.hazard, full.hazard)
    assert np.array_equal(before.hazards["flood"], flood.astype(np.float32))  # the old map is untouched
    with pytest.raises(ScoreError, match="not in the map"):
        before.with_hazards(window, {"smoke": flood2[window]})
    with pytest.raises(ScoreError, match="shape"):
        before.with_hazards(window, {"flood": flood2})
