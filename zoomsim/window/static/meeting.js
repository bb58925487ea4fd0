// The simulated Zoom meeting window: renders the state the simulator pushes, relays the Apps panel's
// Zoom Apps SDK messages (docs/ZOOM.md §9.x) to the simulator and its answers back into the panel.
"use strict";

const boot = JSON.parse(document.getElementById("boot").textContent);
const $ = (sel) => document.querySelector(sel);
let state = null;
let socket = null;
let view = localStorage.getItem("zoomsim.view") || "gallery";
const dismissedNotices = new Set();
let panelKey = null; // "<client_id> <src>" of the iframe currently loaded
let disclosureAcknowledged = false; // Zoom closes its disclosure at once and shows it once per meeting
let openDialog = null; // {id, returnTo}: the modal up now and where the keyboard focus was before it
let focusPanelOnLoad = false; // the person opened an app: the keyboard follows into its panel

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// Re-rendering a list replaces its nodes; whatever had the keyboard focus in it gets it back (data-focus-key),
// so a refresh never drops a person's place.
function keepingFocus(container, draw) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  draw();
  if (key === undefined) return;
  const again = [...container.querySelectorAll("[data-focus-key]")].find((node) => node.dataset.focusKey === key);
  if (again) again.focus();
  else if (container.isConnected) (container.closest("[tabindex]") || $("#apps-button")).focus();
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function act(action, fields) {
  send(Object.assign({ type: "action", action }, fields || {}));
}

function connect() {
  socket = new WebSocket(boot.ws_url);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "state") applyState(message.version, message.state);
    else if (message.type === "sdk_response") postToPanel(message.client_id, { type: "apiResponse", data: message.data });
    else if (message.type === "sdk_event") postToPanel(message.client_id, { type: "event", name: message.name, data: message.data });
    else if (message.type === "toast") toast(message.text, message.kind || "info", message.title);
  };
  socket.onclose = () => {
    document.body.dataset.ready = "0";
    window.__ready = false;
    setTimeout(connect, 500); // the next connection gets a full snapshot, nothing to replay
  };
}

function applyState(version, next) {
  state = next;
  render();
  document.body.dataset.version = String(version);
  document.body.dataset.ready = "1";
  window.__version = version;
  window.__ready = true;
}

// --- Apps SDK relay -------------------------------------------------------------------------------

window.addEventListener("message", (event) => {
  const frame = $("#panel-frame");
  if (!frame || event.source !== frame.contentWindow) return;
  let call;
  try {
    call = typeof event.data === "string" ? JSON.parse(event.data) : event.data;
  } catch (error) {
    return; // not an SDK message
  }
  if (!call || !call.jsCallId || !call.apiName) return;
  send({ type: "sdk_call", client_id: frame.dataset.clientId, jsCallId: call.jsCallId, apiName: call.apiName, data: call.data === undefined ? null : call.data });
});

function postToPanel(clientId, message) {
  const frame = $("#panel-frame");
  if (!frame || frame.dataset.clientId !== clientId || !frame.contentWindow) return;
  frame.contentWindow.postMessage(message, frame.dataset.origin);
}

// --- rendering ------------------------------------------------------------------------------------

function render() {
  document.title = `${state.meeting.topic} — ${state.me.name} — Zoom (simulated)`;
  $("#topic").textContent = state.meeting.topic;
  $("#meeting-status").textContent = state.meeting.status === "ended" ? "Meeting ended" : state.me.joined ? "" : "Not in the meeting";
  document.body.dataset.role = state.me.role;
  document.body.dataset.view = view;
  keepingFocus($("#aan"), renderAan);
  keepingFocus($("#notices"), renderNotices);
  keepingFocus($("#invitations"), renderInvitations);
  renderStage();
  renderToolbar();
  renderHostTools();
  renderAppsMenu();
  renderPanel();
  renderDisclosure();
  renderRequests();
  syncDialogFocus();
}

// --- keyboard -------------------------------------------------------------------------------------
// A modal takes the focus when it opens (its first button for the disclosure; the dialog itself for a request, so
// a stray Enter decides nothing), keeps Tab inside, and gives the focus back to where it was when it closes.

const DIALOGS = ["request-multiple", "request-single", "disclosure"];

function syncDialogFocus() {
  const up = DIALOGS.find((id) => !$(`#${id}`).hidden) || null;
  if (up === (openDialog && openDialog.id)) return;
  const returnTo = openDialog ? openDialog.returnTo : document.activeElement;
  openDialog = up ? { id: up, returnTo } : null;
  if (up === "disclosure") $("#disclosure-ok").focus();
  else if (up) $(`#${up} .modal`).focus();
  else if (returnTo && returnTo.isConnected && returnTo !== document.body && !returnTo.closest("[hidden]")) returnTo.focus();
  else $("#apps-button").focus();
}

function focusables(container) {
  return [...container.querySelectorAll("button, input, [href], iframe")].filter((node) => !node.disabled && !node.closest("[hidden]"));
}

function onKeydown(event) {
  if (event.key === "Escape") {
    if (openDialog && openDialog.id === "disclosure") { event.preventDefault(); acknowledgeDisclosure(); return; }
    for (const [popover, opener] of [["#apps-menu", "#apps-button"], ["#host-tools", "#host-tools-button"]]) {
      if (!$(popover).hidden) { event.preventDefault(); $(popover).hidden = true; $(opener).focus(); return; }
    }
    if ($("#aan").dataset.open === "1" && $("#aan").contains(document.activeElement)) {
      $("#aan").dataset.open = "0";
      renderAan();
      $("#aan .aan-chip").focus();
    }
    return;
  }
  if (event.key !== "Tab" || !openDialog) return;
  const inside = focusables($(`#${openDialog.id} .modal`));
  if (!inside.length) return;
  const [first, last] = [inside[0], inside[inside.length - 1]];
  const at = document.activeElement;
  if (event.shiftKey && (at === first || !inside.includes(at))) { event.preventDefault(); last.focus(); }
  else if (!event.shiftKey && (at === last || !inside.includes(at))) { event.preventDefault(); first.focus(); }
}

function togglePopover(popover, opener) {
  const opening = $(popover).hidden;
  $(popover).hidden = !opening;
  if (opening) {
    const first = focusables($(popover))[0];
    if (first) first.focus();
  } else {
    $(opener).focus();
  }
}

function openApp(clientId) {
  $("#apps-menu").hidden = true;
  focusPanelOnLoad = true;
  act("open_app", { client_id: clientId });
}

function renderAan() {
  const aan = $("#aan");
  aan.replaceChildren();
  if (!state.active_apps.length) {
    aan.hidden = true;
    return;
  }
  aan.hidden = false;
  const open = aan.dataset.open === "1";
  aan.append(
    el("button", { class: "aan-chip", type: "button", "aria-expanded": String(open), "data-focus-key": "chip", onclick: () => { aan.dataset.open = open ? "0" : "1"; keepingFocus(aan, renderAan); } },
      el("span", { class: "aan-dot" }), `Apps (${state.active_apps.length})`),
  );
  const list = el("ul", { class: "aan-list" });
  for (const entry of state.active_apps) {
    list.append(el("li", { class: "aan-item", "data-client-id": entry.client_id, "data-user": entry.user },
      el("span", { class: "aan-app" }, entry.app),
      el("span", { class: "aan-user" }, entry.user),
      el("span", { class: "aan-content" }, entry.content),
      el("span", { class: `aan-status status-${entry.status.toLowerCase()}` }, entry.status),
      state.me.is_host && entry.status !== "Connecting"
        ? el("button", { class: "link", type: "button", "data-focus-key": `disable ${entry.client_id} ${entry.user_key}`, "aria-label": `Disable ${entry.app} for ${entry.user}`, onclick: () => act("disable_app", { client_id: entry.client_id }) }, "Disable")
        : null));
  }
  aan.append(list);
}

function renderNotices() {
  const box = $("#notices");
  box.replaceChildren();
  for (const notice of state.notices) {
    if (dismissedNotices.has(notice.id)) continue;
    box.append(el("div", { class: "notice", role: "status", "data-notice": notice.kind },
      el("div", { class: "notice-title" }, notice.text),
      el("div", { class: "notice-body" }, `${notice.app} · ${notice.user}`),
      el("button", { class: "close", type: "button", "aria-label": `Dismiss: ${notice.text}, ${notice.app}`, "data-focus-key": `notice ${notice.id}`, onclick: () => { dismissedNotices.add(notice.id); keepingFocus(box, renderNotices); } }, "×")));
  }
}

// App invitations (sendAppInvitationToMeetingOwner): Zoom's notice, shown wherever the person is in the window,
// whether or not their Apps panel is open. Announced, never grabbing focus from what the person is doing.
function renderInvitations() {
  const box = $("#invitations");
  box.replaceChildren();
  for (const invitation of state.invitations) {
    box.append(el("div", { class: "invitation", role: "group", "aria-label": invitation.text, "data-invitation-id": invitation.id, "data-client-id": invitation.client_id },
      el("p", { class: "invitation-text" }, invitation.text),
      el("div", { class: "modal-actions" },
        el("button", { type: "button", class: "secondary", "data-focus-key": `ignore ${invitation.id}`, onclick: () => act("ignore_invitation", { invitation_id: invitation.id }) }, invitation.ignore),
        el("button", { type: "button", class: "primary", "data-focus-key": `open ${invitation.id}`, onclick: () => act("open_invitation", { invitation_id: invitation.id }) }, invitation.open))));
  }
  box.hidden = !state.invitations.length;
}

function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((part) => part[0].toUpperCase()).join("");
}

function appBadges(person) {
  return person.apps.map((entry) => el("span", { class: `app-badge status-${entry.status.toLowerCase()}`, "data-app": entry.app }, `${entry.app} · ${entry.status}`));
}

function renderStage() {
  const people = state.participants.filter((person) => person.joined);
  const gallery = $("#gallery");
  const immersive = $("#immersive");
  gallery.hidden = view !== "gallery";
  immersive.hidden = view !== "immersive";
  gallery.replaceChildren();
  immersive.replaceChildren();
  gallery.style.setProperty("--columns", String(Math.ceil(Math.sqrt(Math.max(people.length, 1)))));
  for (const person of people) {
    gallery.append(el("div", { class: `tile${person.speaking ? " speaking" : ""}`, "data-key": person.key },
      el("div", { class: "avatar", style: `--hue:${person.hue}` }, initials(person.name)),
      el("div", { class: "tile-apps" }, appBadges(person)),
      el("div", { class: "nameplate" }, person.name, person.role !== "participant" ? el("span", { class: "role" }, ` (${person.role_label})`) : null)));
    immersive.append(el("figure", { class: "seat", "data-key": person.key },
      el("div", { class: "cutout", style: `--hue:${person.hue}` }, initials(person.name)),
      el("figcaption", {}, el("div", { class: "seat-name" }, person.name), el("div", { class: "seat-apps" }, appBadges(person)))));
  }
  if (!people.length) {
    const text = state.meeting.status === "ended" ? "This meeting has been ended by the host." : "Nobody is in the meeting.";
    gallery.append(el("div", { class: "empty" }, text));
  }
}

function renderToolbar() {
  const joined = state.me.joined;
  const ended = state.meeting.status === "ended";
  $("#join").hidden = joined || ended;
  $("#leave").hidden = !joined;
  $("#end").hidden = !(joined && state.me.role === "host");
  $("#speak-form").hidden = !joined;
  $("#host-tools-button").hidden = !(joined && state.me.is_host);
  $("#view-label").textContent = view === "gallery" ? "Immersive View" : "Gallery View";
}

function renderHostTools() {
  const tools = $("#host-tools");
  if (!state.me.is_host) tools.hidden = true;
  $("#share-with-apps").checked = state.settings.share_with_apps;
  $("#require-approval").checked = state.settings.require_host_approval;
}

function renderAppsMenu() {
  keepingFocus($("#apps-menu-list"), drawAppsMenu);
}

function drawAppsMenu() {
  const menu = $("#apps-menu-list");
  menu.replaceChildren();
  for (const app of state.apps) {
    menu.append(el("li", {}, el("button", { type: "button", "data-client-id": app.client_id, "data-focus-key": app.client_id, onclick: () => openApp(app.client_id) }, app.name)));
  }
  if (!state.apps.length) menu.append(el("li", { class: "muted" }, "No apps are registered."));
}

function renderPanel() {
  const panel = $("#panel");
  const info = state.panel;
  panel.hidden = !info;
  document.body.dataset.panel = info ? (info.expanded ? "expanded" : "open") : "closed";
  if (!info) {
    // Hidden at once; the iframe goes a moment later so the app still gets closeApp's answer.
    if (panelKey) setTimeout(() => { if (!panelKey) $("#panel-body").replaceChildren(); }, 2000);
    if (panelKey && panel.contains(document.activeElement)) $("#apps-button").focus(); // back to where apps open
    focusPanelOnLoad = false;
    panelKey = null;
    return;
  }
  $("#panel-title").textContent = info.name;
  const warning = $("#panel-warning");
  warning.hidden = !info.missing_headers.length && !info.error;
  warning.textContent = info.error
    ? `Could not load ${info.home_url}: ${info.error}`
    : `Missing OWASP Secure Headers:${info.missing_headers.map((h) => `"${h}"`).join("")}for URL ${info.home_url}`;
  const key = `${info.client_id} ${info.src} ${info.load_id}`;
  if (key === panelKey) return;
  panelKey = key;
  const body = $("#panel-body");
  body.replaceChildren();
  if (!info.src) {
    body.append(el("div", { class: "panel-blocked" }, info.checking ? "Loading…" : "This app cannot be displayed."));
    return;
  }
  const frame = el("iframe", { id: "panel-frame", src: info.src, "data-client-id": info.client_id, "data-origin": info.origin, title: info.name, allow: "clipboard-write" });
  frame.addEventListener("load", () => {
    if (focusPanelOnLoad && !openDialog) frame.focus();
    focusPanelOnLoad = false;
  });
  body.append(frame);
}

function renderDisclosure() {
  $("#disclosure").hidden = disclosureAcknowledged || !state.show_disclosure;
}

function acknowledgeDisclosure() {
  disclosureAcknowledged = true;
  $("#disclosure").hidden = true;
  syncDialogFocus();
  act("ack_disclosure");
}

function renderRequests() {
  const single = $("#request-single");
  const multiple = $("#request-multiple");
  const requests = state.requests;
  single.hidden = requests.length !== 1;
  multiple.hidden = requests.length < 2;
  if (requests.length === 1) {
    const request = requests[0];
    single.dataset.requestId = request.id;
    $("#request-single-text").textContent = `${request.user} would like ${request.app} to access shared real-time meeting content.`;
    $("#request-single-source").textContent = request.source === "auto" ? "Auto-start was set by an admin of another account." : "Requested from the app.";
  }
  if (requests.length > 1) keepingFocus($("#request-multiple .modal"), drawRequestList);
}

function drawRequestList() {
  const list = $("#request-multiple-list");
  list.replaceChildren();
  for (const request of state.requests) {
    list.append(el("li", { class: "request-row", "data-request-id": request.id },
      el("div", { class: "request-who" }, el("strong", {}, request.app), el("span", {}, ` requested by ${request.user}`)),
      el("div", { class: "request-actions" },
        el("button", { type: "button", class: "secondary", "data-focus-key": `deny ${request.id}`, "aria-label": `Deny ${request.app} for ${request.user}`, onclick: () => act("deny_request", { request_id: request.id }) }, "Deny"),
        el("button", { type: "button", class: "primary", "data-focus-key": `approve ${request.id}`, "aria-label": `Approve ${request.app} for ${request.user}`, onclick: () => act("approve_request", { request_id: request.id }) }, "Approve"))));
  }
  $("#request-multiple-count").textContent = `${state.requests.length} requests to access shared real-time meeting content`;
}

function toast(text, kind, title) {
  const box = $("#toasts");
  const node = el("div", { class: `toast toast-${kind}`, role: "alert" }, title ? el("strong", {}, title) : null, el("span", {}, text));
  box.append(node);
  setTimeout(() => node.remove(), 12000);
}

// --- controls -------------------------------------------------------------------------------------

function wire() {
  $("#join").addEventListener("click", () => act("join"));
  $("#leave").addEventListener("click", () => act("leave"));
  $("#end").addEventListener("click", () => act("end"));
  $("#view-button").addEventListener("click", () => {
    view = view === "gallery" ? "immersive" : "gallery";
    localStorage.setItem("zoomsim.view", view);
    if (state) render();
  });
  $("#apps-button").addEventListener("click", () => togglePopover("#apps-menu", "#apps-button"));
  $("#host-tools-button").addEventListener("click", () => togglePopover("#host-tools", "#host-tools-button"));
  document.addEventListener("keydown", onKeydown);
  $("#share-with-apps").addEventListener("change", (event) => act("settings", { share_with_apps: event.target.checked }));
  $("#require-approval").addEventListener("change", (event) => act("settings", { require_host_approval: event.target.checked }));
  $("#speak-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#speak-text");
    if (input.value.trim()) act("speak", { text: input.value.trim() });
    input.value = "";
  });
  $("#panel-close").addEventListener("click", () => { act("close_app"); $("#apps-button").focus(); });
  $("#disclosure-ok").addEventListener("click", acknowledgeDisclosure);
  $("#disclosure-view").addEventListener("click", () => { acknowledgeDisclosure(); $("#aan").dataset.open = "1"; if (state) renderAan(); });
  $("#request-single-approve").addEventListener("click", () => act("approve_request", { request_id: $("#request-single").dataset.requestId }));
  $("#request-single-deny").addEventListener("click", () => act("deny_request", { request_id: $("#request-single").dataset.requestId }));
  $("#request-approve-all").addEventListener("click", () => act("approve_all"));
  $("#request-deny-all").addEventListener("click", () => act("deny_all"));
}

wire();
connect();
