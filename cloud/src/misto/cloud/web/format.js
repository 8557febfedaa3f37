// Misto — shared by the table (app.js) and the map (map.js): labels, units and formatting of
// readings, and a safe element builder (all text goes in through textContent).
"use strict";

const REFRESH_MS = 5000;
const STALE_MS = 5 * 60 * 1000;

const METRIC_LABELS = {
  pm25: "PM2.5", pm10: "PM10", no2: "NO₂", o3: "O₃", so2: "SO₂", co: "CO",
  temperature: "Temperature", relativeHumidity: "Relative humidity",
  atmosphericPressure: "Pressure", LAeq: "Noise (LAeq)", LAmax: "Noise peak (LAmax)",
  intensity: "Traffic", averageVehicleSpeed: "Average speed", occupancy: "Occupancy",
  occupied: "Occupied", availableSpotNumber: "Free spaces", fillingLevel: "Filling level",
  tilted: "Tilted", fireDetected: "Fire detected", peopleCount: "People",
  vehicleCount: "Vehicles", batteryLevel: "Battery", rssi: "Signal (RSSI)",
};
const METRIC_ORDER = Object.keys(METRIC_LABELS);
const UNIT_LABELS = { "ug/m3": "µg/m³", "mg/m3": "mg/m³", Cel: "°C", "1": "" };
// 0..1 ratios in the vocabulary, shown as percentages.
const PERCENT_METRICS = new Set(["relativeHumidity", "occupancy", "fillingLevel", "batteryLevel"]);

function rank(metric) {
  const index = METRIC_ORDER.indexOf(metric);
  return index === -1 ? METRIC_ORDER.length : index;
}

function byRank(readings) {
  return [...readings].sort((a, b) => rank(a.metric) - rank(b.metric));
}

function element(tag, attributes = {}, text = undefined) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatValue(value) {
  const digits = Math.abs(value) >= 100 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}

// A reading as shown: { label, value, unit } (ratios as percentages, units in their usual form).
function shownReading(reading) {
  const percent = PERCENT_METRICS.has(reading.metric) && reading.unit === "1";
  return {
    label: METRIC_LABELS[reading.metric] ?? reading.metric,
    value: formatValue(percent ? reading.value * 100 : reading.value),
    unit: percent ? "%" : UNIT_LABELS[reading.unit] ?? reading.unit,
    percent,
  };
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}
