// The in-meeting panel: binds to the meeting through Zoom's app context, then renders the meeting's consent
// state pushed over a WebSocket (full state + version, never deltas). All texts come from zoomapp/texts.py.
// The same code runs inside Zoom and inside the simulated Zoom window: there is no other code path.
import zoomSdk from "./vendor/appssdk-0.16.41/sdk.es.js";

const CAPABILITIES = [
  "getAppContext", "getUserContext", "getMeetingUUID", "getRunningContext",
  "startRTMS", "stopRTMS", "pauseRTMS", "resumeRTMS", "getRTMSStatus", "onRTMSStatusChange",
  "authorize", "onAuthorized", "promptAuthorize", "onMyUserContextChange", "onMeeting",
  "sendAppInvitationToMeetingOwner",
];
const TOKEN_RENEW_MS = 10 * 60 * 1000; // the server's panel token lives 15 minutes
const MAX_TRANSCRIPT_LINES = 50;

const root = document.getElementById("panel");
const T = JSON.parse(document.getElementById("panel-texts").textContent);
const clientId = root.dataset.clientId;
const appName = root.dataset.appName;
const $ = (id) => document.getElementById(id);
const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");

let token = root.dataset.token || "";
let state = null;
let socket = null;
let reconnectDelay = 250;
let sdkReady = false;
const transcripts = new Map(); // share id -> [lines]
const startedInClient = new Set(); // "share:attempt" already handed to zoomSdk.startRTMS()
let inClientShare = null; // the share whose in-client start we are watching
const announcedRequests = new Set(); // request ids Zoom was asked to show the host (docs/REQUESTS.md)
// Shares this person cancelled (or stopped while starting) in this panel -> their status when they did. The
// server's "stopped" with no stream is also what a request withdrawn on their leaving, or a share never started,
// reads as: only here do we know they chose it.
const cancelledHere = new Map();

// ---- static labels ----
$("share-button").textContent = fill(T.SHARE_ACTION, { app: appName });
$("cancel-button").textContent = T.LABEL_CANCEL_REQUEST;
$("pause-button").textContent = T.LABEL_PAUSE;
$("resume-button").textContent = T.LABEL_RESUME;
$("stop-button").textContent = T.LABEL_STOP;
$("host-title").textContent = T.LABEL_HOST_CONTROLS;
$("toggle-share-label").textContent = T.TOGGLE_SHARE_WITH_APPS;
$("toggle-approval-label").textContent = T.TOGGLE_REQUIRE_APPROVAL;
$("authorize-button").textContent = T.LABEL_AUTHORIZE;
$("requests-authorize-button").textContent = T.LABEL_AUTHORIZE;
$("notices-title").textContent = T.LABEL_NOTICES;
$("active-title").textContent = T.LABEL_ACTIVE_APPS;
$("no-active").textContent = T.LABEL_NO_ACTIVE_APPS;
$("transcript-title").textContent = T.LABEL_TRANSCRIPT;
$("no-transcript").textContent = T.LABEL_NO_TRANSCRIPT;
$("approve-all").textContent = T.LABEL_APPROVE_ALL;
$("deny-all").textContent = T.LABEL_DENY_ALL;
$("disclosure").textContent = T.DISCLOSURE;

function show(el, visible) { el.hidden = !visible; }

function fatal(message) {
  $("fatal").textContent = message;
  show($("fatal"), true);
  for (const id of ["mine", "host", "active", "transcript-box"]) show($(id), false);
  root.dataset.ready = "true";
  root.dataset.failed = "true";
  root.removeAttribute("aria-busy");
}

// Lists are redrawn from each state; the button that had the keyboard focus gets it back (data-focus-key), so a
// push never drops a person's place.
function keepingFocus(container, draw) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  draw();
  if (key === undefined) return;
  const again = [...container.querySelectorAll("[data-focus-key]")].find((node) => node.dataset.focusKey === key);
  if (again) again.focus();
}

function flashError(message) {
  $("error").textContent = message;
  show($("error"), true);
}

// ---- talking to our server ----
async function api(path, body) {
  const response = await fetch(`/panel/${encodeURIComponent(clientId)}/api/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.message || `HTTP ${response.status}`), { data });
  return data;
}

function act(action, fields = {}) {
  $("error").hidden = true;
  const body = { action, ...fields };
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(body));
    return;
  }
  api("action", body).then((data) => apply(data.state, true)).catch((error) => flashError(error.message));
}

async function bindFromSdk() {
  const { context } = await zoomSdk.getAppContext();
  let name = "";
  try { name = (await zoomSdk.getUserContext()).screenName || ""; } catch (_) { /* guests and old clients */ }
  try {
    const data = await api("context", { context, name });
    token = data.token;
    if (data.theme) document.documentElement.dataset.theme = data.theme;
    apply(data.state, true);
  } catch (error) {
    fatal(error.data?.message || error.message);
    throw error;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/panel/?token=${encodeURIComponent(token)}`);
  socket.onopen = () => { reconnectDelay = 250; root.dataset.connected = "true"; };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = (event) => {
    root.dataset.connected = "false";
    if (root.dataset.failed === "true") return;
    if (event.code === 4410) return fatal(T.LEFT_MEETING); // Zoom says we left: never bind again
    if (event.code === 4401) {
      // Token refused (expired): bind again from a fresh app context, then reconnect.
      (sdkReady ? bindFromSdk().then(connect) : Promise.reject()).catch(() => fatal(T.SESSION_EXPIRED));
      return;
    }
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 5000);
  };
}

function receive(message) {
  if (message.type === "state") apply(message.state, Boolean(message.snapshot));
  else if (message.type === "transcript") addTranscript(message.share, message.lines);
  else if (message.type === "sdk_call") callSdk(message.api);
  else if (message.type === "refused") {
    if (["token", "departed"].includes(message.code) && message.action === undefined) return; // see onclose
    flashError(message.message);
  }
}

async function renewToken() {
  if (!sdkReady) return;
  try {
    await bindFromSdk();
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: "renew", token }));
  } catch (_) { /* fatal() already told the user */ }
}

// ---- Zoom's client ----
async function callSdk(apiName) {
  try {
    const result = await zoomSdk[apiName]();
    return result?.message ?? result;
  } catch (error) {
    flashError(error.message);
    return "Failure";
  }
}

async function startInClient(share) {
  // REST could not start it (the host has not authorized the app, or Zoom answered 2308): Zoom's own
  // client starts it, running Zoom's host approval.
  inClientShare = share.id;
  const result = await callSdk("startRTMS");
  if (result !== "Success") {
    inClientShare = null;
    act("in_client_result", { share: share.id, result: "failed", detail: `startRTMS: ${result}` });
  }
}

function onRtmsStatus(event) {
  if (inClientShare === null) return;
  if (event.status === "started") {
    act("in_client_result", { share: inClientShare, result: "started" });
    inClientShare = null;
  } else if (event.status === "stopped") {
    act("in_client_result", { share: inClientShare, result: "failed", detail: "stopped before it started" });
    inClientShare = null;
  }
}

// A request must reach the host even when her panel is closed, and a closed panel runs no code: Zoom shows the
// meeting owner an invitation to open the app wherever she is in the meeting (docs/REQUESTS.md).
async function announceToHost(request) {
  announcedRequests.add(request.id);
  try {
    await zoomSdk.sendAppInvitationToMeetingOwner();
  } catch (_) {
    // An older client, or do-not-disturb: the request still waits in the host's panel and the participant sees it.
  }
}

async function authorizeInClient() {
  try {
    const { state: oauthState, codeChallenge } = await api("authorize", {});
    await zoomSdk.authorize({ codeChallenge, state: oauthState });
  } catch (error) {
    flashError(error.message);
  }
}

async function onAuthorized(event) {
  if (!event || !event.code) return;
  try {
    const data = await api("authorized", { code: event.code, state: event.state || "", redirectUri: event.redirectUri });
    apply(data.state, true);
  } catch (error) {
    flashError(error.message);
  }
}

// ---- rendering ----
function statusLabel(status) {
  return T.OUTCOME_TEXTS[status] || status;
}

function button(label, onClick, className = "", focusKey = "") {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = label;
  if (className) el.className = className;
  if (focusKey) el.dataset.focusKey = focusKey;
  el.addEventListener("click", onClick);
  return el;
}

function apply(next, isSnapshot) {
  if (!next) return;
  if (state && next.version < state.version) return;
  if (state && next.version === state.version && !isSnapshot) return;
  if (!isSnapshot && state) {
    next.viewer.authorization = state.viewer.authorization; // only snapshots carry it
    next.transcript = state.transcript;
  }
  state = next;
  if (isSnapshot && next.transcript) {
    for (const [share, lines] of Object.entries(next.transcript)) transcripts.set(Number(share), lines);
  }
  render();
  if (root.dataset.loaded !== "true") {
    root.dataset.loaded = "true";
    root.removeAttribute("aria-busy");
  }
  root.dataset.version = String(state.version);
  if (socket && socket.readyState === WebSocket.OPEN) root.dataset.ready = "true";
}

function render() {
  const viewer = state.viewer;
  const guest = viewer.user_id.startsWith("guest:");
  const mine = state.shares.find((s) => s.app === clientId && s.user_id === viewer.user_id) || null;
  root.dataset.role = viewer.is_host ? "host" : guest ? "guest" : "participant";
  root.dataset.outcome = mine ? mine.status : "";
  $("role").textContent = viewer.is_host ? T.LABEL_HOST : guest ? T.LABEL_GUEST : "";
  show($("role"), viewer.is_host || guest);

  show($("disclosure"), state.disclosure);

  // The outcome line: the current state of this user's request, in docs/CONSENT.md's words.
  let outcome = "";
  if (state.meeting.ended) outcome = T.MEETING_ENDED;
  else if (guest) outcome = fill(T.GUEST_MODE, { app: appName });
  // Stopped before any stream existed (a stop of a stream keeps its id): the cancel text only when this person
  // cancelled it here; otherwise nothing of theirs happened (a request withdrawn when they left), and Share shows.
  else if (mine && mine.status === "stopped" && !mine.has_stream) {
    outcome = cancelledHere.has(mine.id) ? T.REQUEST_CANCELLED : "";
  } else if (mine) outcome = statusLabel(mine.status);
  // Forgotten once the share moves on (asked again and decided, started, …), not on a push still showing it as it
  // was when they clicked.
  if (mine && !["stopped", cancelledHere.get(mine.id)].includes(mine.status)) cancelledHere.delete(mine.id);
  $("outcome").textContent = outcome;
  $("outcome").dataset.status = mine ? mine.status : "";
  show($("outcome"), Boolean(outcome));

  // This user's own app.
  show($("mine"), !guest);
  const busy = mine && (mine.status === "pending" || mine.active);
  // Why sharing cannot start now, said before the person tries (the server refuses the same cases anyway).
  const blocked = state.meeting.ended ? T.MEETING_ENDED
    : !state.meeting.share_with_apps ? T.APPS_DISABLED
    : !state.meeting.host_present ? T.HOST_NOT_JOINED : "";
  $("share-button").disabled = Boolean(busy) || Boolean(blocked);
  show($("share-button"), !(mine && mine.active));
  $("share-reason").textContent = busy || blocked === outcome ? "" : blocked;
  show($("share-reason"), Boolean($("share-reason").textContent));
  show($("cancel-button"), Boolean(mine && mine.status === "pending"));
  $("cancel-button").dataset.share = mine ? mine.id : "";
  show($("own-controls"), Boolean(mine && mine.active));
  if (mine && mine.active) {
    show($("pause-button"), mine.status === "sharing");
    show($("resume-button"), mine.status === "paused");
    show($("stop-button"), true);
    for (const id of ["pause-button", "resume-button", "stop-button"]) $(id).dataset.share = mine.id;
  }
  if (mine && mine.status === "starting" && mine.start_path === "in_client" && !mine.has_stream) {
    const key = `${mine.id}:${mine.start_attempt}`;
    if (!startedInClient.has(key) && sdkReady) {
      startedInClient.add(key);
      startInClient(mine);
    }
  }

  if (!viewer.is_host && sdkReady) {
    for (const request of state.requests) if (!announcedRequests.has(request.id)) announceToHost(request);
  }

  keepingFocus($("requests-modal"), () => renderRequests(viewer)); // before renderHost: see its "open requests"
  renderHost(viewer);
  keepingFocus($("active-apps"), () => renderActive(viewer));
  renderTranscript(viewer);
}

function renderHost(viewer) {
  show($("host"), viewer.is_host);
  if (!viewer.is_host) return;
  $("toggle-share").checked = state.meeting.share_with_apps;
  $("toggle-approval").checked = state.meeting.require_host_approval;
  $("toggle-approval").disabled = !state.meeting.share_with_apps;
  const authorization = viewer.authorization || "unauthorized";
  show($("authorize"), authorization !== "authorized");
  $("authorize-text").textContent = fill(
    authorization === "reauthorize" ? T.AUTHORIZE_AGAIN : T.AUTHORIZE_PROMPT, { app: appName });
  const notices = $("notices");
  notices.replaceChildren(...state.notices.map((n) => {
    const li = document.createElement("li");
    li.dataset.kind = n.kind;
    li.textContent = `${T.AAN_TEXTS[n.kind] || ""}: ${fill(T.LABEL_APP_USER, { app: n.app_name, user: n.user_name })}`;
    return li;
  }));
  show($("notices-box"), state.notices.length > 0);
  const first = state.requests[0];
  $("open-requests").textContent = state.requests.length === 1
    ? fill(T.LABEL_SINGLE_REQUEST, { user: first.user_name || first.user_id, app: first.app_name })
    : fill(T.LABEL_MULTIPLE_REQUESTS, { count: state.requests.length });
  show($("open-requests"), state.requests.length > 0 && !$("requests-modal").open);
}

function renderActive(viewer) {
  // "Apps actively sharing": one that is only starting is not listed until Zoom says data flows.
  const active = state.shares.filter((s) => ["sharing", "paused", "interrupted"].includes(s.status));
  $("active-apps").replaceChildren(...active.map((s) => {
    const li = document.createElement("li");
    li.dataset.share = s.id;
    li.dataset.status = s.status;
    li.dataset.startedBy = s.started_by;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = fill(T.LABEL_APP_USER, { app: s.app_name, user: s.user_name || s.user_id });
    const badge = document.createElement("span");
    badge.className = `badge status-${s.status}`;
    badge.textContent = statusLabel(s.status);
    li.append(who, badge);
    // Everyone sees which apps started by themselves (an admin's or Zoom's auto-start), not just the host's AAN.
    if (s.started_by === "auto") li.append(Object.assign(document.createElement("span"), { className: "badge auto-started", textContent: T.LABEL_AUTO_STARTED }));
    if (viewer.is_host) {
      const disable = button(T.LABEL_DISABLE, () => act("disable", { share: s.id }), "danger small", `disable ${s.id}`);
      disable.setAttribute("aria-label", `${T.LABEL_DISABLE}: ${who.textContent}`);
      li.append(disable);
    }
    return li;
  }));
  show($("no-active"), active.length === 0);
}

function renderTranscript(viewer) {
  const mine = state.shares.filter((s) => s.user_id === viewer.user_id && s.app === clientId);
  const lines = mine.flatMap((s) => transcripts.get(s.id) || []);
  show($("transcript-box"), mine.some((s) => s.active) || lines.length > 0);
  $("transcript").replaceChildren(...lines.map((line) => {
    const li = document.createElement("li");
    const speaker = document.createElement("strong");
    speaker.textContent = `${line.user_name}: `;
    li.append(speaker, document.createTextNode(line.text));
    return li;
  }));
  show($("no-transcript"), lines.length === 0);
}

function addTranscript(shareId, lines) {
  const all = (transcripts.get(shareId) || []).concat(lines).slice(-MAX_TRANSCRIPT_LINES);
  transcripts.set(shareId, all);
  if (state) renderTranscript(state.viewer);
  root.dataset.transcriptLines = String(all.length);
}

function renderRequests(viewer) {
  const modal = $("requests-modal");
  const own = viewer.is_host ? state.requests : [];
  // Other apps' requests in this meeting: shown so the host sees them together, decided in that app's panel.
  const others = viewer.is_host ? state.other_apps.flatMap((entry) => entry.requests.map((r) => (
    { ...r, app_name: entry.app_name, other_app: true }))) : [];
  const requests = own.concat(others);
  if (requests.length === 0) {
    if (modal.open) modal.close();
    modal.dataset.kind = "";
    return;
  }
  const single = requests.length === 1;
  modal.dataset.kind = single ? "single" : "multiple";
  $("requests-title").textContent = single
    ? fill(T.LABEL_SINGLE_REQUEST, { user: requests[0].user_name || requests[0].user_id, app: requests[0].app_name })
    : fill(T.LABEL_MULTIPLE_REQUESTS, { count: requests.length });
  $("requests-list").replaceChildren(...requests.map((r) => {
    const li = document.createElement("li");
    li.dataset.request = r.id;
    if (!single) {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = fill(T.LABEL_APP_USER, { app: r.app_name, user: r.user_name || r.user_id });
      li.append(who);
    }
    const row = document.createElement("div");
    row.className = "row";
    if (r.other_app) {
      li.dataset.otherApp = "true";
      row.textContent = fill(T.LABEL_DECIDE_IN_OTHER_APP, { app: r.app_name });
    } else {
      row.append(
        button(T.LABEL_APPROVE, () => act("approve", { requests: [r.id] }), "primary", `approve ${r.id}`),
        button(T.LABEL_DENY, () => act("deny", { requests: [r.id] }), "", `deny ${r.id}`),
      );
    }
    li.append(row);
    return li;
  }));
  show($("requests-all"), own.length > 1);
  // Approving starts the app with the host's own grant; without one, Zoom would ask her a second time.
  const authorized = (viewer.authorization || "unauthorized") === "authorized";
  show($("requests-authorize"), own.length > 0 && !authorized);
  $("requests-authorize-text").textContent = fill(T.APPROVE_NEEDS_AUTHORIZATION, { app: appName });
  if (!modal.open) modal.showModal();
}

// ---- wiring ----
function cancelling(share) {
  const mine = state && state.shares.find((s) => s.id === share);
  if (mine) cancelledHere.set(share, mine.status);
}

$("share-button").addEventListener("click", () => { cancelledHere.clear(); act("request"); });
$("cancel-button").addEventListener("click", (event) => {
  const share = Number(event.currentTarget.dataset.share);
  cancelling(share);
  act("withdraw", { share });
});
for (const id of ["pause-button", "resume-button", "stop-button"]) {
  $(id).addEventListener("click", (event) => {
    const share = Number(event.currentTarget.dataset.share);
    if (id === "stop-button") cancelling(share);
    act(event.currentTarget.dataset.action, { share });
  });
}
$("toggle-share").addEventListener("change", (event) => act("set_toggles", { share_with_apps: event.target.checked }));
$("toggle-approval").addEventListener("change", (event) => act("set_toggles", { require_host_approval: event.target.checked }));
$("authorize-button").addEventListener("click", authorizeInClient);
$("requests-authorize-button").addEventListener("click", authorizeInClient);
$("approve-all").addEventListener("click", () => act("approve_all"));
$("deny-all").addEventListener("click", () => act("deny_all"));
$("open-requests").addEventListener("click", () => { if (state) { $("requests-modal").showModal(); render(); } });
$("requests-modal").addEventListener("close", () => { if (state) renderHost(state.viewer); });

async function boot() {
  if (root.dataset.refused) { fatal(root.dataset.refused); return; }
  try {
    await zoomSdk.config({ capabilities: CAPABILITIES, version: "0.16" });
    sdkReady = true;
    zoomSdk.onRTMSStatusChange(onRtmsStatus);
    zoomSdk.onAuthorized(onAuthorized);
    zoomSdk.onMyUserContextChange(() => { zoomSdk.config({ capabilities: CAPABILITIES, version: "0.16" }).then(renewToken); });
  } catch (error) {
    if (!token) { fatal(T.NOT_IN_ZOOM); return; }
  }
  try {
    if (!token) await bindFromSdk();
  } catch (_) {
    return;
  }
  connect();
  setInterval(renewToken, TOKEN_RENEW_MS);
}

boot();
