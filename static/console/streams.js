// Live streams table: the server pushes the full table (never a delta) over the console socket; we redraw it.
// The table carries data-version (last applied push) and #live-status data-connected, for people and tests.
const table = document.getElementById("streams");
const body = table.querySelector("tbody");
const status = document.getElementById("live-status");

function cell(text, className, title) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (title) td.title = title;
  td.textContent = text;
  return td;
}

function rates(row) {
  if (row.state === "stopped") return "—";
  if (!row.rates) return "measuring…";
  const r = row.rates;
  return `audio ${r.audio_kbps} kbit/s · video ${r.video_fps} fps · transcript ${r.transcript_per_min}/min · chat ${r.chat_per_min}/min`;
}

function render(snapshot) {
  const rows = snapshot.streams.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.stream = row.stream_id;
    tr.dataset.state = row.state;
    const state = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = `badge state-${row.state}`;
    badge.textContent = row.state;
    state.append(badge);
    if (row.stop_reason_label) {
      state.append(" ", Object.assign(document.createElement("span"),
                                      { className: "muted stop-reason", textContent: row.stop_reason_label }));
    }
    tr.append(cell(row.meeting, "", `Meeting UUID ${row.meeting_uuid}`), cell(row.app), cell(row.app_user), state,
              cell(row.worker || "—", "worker", row.owner_worker ? `Worker id ${row.owner_worker}` : ""),
              cell(row.since.slice(0, 19).replace("T", " "), "nowrap"), cell(rates(row), "rates"));
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell("No stream is running in your account's meetings.", "muted");
    td.colSpan = 7;
    tr.append(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  table.dataset.version = String(snapshot.version);
}

let retry = 500;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/console/streams`);
  socket.addEventListener("open", () => {
    retry = 500;
    status.textContent = "live";
    status.dataset.connected = "true";
  });
  socket.addEventListener("message", (event) => render(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    status.dataset.connected = "false";
    if (event.code === 4403) {
      status.textContent = "signed out: reload the page";
      return;
    }
    status.textContent = "reconnecting…";
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  });
}
connect();
