// Dashboard: static script, no build step. Talks to the Rust side only through the app's own
// commands (window.__TAURI__, withGlobalTauri) and re-reads everything on "state-changed".
// All text from the broker is inserted with textContent, never as HTML.
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);
const state = { servers: [], editing: null, openEvidence: new Set(), confirmRemove: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function when(unixSeconds) {
  if (!unixSeconds) return "";
  return new Date(unixSeconds * 1000).toLocaleString();
}

// One step of a server's auth timeline: when, whether it went well, what happened.
function timelineItem(step) {
  const again = step.repeats > 0 ? ` (and ${step.repeats} more times)` : "";
  return el("li", { class: step.ok ? "step-ok" : "step-failed" },
    el("time", { text: when(step.at) }), " ",
    el("span", { class: "step-mark", text: step.ok ? "✓" : "✗", "aria-label": step.ok ? "worked" : "failed" }), " ",
    el("span", { class: "step-kind", text: step.label }), `: ${step.detail}${again}`);
}

function expiry(s) {
  if (!s.has_token) return "none";
  if (s.needs_scope) return `needs more permissions (${s.needs_scope}): sign in again`;
  if (!s.token_expires_at) return "no expiry";
  const mins = Math.round((s.token_expires_at * 1000 - Date.now()) / 60000);
  if (mins < 0) return "expired";
  if (mins < 120) return `expires in ${mins} min`;
  return `expires ${when(s.token_expires_at)}`;
}

function hintDismissed() {
  if (state.hintDismissed) return true;
  try { return localStorage.getItem("tray-hint-dismissed") === "1"; } catch (e) { return false; }
}

function say(text) {
  $("action-status").textContent = text;
}

// ---- app status ----
async function loadStatus() {
  const st = await invoke("app_status");
  $("start-error").hidden = !st.start_error;
  $("start-error-text").textContent = st.start_error || "";
  $("config-problem").hidden = !st.config_problem;
  $("config-problem-text").replaceChildren(...(st.config_problem ? [Words.problemView(st.config_problem, "config")] : []));
  $("tray-hint-box").hidden = !st.tray_hint || hintDismissed();
  $("tray-hint").textContent = st.tray_hint || "";
  $("autostart").checked = st.autostart;
  $("gateway").textContent = st.base_url
    ? `Gateway ${st.base_url} · config ${st.config_path} · tokens in ${st.token_store}`
    : "";
  $("add-server").disabled = !!st.start_error;
  // Nothing else works without the core: show only the error.
  document.querySelector(".tabs").hidden = !!st.start_error;
  $("main").hidden = !!st.start_error;
  if (st.start_error) $("tray-hint-box").hidden = true;
  return st;
}

// ---- servers table ----
function stateCell(s) {
  const cell = el("td", { class: "health" });
  cell.append(el("span", { class: `state state-${s.state.replace(/[^a-z]+/g, "-")}`, text: s.state }));
  if (s.latency_ms !== null && s.latency_ms !== undefined) {
    cell.append(el("div", { class: "detail", text: `${s.latency_ms} ms · ${s.tools} tool${s.tools === 1 ? "" : "s"}` }));
  }
  // The era and version the server speaks ("MCP 2026-07-28 (modern)" / "MCP 2025-11-25").
  if (s.protocol) cell.append(el("div", { class: `detail protocol era-${s.era}`, text: s.protocol }));
  // What is wrong is said in the Problem column; a detail that is no problem stays here.
  if (s.detail && !s.last_error && !s.problem) cell.append(el("div", { class: "detail", text: s.detail }));
  return cell;
}

// The Problem column: one sentence and the raw cause behind "details" (words.js), else a
// failed refresh's text as it came.
function problemCell(s) {
  const cell = el("td", { class: "error detail" });
  if (s.problem) cell.append(Words.problemView(s.problem, `server:${s.name}`));
  else if (s.last_error) cell.append(s.last_error);
  return cell;
}

function actionButton(label, action, name, opts = {}) {
  return el("button", {
    type: "button",
    "data-action": action,
    "aria-label": `${label}: ${name}`,
    class: opts.class,
    disabled: opts.disabled,
    onclick: () => runAction(action, name),
  }, label);
}

function renderServers() {
  const rows = $("server-rows");
  rows.replaceChildren();
  $("servers").hidden = state.servers.length === 0;
  $("no-servers").hidden = state.servers.length !== 0;
  for (const s of state.servers) {
    const open = state.openEvidence.has(s.name);
    const flowCell = el("td", { class: "flow" },
      Words.flowView(s.flow, s.flow_term), " ",
      s.delegated ? el("span", { class: "badge-delegated", title: "Each client signs in to this server's upstream itself; the broker holds no token for it and never issues one", text: "clients sign in upstream" }) : null, s.delegated ? " " : null,
      s.via ? el("span", { class: "via", title: `Tokens come from the company sign-in to ${s.via}`, text: `via ${s.via}` }) : null, s.via ? " " : null,
      el("button", {
        type: "button", class: "linklike", "data-action": "evidence", "aria-expanded": String(open),
        "aria-controls": `evidence-${s.name}`,
        onclick: () => {
          open ? state.openEvidence.delete(s.name) : state.openEvidence.add(s.name);
          renderServers();
          focusAction(s.name, "evidence");
        },
      }, open ? "hide evidence" : "evidence"));
    const confirming = state.confirmRemove === s.name;
    const row = el("tr", { "data-server": s.name },
      el("th", { scope: "row", class: "name", text: s.name }),
      el("td", { class: "url", text: s.url }),
      flowCell,
      stateCell(s),
      el("td", { class: "token", text: expiry(s) }),
      problemCell(s),
      el("td", { class: "actions" },
        actionButton(s.sign_in_label, "signin", s.name, { disabled: !s.can_sign_in }),
        s.device_flow ? actionButton("Sign in with a code", "signin-device", s.name, { disabled: !s.can_sign_in }) : null,
        actionButton("Sign out", "signout", s.name),
        actionButton("Check now", "check", s.name),
        actionButton("Copy command", "copy-claude", s.name),
        actionButton("Edit", "edit", s.name),
        actionButton(confirming ? "Confirm remove" : "Remove", confirming ? "remove-confirm" : "remove", s.name, { class: "danger" })));
    rows.append(row);
    const d = s.device_sign_in;
    if (d) {
      rows.append(el("tr", { class: "device", id: `device-${s.name}` },
        el("td", { colspan: "7" }, "Device sign-in running: open ",
          el("code", { class: "device-uri", text: d.verification_uri_complete || d.verification_uri }),
          " on any device and confirm the code ", el("strong", { class: "device-code", text: d.user_code }),
          d.verification_uri_complete ? ` (or open ${d.verification_uri} and enter it)` : "",
          ` — it expires ${when(d.expires_at)}.`)));
    }
    if (open) {
      const items = s.flow_evidence.length ? s.flow_evidence.map((e) => el("li", { text: e })) : [el("li", { text: "No evidence yet: the first probe has not finished." })];
      const steps = s.timeline.length ? s.timeline.map(timelineItem) : [el("li", { text: "Nothing yet." })];
      rows.append(el("tr", { class: "evidence", id: `evidence-${s.name}` },
        el("td", { colspan: "7" }, el("strong", { text: `Why ${s.flow}:` }), el("ul", {}, ...items),
          s.key_client ? el("p", { class: "public-key" }, "This server's client signs with a key (private_key_jwt); the provider needs its public key. ",
            actionButton("Copy public key", "copy-key", s.name)) : null,
          el("strong", { text: "Auth timeline since the broker started:" }),
          el("ol", { class: "timeline" }, ...steps))));
    }
  }
}

async function loadServers() {
  let servers = [];
  try {
    servers = await invoke("list_servers");
  } catch (e) {
    servers = [];
  }
  const aggregate = await invoke("aggregate_setup").catch(() => null);
  // Redraw only on a real change, and keep keyboard focus on the same control.
  const text = JSON.stringify([servers, aggregate]);
  if (text === state.serversText) return;
  state.serversText = text;
  state.servers = servers;
  state.aggregate = aggregate;
  const focused = document.activeElement;
  const row = focused && focused.closest ? focused.closest("tr[data-server]") : null;
  const action = focused && focused.dataset ? focused.dataset.action : null;
  renderServers();
  renderSetup();
  if (row && action) focusAction(row.dataset.server, action);
}

async function runAction(action, name) {
  try {
    switch (action) {
      case "signin": say(await invoke("sign_in", { name })); break;
      case "signin-device": say(await invoke("sign_in", { name, device: true })); break;
      case "signout": await invoke("sign_out", { name }); say(`Signed out of ${name}.`); break;
      case "check": await invoke("check_now", { name }); say(`Checking ${name}…`); break;
      case "copy-claude": await copy(name, "claude"); break;
      case "copy-key": say(`Copied the public key of ${name} (JWK Set, thumbprint ${await invoke("copy_public_key", { name })}): paste it into the provider's client settings.`); break;
      case "edit": openForm(name, await invoke("server_form", { name })); break;
      case "remove": state.confirmRemove = name; renderServers(); focusAction(name, "remove-confirm"); return;
      case "remove-confirm": state.confirmRemove = null; await invoke("remove_server", { name }); say(`Removed ${name}.`); break;
    }
  } catch (e) {
    say(String(e));
  }
  await refresh();
}

function focusAction(name, action) {
  const b = document.querySelector(`tr[data-server="${CSS.escape(name)}"] [data-action="${action}"]`);
  if (b) b.focus();
}

async function copy(name, kind) {
  const text = await invoke("copy_snippet", { name, kind });
  say(`Copied: ${text.split("\n")[0]}${text.includes("\n") ? " …" : ""}`);
  return text;
}

// ---- add / edit form ----
const FIELDS = [
  ["f-name", "name"], ["f-url", "url"], ["f-auth-type", "auth_type"], ["f-oauth-flow", "oauth_flow"],
  ["f-client-id", "client_id"], ["f-scopes", "scopes"], ["f-authorization-url", "authorization_url"], ["f-token-url", "token_url"],
  ["f-audience", "audience"],
];

function openForm(name, form) {
  state.editing = name;
  const f = name ? { name, ...form } : {};
  for (const [id, key] of FIELDS) $(id).value = f[key] || "";
  $("f-client-secret").value = "";
  $("f-auth-value").value = "";
  $("f-client-secret").placeholder = f.client_secret_set ? "stored — leave empty to keep" : "optional";
  $("f-auth-value").placeholder = f.auth_value_set ? "stored — leave empty to keep" : "only for static tokens";
  $("form-title").textContent = name ? `Edit ${name}` : "Add server";
  $("probe-result").hidden = true;
  $("form-error").hidden = true;
  $("server-form").hidden = false;
  $("f-name").focus();
}

function closeForm() {
  $("server-form").hidden = true;
  state.editing = null;
  $("add-server").focus();
}

function formData() {
  const data = {};
  for (const [id, key] of FIELDS) data[key] = $(id).value;
  data.client_secret = $("f-client-secret").value;
  data.auth_value = $("f-auth-value").value;
  return data;
}

function showFormError(e) {
  $("form-error").textContent = String(e);
  $("form-error").hidden = false;
}

async function probe() {
  $("form-error").hidden = true;
  $("probe-result").hidden = false;
  $("probe-result").replaceChildren(el("span", { text: "Probing…" }));
  try {
    const p = await invoke("probe_server", { form: formData(), original: state.editing });
    const parts = [el("div", {}, "Discovered flow: ", el("strong", { class: "probe-flow", text: p.flow }))];
    if (p.choices.length) parts.push(el("div", { text: `Choose one of: ${p.choices.join(", ")} (set "OAuth flow" above).` }));
    parts.push(el("ul", { class: "probe-evidence" }, ...p.evidence.map((e) => el("li", { text: e }))));
    $("probe-result").replaceChildren(...parts);
  } catch (e) {
    $("probe-result").hidden = true;
    showFormError(e);
  }
}

async function save(event) {
  event.preventDefault();
  $("form-error").hidden = true;
  try {
    const applied = await invoke("save_server", { form: formData(), original: state.editing });
    say(`Saved ${$("f-name").value.trim()}.${applied ? ` ${applied[0].toUpperCase()}${applied.slice(1)}.` : ""}`);
    closeForm();
  } catch (e) {
    showFormError(e);
  }
  await refresh();
}

// ---- client setup ----
const CLIENTS = [
  ["claude", "Claude Code", "Run in a terminal:"],
  ["cursor", "Cursor", "Add to ~/.cursor/mcp.json (or the project's .cursor/mcp.json):"],
  ["vscode", "VS Code", "Add to .vscode/mcp.json (or run “MCP: Add Server”):"],
  ["url", "Any client", "The server's local URL:"],
];

function renderSetup() {
  const select = $("setup-server");
  const current = select.value;
  // "mcp" is the aggregate endpoint (no server may take that name).
  const all = state.aggregate ? [{ name: "mcp", label: state.aggregate.label, snippets: state.aggregate.snippets, unusable: state.aggregate.unusable }] : [];
  const choices = [...state.servers, ...all];
  select.replaceChildren(...choices.map((s) => el("option", { value: s.name, text: s.label || s.name })));
  if (choices.some((s) => s.name === current)) select.value = current;
  const s = choices.find((x) => x.name === select.value);
  const box = $("snippets");
  if (!s) {
    box.replaceChildren(el("p", { class: "muted", text: "Add a server first." }));
    return;
  }
  const about = s.unusable ? [el("p", { class: "muted small", text: "One endpoint for every server: tools are named SERVER__TOOL." }),
    ...s.unusable.map((why) => el("p", { class: "warn small", text: `Not usable now — ${why}` }))] : [];
  box.replaceChildren(...about, ...CLIENTS.map(([kind, title, how]) => el("div", { class: "snippet", "data-kind": kind },
    el("header", {}, el("h3", { text: title }),
      el("button", { type: "button", "data-action": `copy-${kind}`, onclick: () => copy(s.name, kind).catch((e) => say(String(e))) }, `Copy ${title} snippet`)),
    el("p", { class: "muted small", text: how }),
    el("pre", { class: "snippet-text", text: s.snippets[kind] }))));
}

// ---- local clients and activity ----
async function loadClients() {
  let list = [];
  try { list = await invoke("local_clients"); } catch (e) { /* broker not running */ }
  $("clients").hidden = list.length === 0;
  $("clients-empty").hidden = list.length !== 0;
  $("client-rows").replaceChildren(...list.map((c) => el("tr", { "data-client": c.id },
    el("th", { scope: "row", text: c.name }),
    el("td", { text: c.kind === "api_key" ? "API key" : "OAuth client" }),
    el("td", { text: c.servers.join(", ") || "none approved yet" }),
    el("td", { text: when(c.created_at) }),
    el("td", { text: when(c.last_used) || "never" }),
    el("td", {}, el("button", {
      type: "button", class: "danger", "aria-label": `Revoke ${c.name}`,
      onclick: async () => {
        try { await invoke("revoke_local_client", { id: c.id, kind: c.kind }); say(`Revoked ${c.name}.`); } catch (e) { say(String(e)); }
        await refresh();
      },
    }, "Revoke")))));
}

async function loadActivity() {
  const list = await invoke("activity");
  $("activity-empty").hidden = list.length !== 0;
  $("activity").replaceChildren(...list.map((a) => el("li", { class: `kind-${a.kind}` },
    el("time", { text: when(a.at) }), a.server ? el("strong", { text: `${a.server}: ` }) : null, a.message,
    a.repeats > 1 ? el("span", { class: "muted", text: ` (×${a.repeats})` }) : null)));
}

// ---- tabs (arrow keys move between them) ----
function selectTab(tab) {
  for (const t of document.querySelectorAll('[role="tab"]')) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  tab.focus();
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const t of tabs) {
    t.addEventListener("click", () => selectTab(t));
    t.addEventListener("keydown", (e) => {
      const i = tabs.indexOf(t);
      if (e.key === "ArrowRight") selectTab(tabs[(i + 1) % tabs.length]);
      if (e.key === "ArrowLeft") selectTab(tabs[(i - 1 + tabs.length) % tabs.length]);
      if (e.key === "Home") selectTab(tabs[0]);
      if (e.key === "End") selectTab(tabs[tabs.length - 1]);
    });
  }
}

let running = false;
let again = false;
async function refresh() {
  // Coalesce bursts of state-changed events; a change during a re-read triggers one more.
  if (running) { again = true; return; }
  running = true;
  try {
    do {
      again = false;
      const st = await loadStatus();
      if (!st.start_error) await Promise.all([loadServers(), loadClients(), loadActivity()]);
    } while (again);
  } finally {
    running = false;
  }
}

function init() {
  setupTabs();
  $("add-server").addEventListener("click", () => openForm(null, null));
  $("cancel").addEventListener("click", closeForm);
  $("probe").addEventListener("click", probe);
  $("server-form").addEventListener("submit", save);
  $("server-form").addEventListener("keydown", (e) => { if (e.key === "Escape") closeForm(); });
  $("setup-server").addEventListener("change", renderSetup);
  $("quit").addEventListener("click", () => invoke("quit"));
  $("tray-hint-dismiss").addEventListener("click", () => {
    state.hintDismissed = true;
    $("tray-hint-box").hidden = true;
    try { localStorage.setItem("tray-hint-dismissed", "1"); } catch (e) { /* storage off: this session only */ }
  });
  $("autostart").addEventListener("change", async (e) => {
    try { e.target.checked = await invoke("set_autostart", { enabled: e.target.checked }); } catch (err) { say(String(err)); }
  });
  listen("state-changed", () => refresh());
  refresh().finally(() => { document.body.dataset.ready = "true"; });
}

init();
