// Misto — the live table: every device the public may see with its latest readings, refreshed
// every 5 s. Each refresh is also handed to the map (map.js) as a "misto:devices" event.
// Vanilla JS, no build step. All text goes in through textContent.
"use strict";

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
  const body = element("tbody", { class: "device", "data-device": device.device });
  const headRow = element("tr", { class: "device-head" });
  const header = element("th", { scope: "rowgroup", colspan: "4" });
  header.append(element("span", { class: "device-id" }, device.device));
  header.append(element("span", { class: "device-meta" },
    `gateway ${device.gateway} · last reading ${new Date(device.last_seen).toLocaleString()}`));
  headRow.append(header);
  body.append(headRow);

  for (const reading of byRank(device.readings)) {
    const row = element("tr");
    if (now - new Date(reading.ts).getTime() > STALE_MS) row.classList.add("stale");
    const shown = shownReading(reading);
    // Human label first, then the name and unit the API uses (the key to the open data).
    const label = element("th", { scope: "row" }, shown.label);
    if (METRIC_LABELS[reading.metric]) label.append(element("code", { class: "id" }, reading.metric));
    row.append(label);
    const value = element("td", { class: "value" }, shown.value);
    value.title = String(reading.value);
    row.append(value);
    const unit = element("td", {}, shown.unit);
    if (shown.unit !== reading.unit) {
      unit.append(element("code", { class: "id" }, shown.percent ? "1 = 100 %" : reading.unit));
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
    const devices = await getJson("/api/v1/devices");
    const now = Date.now();
    const holder = document.getElementById("readings");
    if (devices.length === 0) {
      holder.replaceChildren(element("p", { class: "empty" },
        "No readings yet. Devices appear here as soon as their gateway sends data."));
    } else {
      holder.replaceChildren(readingsTable(devices, now));
    }
    const count = devices.length;
    setStatus(`${count} device${count === 1 ? "" : "s"} reporting`, false);
    document.getElementById("updated").textContent = `· updated ${new Date(now).toLocaleTimeString()}`;
    document.dispatchEvent(new CustomEvent("misto:devices", { detail: devices }));
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
