"""Shared fixtures: a private Mosquitto, simulated vehicles, the live service."""

pytest_plugins = ["tests.fixtures_mqtt", "tests.fixtures_sim", "tests.fixtures_service"]
