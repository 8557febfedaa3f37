"""One suite, both databases: the :class:`RegistryRepository` contract run against SQLite and
against PostgreSQL + PostGIS (a real server from the ``postgis`` fixture).

Spatial answers are checked against independent computations: geodesic distances on the WGS 84
ellipsoid from pyproj and box membership from shapely, on points around Kherson (46.64 N, 32.61 E).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import shapely
from pydantic import ValidationError
from pyproj import Geod

from misto.cloud.registry.errors import (
    AlreadyExistsError,
    InUseError,
    InvalidFieldError,
    NotFoundError,
    RegistryClosedError,
    StaleVersionError,
    UnknownReferenceError,
)
from misto.cloud.registry.models import (
    AuditAction,
    DeviceCreate,
    DeviceModelCreate,
    DeviceModelUpdate,
    DevicePublic,
    DeviceRecord,
    DeviceUpdate,
    Entity,
    GatewayCreate,
    GatewayPublic,
    GatewayUpdate,
    Lifecycle,
    Point,
    Visibility,
)
from misto.cloud.registry.repository import RegistryRepository
from misto.cloud.registry.sql import SqlRegistry
from misto.protocol.vocabulary import SensorKind

BACKENDS = ["sqlite", "postgis"]
KHERSON = Point(lon=32.61, lat=46.64)
WGS84 = Geod(ellps="WGS84")
START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ACTOR = "operator:olena"


@dataclass
class StepClock:
    """Each reading is one second after the previous one, so every change has its own time."""

    now: datetime = START
    seen: list[datetime] = field(default_factory=list)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        self.seen.append(self.now)
        return self.now


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(params=BACKENDS)
async def registry(request: pytest.FixtureRequest, tmp_path: Path, clock: StepClock) -> AsyncIterator[SqlRegistry]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgis").url
    async with await SqlRegistry.open(url, clock=clock) as opened:
        assert opened.dialect == ("sqlite" if request.param == "sqlite" else "postgresql")
        yield opened


def offset(distance_m: float, azimuth_deg: float, origin: Point = KHERSON) -> Point:
    lon, lat, _ = WGS84.fwd(origin.lon, origin.lat, azimuth_deg, distance_m)
    return Point(lon=lon, lat=lat)


def geodesic_m(a: Point, b: Point) -> float:
    return float(WGS84.inv(a.lon, a.lat, b.lon, b.lat)[2])


AQ = DeviceModelCreate(
    id="aq-1", kind=SensorKind.AIR, manufacturer="Misto Labs", name="AQ-1", profile="aq-1", metrics=("pm25", "pm10")
)
NM = DeviceModelCreate(id="nm-1", kind=SensorKind.NOISE, manufacturer="Misto Labs", name="NM-1", metrics=("LAeq",))


def gateway(gateway_id: str, **changes: object) -> GatewayCreate:
    base: dict[str, object] = {
        "id": gateway_id,
        "name": f"Gateway {gateway_id}",
        "location": KHERSON,
        "district": "Tsentralnyi",
        "organisation": "Khersonteplo",
        "owner_contact": "+380 55 000 0000",
        "visibility": Visibility.PUBLIC,
    }
    return GatewayCreate.model_validate({**base, **changes})


def device(device_id: str, **changes: object) -> DeviceCreate:
    base: dict[str, object] = {
        "id": device_id,
        "gateway_id": "gw-1",
        "model_id": "aq-1",
        "install_date": date(2026, 4, 2),
        "location": KHERSON,
        "district": "Tsentralnyi",
        "organisation": "City of Kherson",
        "owner_contact": "eco@example.org",
        "visibility": Visibility.PUBLIC,
        "notes": "on the lamp post by the school",
    }
    return DeviceCreate.model_validate({**base, **changes})


async def seed(registry: RegistryRepository) -> None:
    await registry.create_model(AQ, actor=ACTOR)
    await registry.create_model(NM, actor=ACTOR)
    await registry.create_gateway(gateway("gw-1"), actor=ACTOR)
    await registry.create_gateway(gateway("gw-2", district="Dniprovskyi", visibility="private"), actor=ACTOR)


# --- CRUD ----------------------------------------------------------------------------------------


async def test_device_model_crud(registry: RegistryRepository, clock: StepClock) -> None:
    created = await registry.create_model(AQ, actor=ACTOR)
    assert (created.id, created.kind, created.metrics, created.profile, created.version) == (
        "aq-1",
        SensorKind.AIR,
        ("pm25", "pm10"),
        "aq-1",
        1,
    )
    assert created.created_at == created.updated_at == clock.seen[0]
    assert await registry.get_model("aq-1") == created

    updated = await registry.update_model(
        "aq-1", DeviceModelUpdate(name="AQ-1 rev B", profile=None), version=1, actor=ACTOR
    )
    assert (updated.name, updated.profile, updated.manufacturer, updated.version) == (
        "AQ-1 rev B",
        None,
        "Misto Labs",
        2,
    )
    assert updated.created_at == created.created_at < updated.updated_at
    assert await registry.get_model("aq-1") == updated
    assert [m.id for m in (await registry.list_models()).items] == ["aq-1"]

    await registry.delete_model("aq-1", version=2, actor=ACTOR)
    with pytest.raises(NotFoundError, match="device model 'aq-1' not found"):
        await registry.get_model("aq-1")
    assert (await registry.list_models()).items == ()


async def test_gateway_crud(registry: RegistryRepository) -> None:
    created = await registry.create_gateway(gateway("gw-1", notes="roof of school 12"), actor=ACTOR)
    assert created.location == KHERSON
    assert (created.visibility, created.status, created.notes) == (
        Visibility.PUBLIC,
        Lifecycle.ACTIVE,
        "roof of school 12",
    )
    assert await registry.get_gateway("gw-1") == created

    moved = Point(lon=32.62, lat=46.65)
    updated = await registry.update_gateway(
        "gw-1",
        GatewayUpdate(location=moved, status=Lifecycle.MAINTENANCE, owner_contact=None),
        version=1,
        actor=ACTOR,
    )
    assert (updated.location, updated.status, updated.owner_contact, updated.version) == (
        moved,
        Lifecycle.MAINTENANCE,
        None,
        2,
    )
    assert (updated.name, updated.district, updated.notes) == (created.name, created.district, created.notes)
    cleared = await registry.update_gateway("gw-1", GatewayUpdate(location=None), version=2, actor=ACTOR)
    assert cleared.location is None
    assert (await registry.get_gateway("gw-1")).location is None

    await registry.delete_gateway("gw-1", actor=ACTOR)
    with pytest.raises(NotFoundError, match="gateway 'gw-1' not found"):
        await registry.get_gateway("gw-1")
    with pytest.raises(NotFoundError):
        await registry.update_gateway("gw-1", GatewayUpdate(name="x"), version=3, actor=ACTOR)
    with pytest.raises(NotFoundError):
        await registry.delete_gateway("gw-1", actor=ACTOR)


async def test_device_crud(registry: RegistryRepository) -> None:
    await seed(registry)
    created = await registry.create_device(device("kh-aq-0001"), actor=ACTOR)
    assert created.kind is SensorKind.AIR  # the model's kind when none is given
    assert (created.gateway_id, created.model_id, created.install_date) == ("gw-1", "aq-1", date(2026, 4, 2))
    assert (created.location, created.version) == (KHERSON, 1)
    assert await registry.get_device("kh-aq-0001") == created

    updated = await registry.update_device(
        "kh-aq-0001",
        DeviceUpdate(gateway_id="gw-2", model_id="nm-1", notes=None, visibility=Visibility.PRIVATE),
        version=1,
        actor=ACTOR,
    )
    assert (updated.gateway_id, updated.model_id, updated.kind) == ("gw-2", "nm-1", SensorKind.NOISE)
    assert (updated.notes, updated.visibility, updated.version) == (None, Visibility.PRIVATE, 2)
    assert updated.location == KHERSON
    assert await registry.get_device("kh-aq-0001") == updated

    await registry.delete_device("kh-aq-0001", version=2, actor=ACTOR)
    with pytest.raises(NotFoundError, match="device 'kh-aq-0001' not found"):
        await registry.get_device("kh-aq-0001")


async def test_ids_are_unique(registry: RegistryRepository) -> None:
    await seed(registry)
    await registry.create_device(device("d-1"), actor=ACTOR)
    with pytest.raises(AlreadyExistsError, match="id: device model 'aq-1' already exists"):
        await registry.create_model(AQ, actor=ACTOR)
    with pytest.raises(AlreadyExistsError, match="id: gateway 'gw-1' already exists"):
        await registry.create_gateway(gateway("gw-1", name="another"), actor=ACTOR)
    with pytest.raises(AlreadyExistsError, match="id: device 'd-1' already exists"):
        await registry.create_device(device("d-1", gateway_id="gw-2"), actor=ACTOR)
    assert (await registry.get_gateway("gw-1")).name == "Gateway gw-1"
    assert (await registry.get_device("d-1")).gateway_id == "gw-1"


async def test_references_must_exist_and_agree(registry: RegistryRepository) -> None:
    await seed(registry)
    with pytest.raises(UnknownReferenceError, match="gateway_id: gateway 'gw-9' not found") as caught:
        await registry.create_device(device("d-1", gateway_id="gw-9"), actor=ACTOR)
    assert caught.value.field == "gateway_id"
    with pytest.raises(UnknownReferenceError, match="model_id: device model 'xx-9' not found") as caught:
        await registry.create_device(device("d-1", model_id="xx-9"), actor=ACTOR)
    assert caught.value.field == "model_id"
    with pytest.raises(InvalidFieldError, match="kind: noise does not match the kind of model 'aq-1' \\(air\\)"):
        await registry.create_device(device("d-1", kind="noise"), actor=ACTOR)
    assert (await registry.list_devices()).items == ()

    await registry.create_device(device("d-1"), actor=ACTOR)
    with pytest.raises(UnknownReferenceError, match="gateway_id: gateway 'gw-9' not found"):
        await registry.update_device("d-1", DeviceUpdate(gateway_id="gw-9"), version=1, actor=ACTOR)
    with pytest.raises(InvalidFieldError, match="kind: "):
        await registry.update_device("d-1", DeviceUpdate(kind=SensorKind.NOISE), version=1, actor=ACTOR)
    with pytest.raises(InvalidFieldError, match="kind: 1 device\\(s\\) of model 'aq-1' have kind 'air'"):
        await registry.update_model("aq-1", DeviceModelUpdate(kind=SensorKind.WASTE), version=1, actor=ACTOR)
    with pytest.raises(InUseError, match="gateway 'gw-1' is still referenced by 1 device"):
        await registry.delete_gateway("gw-1", actor=ACTOR)
    with pytest.raises(InUseError, match="device model 'aq-1' is still referenced by 1 device"):
        await registry.delete_model("aq-1", actor=ACTOR)
    assert (await registry.get_device("d-1")).version == 1
    assert (await registry.get_gateway("gw-1")).version == 1


async def test_filters_and_pagination(registry: RegistryRepository) -> None:
    await seed(registry)
    rows = [
        ("d-01", "gw-1", "aq-1", "Tsentralnyi", "public"),
        ("d-02", "gw-1", "nm-1", "Tsentralnyi", "private"),
        ("d-03", "gw-2", "aq-1", "Dniprovskyi", "public"),
        ("d-04", "gw-2", "nm-1", "Dniprovskyi", "public"),
        ("d-05", "gw-1", "aq-1", "Dniprovskyi", "private"),
        ("d-06", "gw-2", "aq-1", "Suvorovskyi", "public"),
        ("d-07", "gw-1", "nm-1", "Suvorovskyi", "public"),
    ]
    for device_id, gw, model, district, visibility in reversed(rows):  # created out of order
        await registry.create_device(
            device(device_id, gateway_id=gw, model_id=model, district=district, visibility=visibility), actor=ACTOR
        )

    async def ids(**filters: object) -> list[str]:
        return [d.id for d in (await registry.list_devices(**filters)).items]  # type: ignore[arg-type]

    assert await ids() == [r[0] for r in rows]
    assert await ids(gateway_id="gw-2") == ["d-03", "d-04", "d-06"]
    assert await ids(kind=SensorKind.NOISE) == ["d-02", "d-04", "d-07"]
    assert await ids(district="Dniprovskyi") == ["d-03", "d-04", "d-05"]
    assert await ids(public_only=True) == ["d-01", "d-03", "d-04", "d-06", "d-07"]
    assert await ids(gateway_id="gw-1", kind=SensorKind.AIR, public_only=True) == ["d-01"]
    assert await ids(district="nowhere") == []

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await registry.list_devices(after=after, limit=3)
        pages.append([d.id for d in page.items])
        if page.next_after is None:
            break
        after = page.next_after
    assert pages == [["d-01", "d-02", "d-03"], ["d-04", "d-05", "d-06"], ["d-07"]]
    exact = await registry.list_devices(public_only=True, limit=5)
    assert (len(exact.items), exact.next_after) == (5, None)
    with pytest.raises(InvalidFieldError, match="limit: 0 must be between 1 and 1000"):
        await registry.list_devices(limit=0)

    assert [g.id for g in (await registry.list_gateways(public_only=True)).items] == ["gw-1"]
    assert [g.id for g in (await registry.list_gateways(district="Dniprovskyi")).items] == ["gw-2"]
    assert [m.id for m in (await registry.list_models(kind=SensorKind.NOISE)).items] == ["nm-1"]
    first = await registry.list_gateways(limit=1)
    assert ([g.id for g in first.items], first.next_after) == (["gw-1"], "gw-1")


async def test_stale_versions_are_refused(registry: RegistryRepository) -> None:
    await seed(registry)
    await registry.create_device(device("d-1"), actor=ACTOR)
    await registry.update_device("d-1", DeviceUpdate(district="Suvorovskyi"), version=1, actor="technician:a")
    with pytest.raises(StaleVersionError, match="version: device 'd-1' is at version 2, not 1") as caught:
        await registry.update_device("d-1", DeviceUpdate(district="Dniprovskyi"), version=1, actor="technician:b")
    assert (caught.value.expected, caught.value.current) == (1, 2)
    with pytest.raises(StaleVersionError):
        await registry.delete_device("d-1", version=1, actor=ACTOR)
    with pytest.raises(StaleVersionError, match="gateway 'gw-1' is at version 1, not 7"):
        await registry.update_gateway("gw-1", GatewayUpdate(name="x"), version=7, actor=ACTOR)
    with pytest.raises(StaleVersionError, match="device model 'aq-1' is at version 1, not 0"):
        await registry.update_model("aq-1", DeviceModelUpdate(name="x"), version=0, actor=ACTOR)
    kept = await registry.get_device("d-1")
    assert (kept.district, kept.version) == ("Suvorovskyi", 2)
    assert [e.action for e in await registry.audit(Entity.DEVICE, "d-1")] == [AuditAction.UPDATE, AuditAction.CREATE]


async def test_concurrent_updates_of_one_version_let_exactly_one_through(registry: RegistryRepository) -> None:
    await seed(registry)
    await registry.create_device(device("d-1"), actor=ACTOR)
    districts = [f"district-{n}" for n in range(6)]
    results = await asyncio.gather(
        *(
            registry.update_device("d-1", DeviceUpdate(district=d), version=1, actor=f"technician:{n}")
            for n, d in enumerate(districts)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, DeviceRecord)]
    lost = [r for r in results if isinstance(r, StaleVersionError)]
    assert (len(won), len(lost)) == (1, len(districts) - 1), results
    stored = await registry.get_device("d-1")
    assert (stored.version, stored.district) == (2, won[0].district)
    assert [e.action for e in await registry.audit(Entity.DEVICE, "d-1")] == [AuditAction.UPDATE, AuditAction.CREATE]


async def test_a_closed_registry_refuses_calls(registry: RegistryRepository) -> None:
    await registry.close()
    with pytest.raises(RegistryClosedError, match="get_gateway: the registry is closed"):
        await registry.get_gateway("gw-1")
    await registry.close()  # twice is fine


async def test_public_view_hides_private_fields(registry: RegistryRepository) -> None:
    await seed(registry)
    public = await registry.create_device(device("d-pub"), actor=ACTOR)
    private = await registry.create_device(device("d-priv", visibility="private"), actor=ACTOR)
    hidden = {"owner_contact", "notes"}

    shown = DevicePublic.of(public).model_dump()
    assert not hidden & shown.keys()
    assert shown["location"] == {"lon": KHERSON.lon, "lat": KHERSON.lat}
    secret = DevicePublic.of(private).model_dump(mode="json")
    assert not hidden & secret.keys()
    assert secret["location"] is None
    assert secret["district"] == "Tsentralnyi"
    assert "eco@example.org" not in str(secret)
    assert "lamp post" not in str(secret)

    gw_private = GatewayPublic.of(await registry.get_gateway("gw-2")).model_dump()
    assert gw_private["location"] is None
    assert "owner_contact" not in gw_private
    assert GatewayPublic.of(await registry.get_gateway("gw-1")).model_dump()["location"] is not None


# --- spatial -------------------------------------------------------------------------------------

#: (id, distance from the centre in metres, azimuth in degrees, visibility)
PLACES = [
    ("p-centre", 0.0, 0.0, "public"),
    ("p-north-300", 300.0, 0.0, "public"),
    ("p-east-800", 800.0, 90.0, "public"),
    ("p-sw-1500", 1500.0, 225.0, "public"),
    ("p-south-950", 950.0, 180.0, "private"),
    ("p-ne-5000", 5000.0, 45.0, "public"),
    ("p-west-2500", 2500.0, 270.0, "private"),
]
VISIBILITY = {pid: visibility for pid, _, _, visibility in PLACES}


async def seed_places(registry: RegistryRepository) -> dict[str, Point]:
    await seed(registry)
    points = {pid: offset(dist, az) for pid, dist, az, _ in PLACES}
    for pid, _, _, visibility in PLACES:
        await registry.create_device(device(pid, location=points[pid], visibility=visibility), actor=ACTOR)
    await registry.create_device(device("p-nowhere", location=None), actor=ACTOR)
    return points


@pytest.mark.parametrize("radius_m", [0.0, 250.0, 1000.0, 2000.0, 6000.0])
async def test_devices_within_radius_match_geodesic_distances(registry: RegistryRepository, radius_m: float) -> None:
    points = await seed_places(registry)
    distances = {pid: geodesic_m(KHERSON, p) for pid, p in points.items()}
    assert all(abs(d - radius_m) > 1.0 for pid, d in distances.items() if pid != "p-centre")  # no borderline case
    expected = sorted((d, pid) for pid, d in distances.items() if d <= radius_m)

    found = await registry.devices_within(KHERSON.lon, KHERSON.lat, radius_m)
    assert [n.device.id for n in found] == [pid for _, pid in expected]
    for nearby in found:
        assert nearby.distance_m == pytest.approx(distances[nearby.device.id], abs=0.01)
        assert nearby.device == await registry.get_device(nearby.device.id)

    public = await registry.devices_within(KHERSON.lon, KHERSON.lat, radius_m, public_only=True)
    assert [n.device.id for n in public] == [pid for _, pid in expected if VISIBILITY[pid] == "public"]


async def test_radius_edge_is_the_ellipsoidal_distance(registry: RegistryRepository) -> None:
    """A sphere would be off by metres at this range: the answer flips within centimetres of the
    WGS 84 geodesic distance, on both databases."""
    points = await seed_places(registry)
    for pid in ("p-east-800", "p-south-950", "p-sw-1500"):
        exact = geodesic_m(KHERSON, points[pid])
        inside = {n.device.id for n in await registry.devices_within(KHERSON.lon, KHERSON.lat, exact + 0.01)}
        outside = {n.device.id for n in await registry.devices_within(KHERSON.lon, KHERSON.lat, exact - 0.01)}
        assert pid in inside
        assert pid not in outside
    # centred elsewhere: from the 1.5 km point, who is within 1 km?
    here = points["p-sw-1500"]
    expected = sorted(pid for pid, p in points.items() if geodesic_m(here, p) <= 1000.0)
    found = await registry.devices_within(here.lon, here.lat, 1000.0)
    assert sorted(n.device.id for n in found) == expected == ["p-sw-1500"]
    found = await registry.devices_within(here.lon, here.lat, 1600.0)
    assert sorted(n.device.id for n in found) == sorted(
        pid for pid, p in points.items() if geodesic_m(here, p) <= 1600.0
    )


@pytest.mark.parametrize(
    "box",
    [
        (32.60, 46.63, 32.62, 46.65),
        (32.605, 46.635, 32.6125, 46.6445),
        (32.55, 46.60, 32.70, 46.70),
        (32.611, 46.641, 32.612, 46.642),
        (33.0, 47.0, 33.1, 47.1),
    ],
)
async def test_devices_in_bbox_match_shapely(
    registry: RegistryRepository, box: tuple[float, float, float, float]
) -> None:
    points = await seed_places(registry)
    area = shapely.box(*box)
    expected = sorted(pid for pid, p in points.items() if area.covers(shapely.Point(p.lon, p.lat)))
    found = await registry.devices_in_bbox(*box)
    assert [d.id for d in found] == expected
    assert [d.id for d in await registry.devices_in_bbox(*box, public_only=True)] == [
        pid for pid in expected if VISIBILITY[pid] == "public"
    ]


async def test_bbox_edges_are_inside(registry: RegistryRepository) -> None:
    points = await seed_places(registry)
    p = points["p-east-800"]
    corners = [
        (p.lon, p.lat, p.lon + 0.001, p.lat + 0.001),  # the point is the south-west corner
        (p.lon - 0.001, p.lat - 0.001, p.lon, p.lat),  # the north-east corner
        (p.lon - 0.001, p.lat, p.lon + 0.001, p.lat + 0.001),  # on the southern edge
        (p.lon, p.lat, p.lon, p.lat),  # a box of zero size at the point
    ]
    for box in corners:
        assert [d.id for d in await registry.devices_in_bbox(*box)] == ["p-east-800"], box
    assert await registry.devices_in_bbox(p.lon + 1e-9, p.lat, p.lon + 0.001, p.lat + 0.001) == []


async def test_spatial_arguments_are_checked(registry: RegistryRepository) -> None:
    with pytest.raises(InvalidFieldError, match="lat: 91"):
        await registry.devices_within(32.6, 91.0, 100.0)
    with pytest.raises(InvalidFieldError, match="radius_m: -1"):
        await registry.devices_within(32.6, 46.6, -1.0)
    with pytest.raises(InvalidFieldError, match=r"west: 33\.0 is east of east=32\.0"):
        await registry.devices_in_bbox(33.0, 46.0, 32.0, 47.0)


# --- audit ---------------------------------------------------------------------------------------


async def test_audit_records_every_change(registry: RegistryRepository, clock: StepClock) -> None:
    await seed(registry)
    await registry.create_device(device("d-1", notes="first note"), actor="operator:olena")
    await registry.update_device("d-1", DeviceUpdate(notes="second note"), version=1, actor="technician:taras")
    await registry.delete_device("d-1", actor="admin:iryna")

    entries = await registry.audit(Entity.DEVICE, "d-1")
    assert [(e.action, e.actor) for e in entries] == [
        (AuditAction.DELETE, "admin:iryna"),
        (AuditAction.UPDATE, "technician:taras"),
        (AuditAction.CREATE, "operator:olena"),
    ]
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    assert all(e.at.tzinfo is UTC and e.at in clock.seen for e in entries)
    delete, update, create = entries
    assert create.before is None
    assert create.after is not None
    assert (create.after["notes"], create.after["version"], create.after["kind"]) == ("first note", 1, "air")
    assert create.after["location"] == {"lon": KHERSON.lon, "lat": KHERSON.lat}
    assert create.after["install_date"] == "2026-04-02"
    assert update.before == create.after
    assert update.after is not None
    assert (update.after["notes"], update.after["version"]) == ("second note", 2)
    assert delete.before == update.after
    assert delete.after is None
    assert all(e.entity is Entity.DEVICE and e.entity_id == "d-1" for e in entries)

    gateway_entries = await registry.audit(Entity.GATEWAY, "gw-2")
    assert [e.action for e in gateway_entries] == [AuditAction.CREATE]
    assert gateway_entries[0].after is not None
    assert gateway_entries[0].after["visibility"] == "private"
    assert await registry.audit(Entity.DEVICE, "never") == []
    assert len(await registry.audit(Entity.DEVICE, "d-1", limit=2)) == 2


async def test_refused_changes_leave_no_audit_entry(registry: RegistryRepository) -> None:
    await seed(registry)
    with pytest.raises(UnknownReferenceError):
        await registry.create_device(device("d-1", gateway_id="gw-9"), actor=ACTOR)
    with pytest.raises(AlreadyExistsError):
        await registry.create_gateway(gateway("gw-1"), actor=ACTOR)
    with pytest.raises(InvalidFieldError, match="actor: "):
        await registry.update_gateway("gw-1", GatewayUpdate(name="x"), version=1, actor="")
    assert await registry.audit(Entity.DEVICE, "d-1") == []
    assert [e.action for e in await registry.audit(Entity.GATEWAY, "gw-1")] == [AuditAction.CREATE]


# --- input models (no database) ------------------------------------------------------------------


def _locs(error: ValidationError) -> list[tuple[str | int, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


def test_validation_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        GatewayCreate.model_validate(
            {"id": "GW 1", "name": "x", "organisation": "o", "location": {"lon": 200, "lat": 0}}
        )
    assert _locs(caught.value) == [("id",), ("location", "lon")]
    assert "gateway id 'GW 1' must be" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        DeviceCreate.model_validate({"id": "bad id!", "gateway_id": "gw-1", "model_id": "aq-1", "organisation": "o"})
    assert _locs(caught.value) == [("id",)]
    with pytest.raises(ValidationError) as caught:
        DeviceModelCreate.model_validate(
            {"id": "aq-1", "kind": "smell", "manufacturer": "m", "name": "n", "metrics": ["pm25", "pm99"]}
        )
    assert _locs(caught.value) == [("kind",), ("metrics",)]
    assert "unknown metric(s) 'pm99'" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        DeviceUpdate.model_validate({"gateway_id": None, "notes": None, "colour": "red"})
    assert _locs(caught.value) == [("gateway_id",), ("colour",)]
    assert "may be changed but not cleared" in str(caught.value)
    assert DeviceUpdate.model_validate({"notes": None, "location": None}).changes() == {"notes": None, "location": None}
