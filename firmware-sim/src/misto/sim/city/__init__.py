"""City-scale scenarios: many gateways with devices of every simulated kind, producing the
protocol messages (telemetry, health, status) a real city would, for a backfill or a live feed.

    from datetime import UTC, datetime, timedelta
    from misto.sim.city import City, CitySpec

    city = City(CitySpec(gateways=20, devices=1000, seed=1), start=datetime(2025, 6, 4, tzinfo=UTC))
    for tick in city.ticks(end=city.start + timedelta(hours=24)):
        for topic, message in tick.messages():  # misto.protocol messages; encode() for the wire
            ...

See docs/dashboards.md (the city scenario; how the dashboards are tested with it).
"""

from misto.sim.city.city import City, CityMessage, Tick
from misto.sim.city.spec import CAMERA, DEFAULT_MIX, CitySpec, CitySpecError, DevicePlan, GatewayPlan, layout

__all__ = [
    "CAMERA",
    "DEFAULT_MIX",
    "City",
    "CityMessage",
    "CitySpec",
    "CitySpecError",
    "DevicePlan",
    "GatewayPlan",
    "Tick",
    "layout",
]
