"""Shared fixtures: a private Mosquitto, simulated vehicles, the live service."""

import os

pytest_plugins = ["tests.fixtures_mqtt", "tests.fixtures_sim", "tests.fixtures_service"]

# Scheduled patrols start on the wall clock's calendar (the district's patrols.yaml): a test run at
# 14:00 local would see one. Services under test leave them off; the patrol tests start them.
os.environ.setdefault("YINGJI_PATROLS", "false")
