// Misto — the citizens' sensor map (Leaflet, vendored under /static/vendor/leaflet): the city's
// public geospatial layers with a layer switcher, and the public sensors where they stand, each a
// keyboard-focusable marker whose popup shows its latest readings and status. It reads only public
// endpoints: what they leave out (private devices, restricted layers) never reaches the page.
// Without Leaflet or JavaScript the page is the table alone.
"use strict";

const MAP_REFRESH_MS = 30_000; // the registry's devices and their status; readings come every 5 s
const PAGE_SIZE = 10_000; // features per request (the API's maximum)

const KIND_LABELS = {
  air: "Air quality", noise: "Noise", traffic: "Traffic", parking: "Parking",
  waste: "Waste", camera: "Camera", device: "Device",
};
// Drawn bottom to top; the layers not listed come after. `on`: shown when the page opens.
const LAYER_STYLES = {
  districts: { on: true, style: { color: "#6e40c9", weight: 2, dashArray: "6 4", fillOpacity: 0.04 } },
  land_parcels: { on: false, style: { color: "#8c6d1f", weight: 1, fillOpacity: 0.08 } },
  natural_resources: { on: true, style: { color: "#1f6f8b", weight: 1, fillColor: "#4aa3c0", fillOpacity: 0.3 } },
  green_areas: { on: true, style: { color: "#2d7d2d", weight: 1, fillColor: "#5cb85c", fillOpacity: 0.35 } },
  carriageways: { on: false, style: { color: "#6b6b6b", weight: 1, fillColor: "#9a9a9a", fillOpacity: 0.4 } },
  pavements: { on: false, style: { color: "#b08d57", weight: 2 } },
  buildings: { on: true, style: { color: "#7a4b3a", weight: 1, fillColor: "#c98b6b", fillOpacity: 0.5 } },
  streets: { on: true, style: { color: "#d9822b", weight: 4, opacity: 0.9 } },
  monuments: { on: true, style: { color: "#a4262c", weight: 2, fillColor: "#e0565b", fillOpacity: 0.9 } },
};
const DRAW_ORDER = Object.keys(LAYER_STYLES);
const DEFAULT_STYLE = { on: true, style: { color: "#3b6ea5", weight: 2, fillOpacity: 0.2 } };
// Feature properties worth showing first in a feature's popup; others follow, "synthetic" last.
const TITLE_KEYS = ["name", "address", "cadastral_number", "street_id"];

const state = {
  map: null,
  sensors: null, // the markers' layer group
  markers: new Map(), // device id -> L.Marker
  registry: new Map(), // device id -> the open-data feature (public devices only)
  status: new Map(), // device id -> { state, last_seen }
  readings: new Map(), // device id -> { gateway, last_seen, readings } from /api/v1/devices
  fitted: false,
};

function escapeHtml(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span.innerHTML;
}

function setMapStatus(text, isError) {
  const status = document.getElementById("map-status");
  if (status.textContent !== text) status.textContent = text;
  status.classList.toggle("error", isError);
}

// --- layers ------------------------------------------------------------------------------------

async function layerFeatures(layer) {
  const features = [];
  let after = null;
  do {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (after !== null) query.set("after", after);
    const page = await getJson(`/api/v1/layers/${encodeURIComponent(layer)}?${query}`);
    features.push(...page.features);
    after = page.next_after;
  } while (after !== null);
  return features;
}

function featurePopup(summary, feature) {
  const properties = feature.properties ?? {};
  const titleKey = TITLE_KEYS.find((key) => typeof properties[key] === "string");
  const box = element("div", { class: "feature-popup" });
  box.append(element("h3", {}, titleKey ? properties[titleKey] : String(feature.id)));
  box.append(element("p", { class: "popup-kind" }, summary.title));
  const list = element("dl");
  for (const [key, value] of Object.entries(properties)) {
    if (key === titleKey || key === "synthetic" || value === null || typeof value === "object") continue;
    list.append(element("dt", {}, key.replaceAll("_", " ")), element("dd", {}, String(value)));
  }
  if (list.childElementCount) box.append(list);
  if (properties.synthetic === true) box.append(element("p", { class: "note" }, "Synthetic sample data"));
  return box;
}

function layerOf(summary, features) {
  const { style } = LAYER_STYLES[summary.layer] ?? DEFAULT_STYLE;
  const className = `map-feature layer-${summary.layer}`;
  return L.geoJSON({ type: "FeatureCollection", features }, {
    style: () => ({ ...style, className }),
    pointToLayer: (_feature, latlng) => L.circleMarker(latlng, { ...style, radius: 6, className }),
    onEachFeature: (feature, layer) => layer.bindPopup(() => featurePopup(summary, feature)),
  });
}

async function loadLayers(control) {
  const { layers } = await getJson("/api/v1/layers");
  const shown = layers.filter((summary) => summary.feature_count > 0);
  const rank = (name) => (DRAW_ORDER.includes(name) ? DRAW_ORDER.indexOf(name) : DRAW_ORDER.length);
  shown.sort((a, b) => rank(a.layer) - rank(b.layer));
  const loaded = await Promise.all(shown.map(async (summary) => [summary, await layerFeatures(summary.layer)]));
  const groups = [];
  for (const [summary, features] of loaded) {
    const group = layerOf(summary, features);
    if ((LAYER_STYLES[summary.layer] ?? DEFAULT_STYLE).on) group.addTo(state.map);
    // The switcher puts the name in as HTML: escape it.
    control.addOverlay(group, `${escapeHtml(summary.title)} <span class="count">(${features.length})</span>`);
    groups.push(group);
  }
  return groups;
}

// --- sensors -----------------------------------------------------------------------------------

function lastSeenText(iso) {
  if (!iso) return "never";
  return new Date(iso).toLocaleString();
}

function sensorState(id) {
  return state.status.get(id)?.state ?? "offline";
}

function sensorLastSeen(id) {
  const live = state.readings.get(id)?.last_seen;
  const known = state.status.get(id)?.last_seen;
  if (live && known) return new Date(live) > new Date(known) ? live : known;
  return live ?? known ?? null;
}

function sensorPopup(id) {
  const feature = state.registry.get(id);
  const properties = feature?.properties ?? {};
  const live = state.readings.get(id);
  const box = element("div", { class: "sensor-popup", "data-device": id });
  box.append(element("h3", {}, id));
  const kind = KIND_LABELS[properties.kind] ?? properties.kind ?? "Sensor";
  const where = properties.district ? ` · ${properties.district}` : "";
  box.append(element("p", { class: "popup-kind" }, `${kind} sensor${where}`));
  const now = sensorState(id);
  const status = element("p", { class: `popup-state state-${now}` });
  status.append(element("strong", {}, now === "online" ? "Online" : "Offline"));
  status.append(document.createTextNode(` · last seen ${lastSeenText(sensorLastSeen(id))}`));
  box.append(status);
  if (live && live.readings.length) {
    const list = element("dl", { class: "values" });
    for (const reading of byRank(live.readings)) {
      const shown = shownReading(reading);
      const value = element("dd", {}, shown.unit ? `${shown.value} ${shown.unit}` : shown.value);
      value.title = `${reading.value} ${reading.unit} at ${new Date(reading.ts).toLocaleString()}`;
      list.append(element("dt", {}, shown.label), value);
    }
    box.append(list);
  } else {
    box.append(element("p", { class: "note" }, "No readings yet."));
  }
  if (properties.organisation) box.append(element("p", { class: "note" }, `Operated by ${properties.organisation}`));
  return box;
}

function markerLabel(id) {
  const kind = KIND_LABELS[state.registry.get(id)?.properties?.kind] ?? "Sensor";
  return `${id}: ${kind} sensor, ${sensorState(id)}. Press Enter for its readings.`;
}

function markerIcon(id) {
  const kind = state.registry.get(id)?.properties?.kind ?? "device";
  const glyph = element("span", { class: "glyph", "aria-hidden": "true" }, (KIND_LABELS[kind] ?? "S")[0]);
  return L.divIcon({
    className: `sensor-marker kind-${kind} state-${sensorState(id)}`,
    html: glyph,
    iconSize: [26, 26],
    popupAnchor: [0, -12],
  });
}

function decorate(id, marker) {
  const node = marker.getElement();
  if (!node) return;
  node.dataset.device = id;
  node.setAttribute("aria-label", markerLabel(id));
}

// Markers for the public devices with a location: added, moved, restyled or removed to match.
function syncMarkers() {
  for (const [id, marker] of state.markers) {
    if (!state.registry.has(id)) {
      state.sensors.removeLayer(marker);
      state.markers.delete(id);
    }
  }
  for (const [id, feature] of state.registry) {
    const [lon, lat] = feature.geometry.coordinates;
    let marker = state.markers.get(id);
    if (!marker) {
      marker = L.marker([lat, lon], { icon: markerIcon(id), keyboard: true, title: id, riseOnHover: true });
      marker.bindPopup(() => sensorPopup(id), { maxWidth: 320 });
      marker.on("add", () => decorate(id, marker));
      state.markers.set(id, marker);
      state.sensors.addLayer(marker);
    } else {
      marker.setLatLng([lat, lon]);
      const wanted = `state-${sensorState(id)}`;
      if (!marker.getElement()?.classList.contains(wanted)) marker.setIcon(markerIcon(id));
    }
    decorate(id, marker);
  }
}

// An open popup gets the new readings in place (not popup.update(), which would pan the map back
// to it), and only when they changed, so that a screen reader is not interrupted for nothing.
function refreshOpenPopups() {
  for (const [id, marker] of state.markers) {
    decorate(id, marker);
    const content = marker.isPopupOpen() && marker.getPopup().getElement()?.querySelector(".leaflet-popup-content");
    if (!content) continue;
    const fresh = sensorPopup(id);
    if (content.textContent !== fresh.textContent) content.replaceChildren(fresh);
  }
}

async function refreshSensors() {
  const [devices, statuses] = await Promise.all([
    getJson("/api/v1/open-data/devices.geojson"),
    getJson("/api/v1/open-data/device-status"),
  ]);
  state.registry = new Map(
    devices.features.filter((feature) => feature.geometry).map((feature) => [String(feature.id), feature]),
  );
  state.status = new Map(statuses.map((s) => [s.device, s]));
  syncMarkers();
  refreshOpenPopups();
  const count = state.registry.size;
  const online = [...state.registry.keys()].filter((id) => sensorState(id) === "online").length;
  setMapStatus(`${count} public sensor${count === 1 ? "" : "s"} on the map, ${online} online`, false);
}

// --- the map -----------------------------------------------------------------------------------

function fitOnce(groups) {
  if (state.fitted) return;
  const bounds = L.latLngBounds([]);
  for (const group of [...groups, state.sensors]) {
    const extent = group.getBounds?.();
    if (extent?.isValid()) bounds.extend(extent);
  }
  if (bounds.isValid()) {
    state.map.fitBounds(bounds, { padding: [16, 16], maxZoom: 16 });
    state.fitted = true;
  }
}

async function start() {
  if (!window.L) return; // no Leaflet: the table alone
  const section = document.getElementById("map-section");
  let config;
  try {
    config = (await getJson("/api/v1/web-config")).map;
  } catch (error) {
    return; // no settings: the table alone
  }
  section.hidden = false;
  const map = L.map("map", { center: [config.centre.lat, config.centre.lon], zoom: config.zoom, keyboard: true });
  state.map = map;
  map.getContainer().setAttribute("aria-label", "Map of the city's public sensors and layers");
  const bases = {};
  if (config.tiles_url) {
    bases["Base map"] = L.tileLayer(config.tiles_url, { attribution: config.attribution, maxZoom: 19 }).addTo(map);
  } else {
    map.getContainer().classList.add("no-tiles");
  }
  const narrow = window.matchMedia("(max-width: 40rem)").matches;
  const control = L.control.layers(bases, {}, { collapsed: narrow }).addTo(map);
  state.sensors = L.featureGroup().addTo(map);
  control.addOverlay(state.sensors, "Sensors");
  L.control.scale({ imperial: false }).addTo(map);

  const [layers, sensors] = await Promise.allSettled([loadLayers(control), refreshSensors()]);
  if (layers.status === "rejected") {
    setMapStatus(`Could not load the city's layers (${layers.reason.message}); reload the page to try again.`, true);
  } else if (sensors.status === "rejected") {
    setMapStatus(`Could not load the sensors (${sensors.reason.message}); retrying in ${MAP_REFRESH_MS / 1000} s.`, true);
  }
  fitOnce(layers.status === "fulfilled" ? layers.value : []);
  setInterval(async () => {
    if (document.hidden) return;
    try {
      await refreshSensors();
      fitOnce([]);
    } catch (error) {
      setMapStatus(`Could not refresh the sensors (${error.message}); retrying in ${MAP_REFRESH_MS / 1000} s.`, true);
    }
  }, MAP_REFRESH_MS);
}

// The table's refresh (app.js) brings the readings: keep them for the popups.
document.addEventListener("misto:devices", (event) => {
  state.readings = new Map(event.detail.map((device) => [device.device, device]));
  if (state.map) refreshOpenPopups();
});
start();
