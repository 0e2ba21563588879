"""Generate the synthetic Yubei district folder (format: docs/district-folder.md).

SYNTHETIC: the geography is modelled on public facts (see the notice below and
``docs/district-folder.md``), with positions approximate to a few kilometres and terrain
made of Gaussian ridges and seeded noise. It is for demonstration and testing, not survey.

Deterministic: the same code and seed write the same bytes; running it again overwrites
the files in place.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from pyproj import Geod, Transformer
from scipy.ndimage import gaussian_filter
from shapely.geometry import LineString, MultiPoint, Point, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from sitl.scenarios.yubei.scripts import GAS_SUBSTANCE_ORDER, Sites, scenario_file

__all__ = ["NOTICE", "generate"]

NOTICE = "合成数据，仅供演示与测试 / Synthetic data for demonstration and testing, not survey"

BBOX = (106.45, 29.60, 106.95, 30.10)  # west, south, east, north (~ YUBEI.md)
CELL_DEG = 0.002  # terrain cell (~190 m E-W, ~220 m N-S at 30°N)
UTM_EPSG = 32648  # WGS84 / UTM 48N
_FWD = Transformer.from_crs(4326, UTM_EPSG, always_xy=True)
_INV = Transformer.from_crs(UTM_EPSG, 4326, always_xy=True)

# Jiangbei International Airport (ZUCK/CKG), aerodrome reference point and elevation (AIP).
AIRPORT_LONLAT = (106.6417, 29.7192)
AIRPORT_ELEV_M = 416.0
# Four runways, headings about 020-030°. Lateral offsets (m, + = east of the reference
# point, across the runway) are synthetic; lengths are the published ones.
RUNWAYS = (
    ("02L/20R", 20.0, -1500.0, 3200.0),
    ("02R/20L", 20.0, -400.0, 3600.0),
    ("03L/21R", 30.0, 900.0, 3800.0),
    ("03R/21L", 30.0, 2300.0, 3400.0),
)

# River centre lines (lon, lat), upstream to downstream. Cuntan gauge ~29.62°N 106.60°E.
YANGTZE = ((106.575, 29.585), (106.590, 29.605), (106.600, 29.620), (106.650, 29.628),
           (106.700, 29.640), (106.750, 29.650), (106.800, 29.668), (106.850, 29.690),
           (106.890, 29.708), (106.930, 29.728), (106.970, 29.750))
YANGTZE_HALF_WIDTH_M = 350.0
# Low-water surface near Cuntan (synthetic). The synthetic terrain is drawn in the gauges' own
# numbers (the Cuntan gauge's Wusong levels and the Yulin gauge's Huanghai levels both read
# directly against it), so each gauge's terrain_offset_m is 0; a real district states the
# offset between a gauge's datum and its DEM's (Wusong and Huanghai 1985 differ by a metre or
# two along the upper Yangtze, by a figure that differs from station to station).
YANGTZE_SURFACE_M = 172.0
YULIN = ((106.920, 30.110), (106.880, 30.050), (106.840, 29.990), (106.817, 29.940),
         (106.810, 29.880), (106.820, 29.820), (106.835, 29.760), (106.850, 29.720),
         (106.862, 29.6954))  # ends on the Yangtze centre line
YULIN_HALF_WIDTH_M = 60.0
YULIN_SOURCE_M, YULIN_MOUTH_M = 202.0, 176.0
# A second Yulin gauge below Tongjing, halfway down the river line (14.8 km above the Longxing
# gauge at 0.80): the Longxing gauge's forecast routes its levels down the reach (Muskingum,
# command.risk.flood). K ≈ the reach's length over the flood wave's celerity (14.8 km at about
# 1.6 m/s ≈ 2.5 h); X = 0.2, the usual value for natural streams (Chow, Maidment & Mays 1988,
# Applied Hydrology, §8.4: 0 to 0.3, about 0.2 on average). Synthetic ratings Q = a·(h − h0)^b:
# zero flow 1.5 m (Longxing) and 1.2 m (upper) below low water, b near the 5/3 of a wide channel
# under Manning's equation, 35 m³/s at low water upstream and 5 m³/s from the side streams between.
YULIN_UPPER_AT = 0.50
YULIN_REACH_K_H, YULIN_REACH_X, YULIN_LATERAL_M3S = 2.5, 0.2, 5.0
YULIN_RATINGS = {"rating": (1.5, 1.6, 40.0), "upstream_rating": (1.2, 1.5, 35.0)}  # depth m, b, Q m³/s at low water

# Ridge axes (lon, lat) south to north, crest mean and amplitude (m AMSL).
RIDGES = (
    ("tongluo", "Tongluo Shan", "铜锣山", ((106.67, 29.58), (106.81, 30.12)), 760.0, 80.0, 0.3),
    ("mingyue", "Mingyue Shan", "明月山", ((106.86, 29.60), (107.00, 30.12)), 820.0, 70.0, 1.7),
)
RIDGE_SIGMA_M = 1300.0
# The ridges are forested (forest parks on Tongluo Shan and Mingyue Shan, YUBEI.md); the
# synthetic forest is each ridge's crest band, the axis buffered by 2 sigmas of its profile.
FOREST_HALF_WIDTH_M = 2.0 * RIDGE_SIGMA_M

BOUNDARY_WEST_NORTH = ((106.945, 29.745), (106.950, 29.800), (106.945, 29.880), (106.950, 29.960),
                       (106.935, 30.040), (106.900, 30.085), (106.840, 30.095), (106.760, 30.090),
                       (106.690, 30.075), (106.630, 30.050), (106.580, 30.010), (106.530, 29.950),
                       (106.490, 29.880), (106.460, 29.800), (106.455, 29.730), (106.470, 29.670),
                       (106.510, 29.640), (106.560, 29.630))

TOWNS = (  # id, name, name_zh, lon, lat, population (synthetic round numbers)
    ("lianglu", "Lianglu", "两路", 106.605, 29.712, 280000),
    ("huixing", "Huixing", "回兴", 106.590, 29.675, 200000),
    ("xiantao", "Xiantao", "仙桃", 106.545, 29.695, 120000),
    ("lijia", "Lijia", "礼嘉", 106.530, 29.655, 150000),
    ("wangjia", "Wangjia", "王家", 106.600, 29.800, 60000),
    ("gulu", "Gulu", "古路", 106.660, 29.925, 30000),
    ("dawan", "Dawan", "大湾", 106.615, 29.985, 28000),
    ("cizhu", "Cizhu", "茨竹", 106.700, 30.050, 26000),
    ("shichuan", "Shichuan", "石船", 106.725, 29.885, 32000),
    ("xinglong", "Xinglong", "兴隆", 106.808, 29.985, 30000),
    ("muer", "Muer", "木耳", 106.765, 29.835, 40000),
    ("yufengshan", "Yufengshan", "玉峰山", 106.735, 29.735, 35000),
    ("longxing", "Longxing", "龙兴", 106.790, 29.775, 50000),
    ("tongjing", "Tongjing", "统景", 106.830, 29.945, 25000),
    ("luoqi", "Luoqi", "洛碛", 106.840, 29.703, 45000),
)
HOSPITALS = (
    ("hosp-yubei-people", "Yubei District People's Hospital", "渝北区人民医院", 106.610, 29.718),
    ("hosp-yubei-tcm", "Yubei District Hospital of TCM", "渝北区中医院", 106.595, 29.700),
    ("hosp-longxing", "Longxing Health Centre", "龙兴镇卫生院", 106.792, 29.771),
    ("hosp-tongjing", "Tongjing Central Health Centre", "统景镇中心卫生院", 106.833, 29.941),
    ("hosp-luoqi", "Luoqi Central Health Centre", "洛碛镇中心卫生院", 106.842, 29.707),
)
SCHOOLS = (
    ("school-yubei", "Yubei Middle School", "渝北中学", 106.600, 29.722),
    ("school-longxing", "Longxing Middle School", "龙兴中学", 106.786, 29.779),
    ("school-tongjing", "Tongjing Middle School", "统景中学", 106.826, 29.950),
    ("school-luoqi", "Luoqi Middle School", "洛碛中学", 106.846, 29.711),
    ("school-muer", "Muer Middle School", "木耳中学", 106.761, 29.838),
)
FIRE_STATIONS = (
    ("fire-lianglu", "Lianglu Fire and Rescue Station", "两路消防救援站", 106.598, 29.716),
    ("fire-xiantao", "Xiantao Fire and Rescue Station", "仙桃消防救援站", 106.550, 29.690),
    ("fire-longxing", "Longxing Fire and Rescue Station", "龙兴消防救援站", 106.798, 29.779),
    ("fire-luoqi", "Luoqi Fire and Rescue Station", "洛碛消防救援站", 106.836, 29.707),
    ("fire-tongjing", "Tongjing Fire and Rescue Station", "统景消防救援站", 106.826, 29.938),
)
# Fleet: four copters at drone bases on river floodplains (a straight recon leg at one
# height must stay within 120 m of the ground), one boat on the Yangtze centre line and one
# on the Yulin River above Longxing (the river that floods the town in the summer scenario).
COPTER_BASES = (
    ("UAV-1", "base-luoqi", "Luoqi drone base", "洛碛无人机基地", 106.857, 29.712),
    ("UAV-2", "base-longxing", "Longxing drone base", "龙兴无人机基地", 106.836, 29.772),
    ("UAV-3", "base-tongjing", "Tongjing drone base", "统景无人机基地", 106.822, 29.930),
    ("UAV-4", "base-muer", "Muer drone base", "木耳无人机基地", 106.803, 29.850),
)
# 45 min from full to empty: a mid-size industrial multirotor with a camera payload (the DJI M300
# RTK class is rated 55 min without payload); the fleet file's figure, for planning and the simulator.
COPTER_ENDURANCE_S = 2700.0
# What each vehicle carries (command.dispatch.tasks.PAYLOADS): every copter a zoom and a
# thermal camera; the Luoqi one, next to the chemical plant, a gas sensor; loudspeakers for
# evacuation broadcasts; the boat an echosounder and a water sampler.
PAYLOADS_OF = {
    "UAV-1": ("zoom_camera", "thermal_camera", "gas_sensor", "light"),
    "UAV-2": ("zoom_camera", "thermal_camera", "loudspeaker", "light"),
    "UAV-3": ("zoom_camera", "thermal_camera", "loudspeaker", "drop_kit"),
    "UAV-4": ("zoom_camera", "thermal_camera", "loudspeaker", "light"),
    "USV-1": ("zoom_camera", "echosounder", "water_sampler"),
    "USV-2": ("zoom_camera", "echosounder", "loudspeaker"),
}
BOAT_BASE = ("USV-1", "base-luoqi-boat", "Luoqi boat base", "洛碛无人船基地", 106.845)  # lon; lat on the river
# The Yulin boat: its base on the river centre line, as a share of the line's length from the
# source (the Longxing gauge stands at 0.80, the base about 2 km above it).
YULIN_BOAT_BASE = ("USV-2", "base-longxing-boat", "Longxing boat base", "龙兴无人船基地", 0.76)
# 4 h from full to empty at cruise: a 1.5-2 m electric survey catamaran carries 3-6 h (our figure,
# at the low end with a camera and echosounder running).
BOAT_ENDURANCE_S = 14400.0
# Height of a boat above the water (mast, antennas): a bridge lower than this plus a margin is
# an obstacle. A 1.6 m survey catamaran with its GNSS mast, our figure.
BOAT_AIR_DRAFT_M = 1.6
# Bridges: every road crossing a river, with the height of its underside above the low-water
# surface (synthetic round figures: expressway bridges stand high, town road bridges lower),
# and an old low stone bridge over the Yulin above Tongjing, which a flood closes to boats.
BRIDGE_CLEARANCE_M = {"expressway": 18.0, "arterial": 9.0}
LOW_BRIDGES = (  # id, name, name_zh, river, share of the river line from its source, clearance m
    ("bridge-tongjing-old", "Tongjing old stone bridge (synthetic)", "统景老石桥（合成）", "yulin", 0.42, 3.2),
)

# Who the department tasks of a hazard name (command/linkage): nursing homes, shelters with their
# capacity, drinking-water intakes, ambulance (120) stations. Synthetic places and figures.
NURSING_HOMES = (  # id, name, name_zh, lon, lat, residents
    ("care-longxing", "Longxing Elderly Care Home", "龙兴敬老院", 106.796, 29.768, 120),
    ("care-luoqi", "Luoqi Elderly Care Home", "洛碛敬老院", 106.850, 29.714, 90),
    ("care-lianglu", "Lianglu Social Welfare Home", "两路社会福利院", 106.612, 29.722, 300),
)
SHELTERS = (  # id, name, name_zh, lon, lat, capacity (people)
    ("shelter-longxing-school", "Longxing Middle School shelter", "龙兴中学避难场所", 106.784, 29.782, 1500),
    ("shelter-longxing-park", "Longxing Central Park shelter", "龙兴中心公园避难场所", 106.776, 29.772, 4000),
    ("shelter-luoqi", "Luoqi Town Square shelter", "洛碛镇广场避难场所", 106.838, 29.716, 2000),
    ("shelter-tongjing", "Tongjing Town Gymnasium shelter", "统景镇体育馆避难场所", 106.822, 29.948, 1200),
    ("shelter-lianglu", "Lianglu Sports Centre shelter", "两路体育中心避难场所", 106.600, 29.728, 8000),
)
WATER_INTAKES = (  # id, name, name_zh, river, share of the river line from its source
    ("intake-yulin-longxing", "Longxing waterworks intake (Yulin River)", "龙兴水厂取水口（御临河）", "yulin", 0.83),
    ("intake-yangtze-luoqi", "Luoqi waterworks intake (Yangtze)", "洛碛水厂取水口（长江）", "yangtze", 0.70),
)
AMBULANCE_STATIONS = (  # 120 emergency medical stations: id, name, name_zh, lon, lat
    ("amb-lianglu", "Lianglu 120 station", "两路120急救站", 106.606, 29.716),
    ("amb-longxing", "Longxing 120 station", "龙兴120急救站", 106.770, 29.786),
    ("amb-luoqi", "Luoqi 120 station", "洛碛120急救站", 106.830, 29.720),
)
# Crews and department units (assets besides the fleet, command/district.py Crew), at their stations:
# id, name, name_zh, department, kind (crew: people on foot or in a car; unit: a vehicle with its
# crew), type, the facility they start from, people. Synthetic.
CREWS = (
    ("crew-luoqi-water", "Luoqi water rescue squad", "洛碛水域救援分队", "fire", "crew", "water_rescue",
     "fire-luoqi", 8),
    ("crew-longxing-water", "Longxing water rescue squad", "龙兴水域救援分队", "fire", "crew", "water_rescue",
     "fire-longxing", 8),
    ("crew-tongjing-forest", "Tongjing forest fire squad", "统景森林灭火分队", "fire", "crew", "forest_fire",
     "fire-tongjing", 12),
    ("crew-lianglu-rescue", "Lianglu search and rescue squad", "两路搜救分队", "fire", "crew", "search_and_rescue",
     "fire-lianglu", 10),
    ("unit-amb-longxing", "Longxing ambulance 1", "龙兴120救护车1", "health", "unit", "ambulance", "amb-longxing", 3),
    ("unit-amb-luoqi", "Luoqi ambulance 1", "洛碛120救护车1", "health", "unit", "ambulance", "amb-luoqi", 3),
    ("unit-traffic-longxing", "Longxing traffic police patrol", "龙兴交巡警巡逻车", "traffic", "unit", "traffic_police",
     "town-longxing", 2),
    ("crew-longxing-township", "Longxing township emergency team", "龙兴镇应急分队", "emergency", "crew",
     "township_team", "town-longxing", 15),
)
# Towns below are township-level units: street offices (街道) in the urban west, towns (镇) elsewhere.
STREETS = frozenset({"lianglu", "huixing", "xiantao", "lijia", "wangjia"})

RAIN_GAUGES = (  # id, name, name_zh, lon, lat
    ("rain-lianglu", "Lianglu rain gauge", "两路雨量站", 106.612, 29.708),
    ("rain-xiantao", "Xiantao rain gauge", "仙桃雨量站", 106.548, 29.700),
    ("rain-wangjia", "Wangjia rain gauge", "王家雨量站", 106.603, 29.805),
    ("rain-gulu", "Gulu rain gauge", "古路雨量站", 106.663, 29.920),
    ("rain-cizhu", "Cizhu rain gauge", "茨竹雨量站", 106.705, 30.045),
    ("rain-muer", "Muer rain gauge", "木耳雨量站", 106.768, 29.830),
    ("rain-longxing", "Longxing rain gauge", "龙兴雨量站", 106.785, 29.770),
    ("rain-tongjing", "Tongjing rain gauge", "统景雨量站", 106.835, 29.950),
    ("rain-luoqi", "Luoqi rain gauge", "洛碛雨量站", 106.848, 29.712),
)

ROADS = (  # id, name, name_zh, class, line
    ("g65", "G65 Baotou-Maoming Expressway", "G65包茂高速", "expressway",
     ((106.580, 30.100), (106.600, 29.950), (106.620, 29.850), (106.612, 29.760), (106.598, 29.680),
      (106.580, 29.600))),
    ("g5001", "G5001 Chongqing Ring Expressway", "G5001重庆绕城高速", "expressway",
     ((106.450, 29.780), (106.550, 29.800), (106.660, 29.810), (106.740, 29.760), (106.770, 29.680),
      (106.780, 29.620))),
    ("g50", "G50 Shanghai-Chongqing Expressway", "G50沪渝高速", "expressway",
     ((106.620, 29.700), (106.700, 29.730), (106.780, 29.760), (106.860, 29.800), (106.950, 29.840))),
    ("airport-rd", "Airport Road", "机场路", "arterial",
     ((106.550, 29.620), (106.580, 29.660), (106.600, 29.695), (106.615, 29.710))),
    ("jinkai-ave", "Jinkai Avenue", "金开大道", "arterial",
     ((106.480, 29.640), (106.530, 29.660), (106.570, 29.672), (106.600, 29.685))),
    ("longxing-ave", "Longxing Avenue", "龙兴大道", "arterial",
     ((106.700, 29.735), (106.745, 29.755), (106.790, 29.775))),
    ("tongjing-rd", "Tongjing Road", "统景路", "arterial",
     ((106.790, 29.780), (106.800, 29.860), (106.826, 29.940))),
)

DEPARTMENTS = (
    ("emergency", "District Emergency Management Bureau", "区应急管理局"),
    ("fire", "District Fire and Rescue Brigade", "区消防救援支队"),
    ("traffic", "Transport Bureau / Traffic Police", "区交通局 / 公安交巡警"),
    ("health", "District Health Commission", "区卫生健康委"),
    ("ecology", "Ecology and Environment Bureau", "区生态环境局"),
    ("city", "City Management Bureau", "区城管局"),
    ("police", "Public Security Sub-bureau", "区公安分局"),
    ("bigdata", "Big Data Development Bureau", "区大数据发展局"),
    ("water", "Water Resources Bureau", "区水利局"),
    ("natural", "Planning and Natural Resources Bureau", "区规划自然资源局"),
    ("meteo", "Meteorological Bureau", "区气象局"),
)
# Synthetic people for the rosters: a head and three duty officers per department.
SURNAMES = (("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
            ("Zhao", "赵"), ("Huang", "黄"), ("Zhou", "周"), ("Wu", "吴"), ("Xu", "徐"), ("Sun", "孙"))
GIVEN = (("Wei", "伟"), ("Fang", "芳"), ("Min", "敏"), ("Jing", "静"), ("Lei", "磊"), ("Qiang", "强"),
         ("Yan", "艳"), ("Jun", "军"), ("Yong", "勇"), ("Jie", "杰"), ("Tao", "涛"), ("Ming", "明"), ("Hua", "华"))

# Hazard sites of the risk core (all synthetic; docs/district-folder.md, docs/scenarios.md).
# Weather stations: (id, name, name_zh, lon, lat); the ridge one stands at the Tongluo Shan
# weather and fire station (facility wx-tongluo), the valley ones near Muer and Luoqi.
WEATHER_STATIONS = (
    ("wx-tongluo-ridge", "Tongluo Shan ridge weather station", "铜锣山山脊气象站", None, None),
    ("wx-muer-valley", "Muer valley weather station (synthetic)", "木耳河谷气象站（合成）", 106.770, 29.842),
    ("wx-luoqi-valley", "Luoqi valley weather station (synthetic)", "洛碛河谷气象站（合成）", 106.862, 29.718),
)
# The monitored slope (facility slope-yufengshan) and its instruments: offsets (m) from the
# facility point, + east / + north. The slope faces west-north-west, down to a village at its foot.
SLOPE_ID = "slope-yufengshan"
VILLAGE = ("village-shanjiao", "Shanjiao village (synthetic)", "山脚村（合成）", 1500.0, 650)  # m down the fall line
SLOPE_SENSORS = (  # id, kind, name, name_zh, east_m, north_m, interval_s, share of the slope's movement
    ("gnss-yufengshan-1", "gnss_displacement", "Yufengshan slope GNSS 1, crown", "玉峰山边坡坡顶GNSS 1",
     180.0, 40.0, 600, 1.0),
    ("gnss-yufengshan-2", "gnss_displacement", "Yufengshan slope GNSS 2, middle", "玉峰山边坡坡中GNSS 2",
     0.0, 0.0, 600, 0.85),
    ("gnss-yufengshan-3", "gnss_displacement", "Yufengshan slope GNSS 3, toe", "玉峰山边坡坡脚GNSS 3",
     -220.0, -30.0, 600, 0.6),
    ("crack-yufengshan-1", "crack_meter", "Yufengshan slope crown crack meter", "玉峰山边坡后缘裂缝计",
     230.0, 10.0, 600, 0.8),
    ("incl-yufengshan-1", "inclinometer", "Yufengshan slope inclinometer", "玉峰山边坡倾角计", 40.0, 60.0, 600, None),
    ("soil-yufengshan-1", "soil_moisture", "Yufengshan slope soil moisture", "玉峰山边坡土壤含水率", 20.0, -50.0, 600,
     None),
    ("rain-yufengshan-slope", "rain_gauge", "Yufengshan slope tipping-bucket rain gauge", "玉峰山边坡翻斗雨量计",
     260.0, 60.0, 300, None),
)
SLOPE_WARNING_STATION = "gnss-yufengshan-1"
SLOPE_V0_MM_PER_DAY = 20.0  # the slope's constant-velocity-stage rate (Xu et al. 2009 v0), synthetic
# a sandy clay's total porosity, 0.43 (Rawls, Brakensiek & Saxton 1982, Trans. ASAE 25), rounded down
SOIL_SATURATION_PCT = 42.0
# Forest fire on Tongluo Shan: ignition point on the west flank, detectors around it
# (offsets in m from it), the fire-watch camera at the ridge station's tower. Smoke alarms at
# 3 %/m obscuration, within EN 54-7's sensitivity band (about 1.6-12 %/m).
FIRE_IGNITION = (29.874, -300.0)  # latitude, offset from the ridge axis (m, + east)
FIRE_SENSORS = (  # id, kind, name, name_zh, east_m, north_m, thresholds
    ("smoke-tongluo-1", "smoke_detector", "Tongluo Shan smoke detector 1", "铜锣山林区烟感 1", 250.0, 300.0,
     {"alarm_pct_per_m": 3.0}),
    ("smoke-tongluo-2", "smoke_detector", "Tongluo Shan smoke detector 2", "铜锣山林区烟感 2", 500.0, 750.0,
     {"alarm_pct_per_m": 3.0}),
    ("flame-tongluo-1", "flame_sensor", "Tongluo Shan flame sensor", "铜锣山林区火焰探测器", 0.0, 120.0,
     {"alarm_c": 60.0}),  # within the static response of an EN 54-5 class A1 heat detector (54-65 °C)
)
CAMERA = ("cam-tongluo-1", "Tongluo Shan fire-watch camera", "铜锣山林火监测摄像机", {"min_confidence": 0.5})
# A riverside hazardous-chemical plant on the Yangtze's north bank east of Luoqi, with a
# four-gas detector at each side of its fence (offsets in m from its centre).
CHEMICAL_SITE = ("chem-luoqi", "Luoqi riverside chemical plant (synthetic)", "洛碛沿江化工厂（合成）",
                 106.872, 29.7085, ("nh3", "cl2", "h2s", "voc"))
GAS_DETECTORS = (("n", "north", "北", 0.0, 150.0), ("e", "east", "东", 160.0, 0.0),
                 ("s", "south", "南", 0.0, -120.0), ("w", "west", "西", -160.0, 0.0))


# --- helpers ---------------------------------------------------------------------------------


def _to_utm(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda c: np.column_stack(_FWD.transform(c[:, 0], c[:, 1])))


def _to_lonlat(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda c: np.column_stack(_INV.transform(c[:, 0], c[:, 1])))


def _round(geom: BaseGeometry) -> BaseGeometry:
    """Six decimals of a degree (~0.1 m): enough, and stable text."""
    return shapely.set_precision(geom, 1e-6)


def _feature(geom: BaseGeometry | dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    g = geom if isinstance(geom, dict) else mapping(geom)
    return {"type": "Feature", "properties": props, "geometry": _plain(g)}


def _plain(obj: Any) -> Any:
    """Tuples to lists, floats rounded to 6 decimals (stable JSON)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 6)
    return obj


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}


def _write_text(path: Path, text: str) -> None:
    """Write only when the content differs (idempotent), through a temporary file."""
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_geojson(path: Path, features: Iterable[dict[str, Any]]) -> None:
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    _write_text(path, '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n")


def _write_yaml(path: Path, data: Any, header: str = "") -> None:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    _write_text(path, header + body)


def _interp_line(line: Sequence[tuple[float, float]], lon: float) -> tuple[float, float]:
    """The point of a west-to-east polyline at a given longitude."""
    for (x0, y0), (x1, y1) in zip(line, line[1:]):
        if min(x0, x1) <= lon <= max(x0, x1) and x0 != x1:
            return lon, y0 + (y1 - y0) * (lon - x0) / (x1 - x0)
    raise ValueError(f"longitude {lon} not on the line")


def _offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m``, ``north_m`` metres from (lon, lat) in the UTM grid."""
    x, y = _FWD.transform(lon, lat)
    return tuple(round(v, 6) for v in _INV.transform(x + east_m, y + north_m))  # type: ignore[return-value]


def _axis_point(axis: Sequence[tuple[float, float]], lat: float, offset_m: float = 0.0) -> tuple[float, float]:
    """The ridge axis at a latitude, moved ``offset_m`` east (negative: west)."""
    (x0, y0), (x1, y1) = axis
    lon = x0 + (x1 - x0) * (lat - y0) / (y1 - y0)
    x, y = _FWD.transform(lon, lat)
    return tuple(round(v, 6) for v in _INV.transform(x + offset_m, y))  # type: ignore[return-value]


# --- parts -----------------------------------------------------------------------------------


def _runway_ends() -> tuple[np.ndarray, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]:
    """Airport reference point (UTM) and each runway: (name, south end, north end, unit vector north)."""
    cx, cy = _FWD.transform(*AIRPORT_LONLAT)
    centre = np.array([cx, cy])
    out = []
    for name, hdg, off, length in RUNWAYS:
        # Headings are true bearings; UTM grid convergence here is < 1°, ignored.
        h = math.radians(hdg)
        u = np.array([math.sin(h), math.cos(h)])  # along the runway, towards the north end
        p = np.array([math.cos(h), -math.sin(h)])  # across, towards the east
        c = centre + off * p
        out.append((name, c - u * length / 2, c + u * length / 2, u))
    return centre, out


def _airspace() -> list[dict[str, Any]]:
    centre, runways = _runway_ends()
    ends = [e for _, s, n, _ in runways for e in (s, n)]
    source = ("Synthetic, after the common drone geofence model around airports "
              "(docs/district-folder.md, 'Airspace'); not the official restricted area")
    core = MultiPoint([tuple(e) for e in ends]).convex_hull.buffer(1000.0, quad_segs=8)
    zone30 = shapely.union_all([Point(*e).buffer(7000.0, quad_segs=16) for e in ends])
    # 60 m zone: trapezoids off each runway end, shaped like the ICAO Annex 14 approach
    # surface (inner edge 300 m wide at the runway end, 15 % splay each side, 15,000 m long).
    north, south = [], []
    for _, s, n, u in runways:
        p = np.array([u[1], -u[0]])
        for end, v, bucket in ((n, u, north), (s, -u, south)):
            far = end + 15000.0 * v
            half_far = 150.0 + 0.15 * 15000.0
            bucket.append(Polygon([tuple(end + 150.0 * p), tuple(far + half_far * p),
                                   tuple(far - half_far * p), tuple(end - 150.0 * p)]))
    zone120 = Point(*centre).buffer(10000.0, quad_segs=16)
    zones = [
        ("ckg-core", "Jiangbei airport no-fly core", "江北机场禁飞核心区", "prohibited", None, core),
        ("ckg-30m", "Airport 30 m zone", "机场限高30米区", "height_limited", 30.0, zone30),
        ("ckg-60m-north", "Airport 60 m zone (north approaches)", "机场进近限高60米区（北）", "height_limited",
         60.0, shapely.union_all(north)),
        ("ckg-60m-south", "Airport 60 m zone (south approaches)", "机场进近限高60米区（南）", "height_limited",
         60.0, shapely.union_all(south)),
        ("ckg-120m", "Airport 120 m zone", "机场限高120米区", "height_limited", 120.0, zone120),
        # the airport and its surroundings are controlled airspace (Interim Regulations 2024, art. 19):
        # here the whole geofence area; a flight there needs an approval from air traffic management
        ("ckg-control", "Jiangbei airport controlled airspace", "江北机场管制空域", "controlled", None,
         shapely.union_all([zone30, zone120, *north, *south])),
    ]
    feats = []
    for zid, name, name_zh, kind, ceiling, geom in zones:
        props: dict[str, Any] = {"id": zid, "name": name, "name_zh": name_zh, "kind": kind}
        if ceiling is not None:
            props["ceiling_agl_m"] = ceiling
        props["source"] = source
        feats.append(_feature(_round(_to_lonlat(geom)), props))
    return feats


def _water() -> tuple[BaseGeometry, BaseGeometry, BaseGeometry, BaseGeometry]:
    """(Yangtze line, Yangtze water, Yulin line, Yulin water) in UTM metres."""
    yz = _to_utm(LineString(YANGTZE))
    yl = _to_utm(LineString(YULIN))
    yz_w = yz.buffer(YANGTZE_HALF_WIDTH_M, quad_segs=4)
    yl_w = yl.buffer(YULIN_HALF_WIDTH_M, quad_segs=4)
    # The Yulin river ends at the Yangtze bank; its water joins the Yangtze water.
    return yz, yz_w, yl, yl_w


def _departments() -> list[dict[str, Any]]:
    """Each department: a head, three duty officers, a weekly roster (weekday days, every night, weekend
    days; deputy: the second officer) and MQTT delivery. Names are synthetic, drawn in turn."""
    out = []
    k = 0
    for dept_id, name, name_zh in DEPARTMENTS:
        people = []
        for role in ("head", "duty", "duty", "duty"):
            (sur, sur_zh), (giv, giv_zh) = SURNAMES[k % len(SURNAMES)], GIVEN[(k * 5) % len(GIVEN)]
            k += 1
            people.append({"id": f"{dept_id}-{sur.lower()}-{giv.lower()}", "name": f"{sur} {giv}",
                           "name_zh": f"{sur_zh}{giv_zh}", "phone": f"+86 23 6700 {k:04d}", "roles": [role]})
        head, a, b, c = people
        out.append({
            "id": dept_id, "name": name, "name_zh": name_zh, "head": head, "members": [a, b, c],
            "roster": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:30", "to": "17:30", "on_duty": a["id"],
                 "deputy": b["id"]},
                {"days": ["sat", "sun"], "from": "08:30", "to": "17:30", "on_duty": c["id"], "deputy": b["id"]},
                {"days": "all", "from": "17:30", "to": "08:30", "on_duty": b["id"], "deputy": a["id"]},
            ],
            "channels": {"mqtt": True}})
    return out


def _yulin_surface(share: float) -> float:
    """The Yulin's low-water surface (m AMSL) at a share of its line from the source (linear fall)."""
    return round(YULIN_SOURCE_M + (YULIN_MOUTH_M - YULIN_SOURCE_M) * share, 1)


def _bridges(yz: BaseGeometry, yl: BaseGeometry) -> list[dict[str, Any]]:
    """A line across the water at every road crossing of a river and at each low bridge."""
    rivers = {"yangtze": (yz, YANGTZE_HALF_WIDTH_M), "yulin": (yl, YULIN_HALF_WIDTH_M)}
    spans: list[tuple[str, str, str, str | None, str, float, float]] = []  # id, names, road, river, share, clearance
    for rid, name, name_zh, cls, line in ROADS:
        road = _to_utm(LineString(line))
        for river, (axis, _) in rivers.items():
            for p in shapely.get_parts(road.intersection(axis)):
                if p.geom_type == "Point":
                    spans.append((f"bridge-{rid}-{river}", f"{name} bridge over the {river.capitalize()}",
                                  f"{name_zh}{'长江' if river == 'yangtze' else '御临河'}大桥", rid, river,
                                  axis.project(p, normalized=True), BRIDGE_CLEARANCE_M[cls]))
    for bid, name, name_zh, river, at, clearance in LOW_BRIDGES:
        spans.append((bid, name, name_zh, None, river, at, clearance))
    out = []
    for bid, name, name_zh, road_id, river, at, clearance in spans:
        axis, half = rivers[river]
        c = axis.interpolate(at, normalized=True)
        a, b = axis.interpolate(max(at - 0.002, 0.0), normalized=True), axis.interpolate(min(at + 0.002, 1.0),
                                                                                           normalized=True)
        tx, ty = b.x - a.x, b.y - a.y
        norm = math.hypot(tx, ty)
        nx, ny = -ty / norm, tx / norm  # across the river
        reach = half + 80.0  # from bank to bank and onto the land either side
        span = LineString([(c.x - nx * reach, c.y - ny * reach), (c.x + nx * reach, c.y + ny * reach)])
        surface = YANGTZE_SURFACE_M if river == "yangtze" else _yulin_surface(at)
        props: dict[str, Any] = {"id": bid, "name": name, "name_zh": name_zh, "river": river,
                                 "underside_amsl_m": round(surface + clearance, 1), "clearance_m": clearance}
        if road_id is not None:
            props["road"] = road_id
        out.append(_feature(_round(_to_lonlat(span)), props))
    return out


def _townships(boundary: Polygon) -> list[dict[str, Any]]:
    """Township-level areas: the Voronoi cells of the town seats, cut to the district (synthetic outlines)."""
    seats = MultiPoint([(lon, lat) for _, _, _, lon, lat, _ in TOWNS])
    cells = shapely.voronoi_polygons(_to_utm(seats), extend_to=_to_utm(boundary).buffer(5000.0))
    area = _to_utm(boundary)
    out = []
    for tid, name, name_zh, lon, lat, pop in TOWNS:
        seat = _to_utm(Point(lon, lat))
        cell = next(c for c in shapely.get_parts(cells) if c.contains(seat))
        street = tid in STREETS
        out.append(_feature(_round(_to_lonlat(cell.intersection(area))), {
            "id": f"twp-{tid}", "kind": "street" if street else "town", "seat": f"town-{tid}",
            "name": f"{name} {'Street' if street else 'Town'}", "name_zh": f"{name_zh}{'街道' if street else '镇'}",
            "population": pop}))
    return out


def _terrain(seed: int) -> tuple[np.ndarray, float, float]:
    """Elevation grid (m AMSL, rows south to north) on cell centres from the bbox corner."""
    w, s, e, n = BBOX
    ncols = round((e - w) / CELL_DEG) + 1
    nrows = round((n - s) / CELL_DEG) + 1
    lons = w + CELL_DEG * np.arange(ncols)
    lats = s + CELL_DEG * np.arange(nrows)
    glon, glat = np.meshgrid(lons, lats)
    gx, gy = _FWD.transform(glon, glat)
    pts = shapely.points(gx, gy)

    rng = np.random.default_rng(seed)
    broad = gaussian_filter(rng.standard_normal((nrows, ncols)), sigma=10.0, mode="reflect")
    fine = gaussian_filter(rng.standard_normal((nrows, ncols)), sigma=2.0, mode="reflect")
    broad /= broad.std()
    fine /= fine.std()
    # Valley floors ~250-400 m, rising gently to the north.
    z = 300.0 + 40.0 * broad + 8.0 * fine + 50.0 * (glat - s) / (n - s)
    z = np.maximum(z, 240.0)

    for _, _, _, axis, crest_m, amp_m, phase in RIDGES:
        a = np.array(_FWD.transform(*axis[0]))
        b = np.array(_FWD.transform(*axis[1]))
        ab = b - a
        t = ((gx - a[0]) * ab[0] + (gy - a[1]) * ab[1]) / (ab @ ab)
        tc = np.clip(t, 0.0, 1.0)
        d = np.hypot(gx - (a[0] + tc * ab[0]), gy - (a[1] + tc * ab[1]))
        crest = crest_m + amp_m * np.sin(2 * math.pi * 1.5 * t + phase) + 25.0 * fine
        z = z + np.clip(crest - z, 0.0, None) * np.exp(-0.5 * (d / RIDGE_SIGMA_M) ** 2)

    # The airport sits on a levelled plateau at its published elevation.
    _, runways = _runway_ends()
    hull = MultiPoint([tuple(e) for _, s_, n_, _ in runways for e in (s_, n_)]).convex_hull.buffer(300.0)
    d_ap = shapely.distance(hull, pts)
    w_ap = np.exp(-((d_ap / 900.0) ** 2))
    z = w_ap * AIRPORT_ELEV_M + (1.0 - w_ap) * z

    # Rivers carve their valleys: a floodplain a few metres above the water for the first
    # few hundred metres from the bank, then valley sides rising to the hills.
    _, yz_w, yl, yl_w = _water()
    z = _carve(z, YANGTZE_SURFACE_M, shapely.distance(yz_w, pts), plain_m=400.0, rise_m=1200.0)
    frac = shapely.line_locate_point(yl, pts) / yl.length
    surface = YULIN_SOURCE_M + (YULIN_MOUTH_M - YULIN_SOURCE_M) * frac
    z = _carve(z, surface, shapely.distance(yl_w, pts), plain_m=500.0, rise_m=1200.0)
    return np.round(z, 1), w, s


def _carve(z: np.ndarray, surface: np.ndarray | float, d: np.ndarray, *, plain_m: float, rise_m: float) -> np.ndarray:
    """Lower the ground towards a river: ``surface`` in the water, +8 m at the floodplain edge."""
    plain = surface + 8.0 * np.clip(d / plain_m, 0.0, 1.0)
    carved = plain + (z - plain) * (1.0 - np.exp(-np.clip(d - plain_m, 0.0, None) / rise_m))
    return np.where(z > plain, carved, z)


def _asc(z_south_first: np.ndarray, x0: float, y0: float) -> str:
    nrows, ncols = z_south_first.shape
    head = (f"ncols {ncols}\nnrows {nrows}\nxllcorner {x0 - CELL_DEG / 2:.6f}\n"
            f"yllcorner {y0 - CELL_DEG / 2:.6f}\ncellsize {CELL_DEG:.6f}\nnodata_value -9999\n")
    rows = (" ".join(f"{v:.1f}" for v in row) for row in z_south_first[::-1])
    return head + "\n".join(rows) + "\n"


def _bilinear(z: np.ndarray, x0: float, y0: float, lon: float, lat: float) -> float:
    """Bilinear on cell centres, as the loader interpolates."""
    fx, fy = (lon - x0) / CELL_DEG, (lat - y0) / CELL_DEG
    i, j = int(math.floor(fy)), int(math.floor(fx))
    tx, ty = fx - j, fy - i
    return float(z[i, j] * (1 - tx) * (1 - ty) + z[i, j + 1] * tx * (1 - ty)
                 + z[i + 1, j] * (1 - tx) * ty + z[i + 1, j + 1] * tx * ty)


def _sensor(lon: float, lat: float, props: dict[str, Any]) -> dict[str, Any]:
    """A hazard sensor's feature, its names marked synthetic (invented for the scenarios)."""
    if not props["name"].endswith("(synthetic)"):
        props["name"] += " (synthetic)"
    if not props["name_zh"].endswith("（合成）"):
        props["name_zh"] += "（合成）"
    return _feature(_point(lon, lat), props)


def _hazard_sites(z: np.ndarray, x0: float, y0: float, slope: tuple[float, float],
                  ridge_station: tuple[float, float]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Sites]:
    """Facilities and sensors of the risk core's hazards, and the facts the scenario scripts need."""

    def elev(lon: float, lat: float) -> float:
        return round(_bilinear(z, x0, y0, lon, lat), 1)

    facilities: list[dict[str, Any]] = []
    sensors: list[dict[str, Any]] = []
    for sid, name, name_zh, lon, lat in WEATHER_STATIONS:
        lon, lat = (lon, lat) if lon is not None else ridge_station
        sensors.append(_sensor(lon, lat, {
            "id": sid, "kind": "weather_station", "name": name, "name_zh": name_zh, "quantity": "temp",
            "unit": "Cel", "interval_s": 300, "elevation_m": elev(lon, lat), "thresholds": {}}))

    # The slope: the fall line is the terrain's steepest descent at the facility point.
    sx, sy = _FWD.transform(*slope)
    grid = [[_bilinear(z, x0, y0, *_INV.transform(sx + dx, sy + dy)) for dx in (-100.0, 100.0)]
            for dy in (-100.0, 100.0)]
    dz_dx = (grid[0][1] + grid[1][1] - grid[0][0] - grid[1][0]) / 400.0
    dz_dy = (grid[1][0] + grid[1][1] - grid[0][0] - grid[0][1]) / 400.0
    azimuth = round(math.degrees(math.atan2(-dz_dx, -dz_dy)) % 360.0)
    vid, vname, vname_zh, vdist, vpop = VILLAGE
    fall = math.radians(azimuth)
    facilities.append(_feature(_point(*_offset(*slope, vdist * math.sin(fall), vdist * math.cos(fall))), {
        "id": vid, "kind": "village", "name": vname, "name_zh": vname_zh, "population": vpop}))
    for sid, kind, name, name_zh, east, north, interval, share in SLOPE_SENSORS:
        lon, lat = _offset(*slope, east, north)
        props: dict[str, Any] = {"id": sid, "kind": kind, "name": name, "name_zh": name_zh}
        if kind == "rain_gauge":
            props.update(quantity="rain", unit="mm", valid_min=0.0, valid_max=60.0, cumulative=True)
        props.update(interval_s=interval, elevation_m=elev(lon, lat), slope=SLOPE_ID)
        if sid == SLOPE_WARNING_STATION:
            # the crown station is the slope's warning station: a siren and a flashing light
            # the service can switch on for the village below
            props["actuators"] = ["siren", "light"]
        if share is not None:
            props["thresholds"] = {"v0_mm_per_day": round(SLOPE_V0_MM_PER_DAY * share, 2)}
        elif kind == "soil_moisture":
            props["thresholds"] = {"saturation_pct": SOIL_SATURATION_PCT}
        elif kind == "inclinometer":
            props["ranges"] = {"tilt_x": [-30.0, 30.0], "tilt_y": [-30.0, 30.0]}  # a MEMS sensor's span
            props["thresholds"] = {}
        else:
            props["thresholds"] = {}
        sensors.append(_sensor(lon, lat, props))

    ignition = _axis_point(RIDGES[0][3], *FIRE_IGNITION)
    for sid, kind, name, name_zh, east, north, thresholds in FIRE_SENSORS:
        lon, lat = _offset(*ignition, east, north)
        sensors.append(_sensor(lon, lat, {
            "id": sid, "kind": kind, "name": name, "name_zh": name_zh, "interval_s": 300,
            "elevation_m": elev(lon, lat), "ridge": "tongluo", "thresholds": thresholds}))
    cid, cname, cname_zh, cthresholds = CAMERA
    sensors.append(_sensor(*ridge_station, {
        "id": cid, "kind": "fire_camera", "name": cname, "name_zh": cname_zh, "interval_s": 300,
        "elevation_m": elev(*ridge_station), "ridge": "tongluo", "thresholds": cthresholds}))
    bearing = Geod(ellps="WGS84").inv(*ridge_station, *ignition)[0] % 360.0

    site_id, site_name, site_name_zh, plon, plat, substances = CHEMICAL_SITE
    facilities.append(_feature(_point(plon, plat), {
        "id": site_id, "kind": "chemical_site", "name": site_name, "name_zh": site_name_zh,
        "substances": list(substances)}))
    detectors = {}
    for suffix, side, side_zh, east, north in GAS_DETECTORS:
        lon, lat = _offset(plon, plat, east, north)
        sid = f"gas-luoqi-chem-{suffix}"
        detectors[sid] = (lon, lat)
        sensors.append(_sensor(lon, lat, {
            "id": sid, "kind": "gas_detector", "name": f"Luoqi chemical plant gas detector, {side} fence",
            "name_zh": f"洛碛化工厂{side_zh}侧围界气体探测器", "quantity": "nh3", "unit": "ppm", "interval_s": 60,
            "site": site_id, "substance": list(GAS_SUBSTANCE_ORDER), "thresholds": {}}))
    sites = Sites(slope_id=SLOPE_ID, slope_azimuth_deg=float(azimuth), ignition=ignition,
                  camera_bearing_deg=round(bearing, 2), chemical_site=site_id, leak_source=(plon, plat),
                  gas_detectors=detectors)
    return facilities, sensors, sites


def _yulin_routing(yulin_base_m: float, upper_base_m: float) -> dict[str, Any]:
    """The Longxing gauge's ``routing``: the reach from the upper gauge and the two ratings."""
    out: dict[str, Any] = {"upstream": "yulin-upper-level", "k_h": YULIN_REACH_K_H, "x": YULIN_REACH_X}
    for key, base_m in (("rating", yulin_base_m), ("upstream_rating", upper_base_m)):
        depth_m, b, low_m3s = YULIN_RATINGS[key]
        out[key] = {"a": round(low_m3s / depth_m ** b, 2), "h0_m": round(base_m - depth_m, 2), "b": b}
    out["lateral_m3s"] = YULIN_LATERAL_M3S
    return out


def _upper_level_for(routing: dict[str, Any], yulin_m: float) -> float:
    """The upper gauge's steady level whose flow, with the side streams, holds Longxing at ``yulin_m``."""
    down, up = routing["rating"], routing["upstream_rating"]
    q_m3s = down["a"] * (yulin_m - down["h0_m"]) ** down["b"] - routing["lateral_m3s"]
    return round(up["h0_m"] + (q_m3s / up["a"]) ** (1.0 / up["b"]), 1)


def _scenario(seed: int, yulin_gauge_base_m: float, upper_base_m: float, routing: dict[str, Any]) -> dict[str, Any]:
    yulin_peak_m = round(yulin_gauge_base_m + 5.2, 1)
    return {
        "name": "Yangtze flood with a rainstorm band (synthetic)",
        "name_zh": "长江洪水叠加暴雨带（合成情景）",
        "synthetic": True,
        "seed": seed,
        "duration_h": 12.0,
        # Levels: baseline until rise_start_h, an S-shaped rise to peak_m at rise_end_h, then held.
        "levels": {
            "cuntan-level": {"baseline_m": 176.0, "peak_m": 184.2, "rise_start_h": 1.0, "rise_end_h": 9.0,
                             "noise_m": 0.02},
            "yulin-level": {"baseline_m": yulin_gauge_base_m, "peak_m": yulin_peak_m,
                            "rise_start_h": 3.0, "rise_end_h": 8.0, "noise_m": 0.02},
            # the same wave 2.5 h earlier upstream (about K), peaking at the flow of Longxing's peak
            "yulin-upper-level": {"baseline_m": upper_base_m, "peak_m": _upper_level_for(routing, yulin_peak_m),
                                  "rise_start_h": 0.5, "rise_end_h": 5.0, "noise_m": 0.02},
        },
        # Rain: each storm gives each listed gauge total_mm between start_h and end_h
        # (rate shaped like a half sine); zero outside storms. Amount per report interval.
        "rain": {
            "interval_s": 300,
            "storms": [
                {"name": "Longxing-Luoqi rainstorm band", "name_zh": "龙兴—洛碛暴雨带",
                 "start_h": 2.0, "end_h": 5.0,
                 "totals_mm": {"rain-longxing": 72.0, "rain-luoqi": 58.0, "rain-muer": 44.0,
                               "rain-tongjing": 31.0, "rain-wangjia": 12.0, "rain-lianglu": 9.0,
                               "rain-gulu": 8.0, "rain-xiantao": 6.0, "rain-cizhu": 5.0}},
                {"name": "Trailing showers", "name_zh": "后续阵雨",
                 "start_h": 6.0, "end_h": 8.0,
                 "totals_mm": {"rain-longxing": 11.0, "rain-luoqi": 9.0, "rain-muer": 14.0,
                               "rain-tongjing": 18.0}},
            ],
        },
    }


# --- main ------------------------------------------------------------------------------------


def generate(out_dir: Path, *, seed: int = 7) -> Path:
    """Write the synthetic Yubei district folder into ``out_dir``; return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w, s, e, n = BBOX

    _write_yaml(out / "district.yaml", {
        "name": "Yubei District (synthetic)",
        "name_zh": "渝北区（合成）",
        "synthetic": True,
        "notice": NOTICE,
        "bbox": [w, s, e, n],
        "center": [106.70, 29.85],
        "timezone": "Asia/Shanghai",
        "utm_epsg": UTM_EPSG,
        "seed": seed,
    }, header=f"# {NOTICE}\n# Generated by: python -m sitl.scenarios.yubei <out-dir>\n")

    cuntan_i = YANGTZE.index((106.600, 29.620))
    boundary = Polygon(list(YANGTZE[cuntan_i:-1]) + list(BOUNDARY_WEST_NORTH))
    _write_geojson(out / "boundary.geojson", [_feature(_round(boundary), {
        "id": "yubei", "name": "Yubei District (synthetic outline)", "name_zh": "渝北区（合成边界）"})])

    yz, yz_w, yl, yl_w = _water()
    _write_geojson(out / "rivers.geojson", [
        _feature(_round(_to_lonlat(yz)), {"id": "yangtze", "kind": "river", "name": "Yangtze", "name_zh": "长江"}),
        _feature(_round(_to_lonlat(yl)), {"id": "yulin", "kind": "river", "name": "Yulin River", "name_zh": "御临河"}),
        _feature(_round(_to_lonlat(yz_w)), {"id": "yangtze-water", "kind": "water", "name": "Yangtze",
                                           "name_zh": "长江"}),
        _feature(_round(_to_lonlat(yl_w)), {"id": "yulin-water", "kind": "water", "name": "Yulin River",
                                           "name_zh": "御临河"}),
    ])

    _write_geojson(out / "roads.geojson", [
        _feature(LineString(line), {"id": rid, "name": name, "name_zh": name_zh, "class": cls})
        for rid, name, name_zh, cls, line in ROADS])

    _write_geojson(out / "airspace.geojson", _airspace())
    _write_geojson(out / "bridges.geojson", _bridges(yz, yl))
    _write_geojson(out / "townships.geojson", _townships(boundary))

    z, x0, y0 = _terrain(seed)
    _write_text(out / "terrain.asc", _asc(z, x0, y0))

    # on the district's (north) half of the river: the boundary runs down the Yangtze's centre line
    boat_lon, boat_lat = _offset(*_interp_line(YANGTZE, BOAT_BASE[4]), 0.0, 120.0)
    facilities = []
    for fid, name, name_zh, lon, lat, pop in TOWNS:
        facilities.append(_feature(_point(lon, lat), {"id": f"town-{fid}", "kind": "town", "name": name,
                                                      "name_zh": name_zh, "population": pop}))
    for kind, rows in (("hospital", HOSPITALS), ("school", SCHOOLS), ("fire_station", FIRE_STATIONS)):
        for fid, name, name_zh, lon, lat in rows:
            facilities.append(_feature(_point(lon, lat), {"id": fid, "kind": kind, "name": name, "name_zh": name_zh}))
    for fid, name, name_zh, lon, lat, residents in NURSING_HOMES:
        facilities.append(_feature(_point(lon, lat), {"id": fid, "kind": "nursing_home", "name": name,
                                                      "name_zh": name_zh, "population": residents}))
    for fid, name, name_zh, lon, lat, capacity in SHELTERS:
        facilities.append(_feature(_point(lon, lat), {"id": fid, "kind": "shelter", "name": name, "name_zh": name_zh,
                                                      "capacity": capacity}))
    for fid, name, name_zh, lon, lat in AMBULANCE_STATIONS:
        facilities.append(_feature(_point(lon, lat), {"id": fid, "kind": "ambulance_station", "name": name,
                                                      "name_zh": name_zh}))
    river_lines = {"yangtze": yz, "yulin": yl}
    for fid, name, name_zh, river, at in WATER_INTAKES:
        p = _to_lonlat(river_lines[river].interpolate(at, normalized=True))
        facilities.append(_feature(_point(p.x, p.y), {"id": fid, "kind": "water_intake", "name": name,
                                                      "name_zh": name_zh, "river": river}))
    for _, fid, name, name_zh, lon, lat in COPTER_BASES:
        facilities.append(_feature(_point(lon, lat), {"id": fid, "kind": "drone_base", "name": name,
                                                      "name_zh": name_zh}))
    facilities.append(_feature(_point(boat_lon, boat_lat), {"id": BOAT_BASE[1], "kind": "boat_base",
                                                            "name": BOAT_BASE[2], "name_zh": BOAT_BASE[3]}))
    yulin_boat = _to_lonlat(yl.interpolate(YULIN_BOAT_BASE[4], normalized=True))
    facilities.append(_feature(_point(yulin_boat.x, yulin_boat.y), {
        "id": YULIN_BOAT_BASE[1], "kind": "boat_base", "name": YULIN_BOAT_BASE[2], "name_zh": YULIN_BOAT_BASE[3]}))
    tongluo_axis, mingyue_axis = RIDGES[0][3], RIDGES[1][3]
    slope = _axis_point(tongluo_axis, 29.750, -1100.0)
    facilities.append(_feature(_point(*slope), {
        "id": "slope-yufengshan", "kind": "landslide_slope", "name": "Yufengshan monitored slope",
        "name_zh": "玉峰山监测边坡"}))
    for fid, name, name_zh, axis, lat in (
            ("wx-tongluo", "Tongluo Shan ridge weather and fire station", "铜锣山林区气象防火站", tongluo_axis, 29.900),
            ("wx-mingyue", "Mingyue Shan ridge weather and fire station", "明月山林区气象防火站", mingyue_axis, 29.850)):
        facilities.append(_feature(_point(*_axis_point(axis, lat)), {
            "id": fid, "kind": "weather_station", "name": name, "name_zh": name_zh}))
    hazard_facilities, hazard_sensors, sites = _hazard_sites(
        z, x0, y0, slope, _axis_point(tongluo_axis, 29.900))
    facilities += hazard_facilities
    _write_geojson(out / "facilities.geojson", facilities)
    by_id = {f["properties"]["id"]: f["geometry"]["coordinates"] for f in facilities}
    _write_yaml(out / "crews.yaml", {"crews": [
        {"id": cid, "name": name, "name_zh": name_zh, "department": dept, "kind": kind, "type": ctype,
         "base": [round(by_id[base][0], 6), round(by_id[base][1], 6)], "base_facility": base, "people": people}
        for cid, name, name_zh, dept, kind, ctype, base, people in CREWS]},
        header="# Crews and department units: people and vehicles besides the fleet (synthetic)\n")
    _write_yaml(out / "patrols.yaml", {"patrols": [
        {"id": "yangtze-bank", "name": "Yangtze bank patrol", "name_zh": "长江岸线巡查", "along": {"river": "yangtze"},
         "months": [6, 7, 8, 9], "at": ["09:00", "16:00"], "needs": ["zoom_camera"]},
        {"id": "tongluo-forest", "name": "Tongluo Shan forest patrol", "name_zh": "铜锣山林区巡护",
         "over": {"forest": "forest-tongluo"}, "months": [1, 2, 3, 4, 11, 12], "at": ["10:30"],
         "needs": ["thermal_camera"]},
        {"id": "luoqi-plant", "name": "Luoqi chemical plant patrol", "name_zh": "洛碛化工园区巡查",
         "around": {"facility": CHEMICAL_SITE[0], "radius_m": 400}, "at": ["14:00"], "needs": ["gas_sensor"]},
    ]}, header="# Scheduled patrols (daily management): flood season banks, fire season forest, the chemical plant\n")
    _write_geojson(out / "landcover.geojson", [
        _feature(_round(_to_lonlat(_to_utm(LineString(axis)).buffer(FOREST_HALF_WIDTH_M)).intersection(boundary)),
                 {"id": f"forest-{rid}", "kind": "forest", "name": f"{name} forest", "name_zh": f"{name_zh}林区"})
        for rid, name, name_zh, axis, *_ in RIDGES])

    # Sensors: Cuntan gauge (thresholds published, Wusong datum); a synthetic Yulin gauge.
    yulin_gauge = _to_lonlat(yl.interpolate(0.80, normalized=True))
    yulin_base = round(YULIN_SOURCE_M + (YULIN_MOUTH_M - YULIN_SOURCE_M) * 0.80 + 1.0, 1)
    upper_gauge = _to_lonlat(yl.interpolate(YULIN_UPPER_AT, normalized=True))
    upper_base = round(YULIN_SOURCE_M + (YULIN_MOUTH_M - YULIN_SOURCE_M) * YULIN_UPPER_AT + 1.0, 1)
    routing = _yulin_routing(yulin_base, upper_base)
    sensors = [
        _feature(_point(106.600, 29.620), {
            "id": "cuntan-level", "kind": "river_level", "name": "Cuntan (Yangtze) level",
            "name_zh": "寸滩水位站（长江）", "quantity": "level", "unit": "m", "valid_min": 150.0,
            "valid_max": 200.0, "interval_s": 300, "datum": "Wusong", "river": "yangtze", "terrain_offset_m": 0.0,
            "thresholds": {"warning_m": 180.5, "guaranteed_m": 183.5, "historical_max_m": 191.62}}),
        _feature(_point(yulin_gauge.x, yulin_gauge.y), {
            "id": "yulin-level", "kind": "river_level", "name": "Yulin River level at Longxing (synthetic)",
            "name_zh": "御临河龙兴水位站（合成）", "quantity": "level", "unit": "m",
            "valid_min": round(yulin_base - 15.0, 1), "valid_max": round(yulin_base + 25.0, 1), "interval_s": 300,
            "datum": "Huanghai", "river": "yulin", "terrain_offset_m": 0.0,
            "thresholds": {"warning_m": round(yulin_base + 4.0, 1), "guaranteed_m": round(yulin_base + 6.5, 1),
                           "historical_max_m": round(yulin_base + 10.2, 1)}, "routing": routing,
            # a radar gauge: level and surface velocity (the scenario derives it from the rating)
            "surface_velocity": {"channel_width_m": 2 * YULIN_HALF_WIDTH_M}}),
    ]
    for gid, name, name_zh, lon, lat in RAIN_GAUGES:
        sensors.append(_feature(_point(lon, lat), {
            "id": gid, "kind": "rain_gauge", "name": name, "name_zh": name_zh, "quantity": "rain", "unit": "mm",
            # 0-60 mm in 5 min: above any recorded 5-minute rainfall in China.
            "valid_min": 0.0, "valid_max": 60.0, "interval_s": 300, "thresholds": {}}))
    sensors += hazard_sensors
    # Appended, so the first sensors keep their order. The valley is deeper below Tongjing: its
    # flood levels stand above the scripted wave, which opens incidents at Longxing only.
    sensors.append(_feature(_point(upper_gauge.x, upper_gauge.y), {
        "id": "yulin-upper-level", "kind": "river_level", "name": "Yulin River level below Tongjing (synthetic)",
        "name_zh": "御临河统景下游水位站（合成）", "quantity": "level", "unit": "m",
        "valid_min": round(upper_base - 15.0, 1), "valid_max": round(upper_base + 25.0, 1), "interval_s": 300,
        "datum": "Huanghai", "river": "yulin", "terrain_offset_m": 0.0,
        "thresholds": {"warning_m": round(upper_base + 7.0, 1), "guaranteed_m": round(upper_base + 9.0, 1),
                       "historical_max_m": round(upper_base + 12.0, 1)}}))
    _write_geojson(out / "sensors.geojson", sensors)

    vehicles = []
    for k, (name, _, _, _, lon, lat) in enumerate(COPTER_BASES, start=1):
        vehicles.append({"name": name, "type": "copter", "url": f"udpin:127.0.0.1:{14550 + k}", "system_id": k,
                         "base": [lon, lat], "base_alt_m": round(_bilinear(z, x0, y0, lon, lat), 1),
                         "cruise_speed_mps": 12.0, "endurance_s": COPTER_ENDURANCE_S, "payloads": list(PAYLOADS_OF[name])})
    k = len(vehicles) + 1
    vehicles.append({"name": BOAT_BASE[0], "type": "boat", "url": f"udpin:127.0.0.1:{14550 + k}", "system_id": k,
                     "base": [round(boat_lon, 6), round(boat_lat, 6)], "base_alt_m": YANGTZE_SURFACE_M,
                     "cruise_speed_mps": 5.0, "endurance_s": BOAT_ENDURANCE_S,
                     "payloads": list(PAYLOADS_OF[BOAT_BASE[0]])})
    k = len(vehicles) + 1
    vehicles.append({"name": YULIN_BOAT_BASE[0], "type": "boat", "url": f"udpin:127.0.0.1:{14550 + k}",
                     "system_id": k, "base": [round(yulin_boat.x, 6), round(yulin_boat.y, 6)],
                     "base_alt_m": _yulin_surface(YULIN_BOAT_BASE[4]), "cruise_speed_mps": 4.0,
                     "endurance_s": BOAT_ENDURANCE_S,
                     "air_draft_m": BOAT_AIR_DRAFT_M, "payloads": list(PAYLOADS_OF[YULIN_BOAT_BASE[0]])})
    vehicles[k - 2]["air_draft_m"] = BOAT_AIR_DRAFT_M
    _write_yaml(out / "fleet.yaml", {"vehicles": vehicles},
                header="# base_alt_m: ground (copter) or water surface (boat) at the base, metres AMSL\n")

    _write_yaml(out / "departments.yaml", {"departments": _departments()},
                header=f"# {NOTICE}\n# Linked departments, their duty rosters (local time) and delivery channels "
                       "(command/linkage/roster.py). People are synthetic.\n")
    # the linkage playbooks (command/linkage/playbook.py), kept as written: comments and all
    _write_text(out / "playbooks.yaml", (Path(__file__).parent / "playbooks.yaml").read_text(encoding="utf-8"))

    _write_yaml(out / "scenario.yaml", scenario_file(_scenario(seed, yulin_base, upper_base, routing), sensors, sites),
                header=f"# {NOTICE}\n# Named scenarios (docs/scenarios.md); times are hours after each start.\n")
    return out
