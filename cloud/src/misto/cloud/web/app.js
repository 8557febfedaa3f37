// Misto — live sensors: lists every device with its latest readings, refreshed every 5 s.
// Vanilla JS, no build step, no third-party code. All text goes in through textContent.
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

function timeCell(iso, now) {
  const when = new Date(iso);
  const cell = element("td", { class: "time" });
  const time = element("time", { datetime: iso, title: when.toString() }, when.toLocaleTimeString());
  cell.append(time);
  if (now - when.getTime() > STALE_MS) cell.append(document.createTextNode(" (stale)"));
  return cell;
}

// One table for every device: a <tbody> per device, headed by a row-group header.
function readingsTable(devices, now) {
  const table = element("table");
  table.append(element("caption", {}, "Latest reading of each sensor, grouped by device"));
  const head = element("thead");
  const headRow = element("tr");
  headRow.append(element("th", { scope: "col" }, "Metric"));
  headRow.append(element("th", { scope: "col", class: "value" }, "Value"));
  headRow.append(element("th", { scope: "col" }, "Unit"));
  headRow.append(element("th", { scope: "col" }, "Measured"));
  head.append(headRow);
  table.append(head);
  for (const device of devices) table.append(deviceRows(device, now));
  return table;
}

function deviceRows(device, now) {
  const body = element("tbody", { class: "device" });
  const headRow = element("tr", { class: "device-head" });
  const header = element("th", { scope: "rowgroup", colspan: "4" });
  header.append(element("span", { class: "device-id" }, device.device));
  header.append(element("span", { class: "device-meta" },
    `gateway ${device.gateway} · last reading ${new Date(device.last_seen).toLocaleString()}`));
  headRow.append(header);
  body.append(headRow);

  const readings = [...device.readings].sort((a, b) => rank(a.metric) - rank(b.metric));
  for (const reading of readings) {
    const row = element("tr");
    if (now - new Date(reading.ts).getTime() > STALE_MS) row.classList.add("stale");
    // Human label first, then the name and unit the API uses (the key to the open data).
    const label = element("th", { scope: "row" }, METRIC_LABELS[reading.metric] ?? reading.metric);
    if (METRIC_LABELS[reading.metric]) label.append(element("code", { class: "id" }, reading.metric));
    row.append(label);
    const percent = PERCENT_METRICS.has(reading.metric) && reading.unit === "1";
    const value = element("td", { class: "value" }, formatValue(percent ? reading.value * 100 : reading.value));
    value.title = String(reading.value);
    row.append(value);
    const shown = percent ? "%" : UNIT_LABELS[reading.unit] ?? reading.unit;
    const unit = element("td", {}, shown);
    if (shown !== reading.unit) {
      unit.append(element("code", { class: "id" }, percent ? "1 = 100 %" : reading.unit));
    }
    row.append(unit);
    row.append(timeCell(reading.ts, now));
    body.append(row);
  }
  return body;
}

// The status is a live region: change its text only when it means something new, so that
// screen readers are not interrupted every 5 s. The refresh time goes in a separate element.
function setStatus(text, isError) {
  const status = document.getElementById("status");
  if (status.textContent !== text) status.textContent = text;
  status.parentElement.classList.toggle("error", isError);
}

async function refresh() {
  try {
    const response = await fetch("/api/v1/devices", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(`the API answered ${response.status}`);
    const devices = await response.json();
    const now = Date.now();
    const main = document.getElementById("devices");
    if (devices.length === 0) {
      main.replaceChildren(element("p", { class: "empty" },
        "No readings yet. Devices appear here as soon as their gateway sends data."));
    } else {
      main.replaceChildren(readingsTable(devices, now));
    }
    const count = devices.length;
    setStatus(`${count} device${count === 1 ? "" : "s"}`, false);
    document.getElementById("updated").textContent = `· updated ${new Date(now).toLocaleTimeString()}`;
  } catch (error) {
    setStatus(`Could not load readings (${error.message}); retrying in ${REFRESH_MS / 1000} s.`, true);
  }
}

async function loop() {
  if (!document.hidden) await refresh();
  setTimeout(loop, REFRESH_MS);
}

document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
loop();
