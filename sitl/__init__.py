"""Simulation: ArduPilot-compatible vehicle simulator, SITL launcher, scenarios."""
