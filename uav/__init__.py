"""Vehicle side: async MAVLink link, Vehicle, mission protocol, ArduPilot modes, fleet."""
