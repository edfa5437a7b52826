// First run and "Connect to <client>": the MCP clients found in the person's home, their remote
// servers imported, each client's config file pointed at the broker (a backup first; Undo puts
// it back). Kept apart from app.js: it adds its panel and the per-row buttons itself, and
// re-reads on "state-changed" like the rest of the dashboard. Text is set with textContent only.
"use strict";

(() => {
  const { invoke } = window.__TAURI__.core;
  const { listen } = window.__TAURI__.event;
  const fr = { data: null, open: false, text: "" };

  function node(tag, attrs = {}, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) n.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) n.append(c);
    return n;
  }

  function say(text) {
    const status = document.getElementById("action-status");
    if (status) status.textContent = text;
  }

  async function act(work) {
    try {
      say(await work());
    } catch (e) {
      say(String(e));
    }
    await load();
  }

  // ---- the panel: clients found, import, connect ----
  function serverItem(s) {
    const state = s.imported ? `in the broker as ${s.name}` : `new: imports as ${s.name}`;
    return node("li", { "data-server": s.name },
      node("strong", { text: s.source_name }), " ", node("code", { text: s.url }),
      node("span", { class: "muted", text: ` — ${state}` }),
      s.needs_setup ? node("div", { class: "warn small", text: `Needs setup after import: ${s.needs_setup}` }) : null);
  }

  function clientCard(c) {
    const fresh = c.servers.filter((s) => !s.imported).length;
    const imported = c.servers.filter((s) => s.imported).length + c.through_broker.length;
    const pending = c.servers.filter((s) => s.imported && !c.connected.includes(s.name)).length;
    const body = c.error
      ? [node("p", { class: "warn", text: `Cannot read this file: ${c.error}` })]
      : [
        c.servers.length || c.through_broker.length
          ? node("ul", { class: "fr-servers" }, ...c.servers.map(serverItem),
            ...c.through_broker.map((n) => node("li", { class: "fr-through" }, node("strong", { text: n }),
              node("span", { class: "muted", text: " — goes through the broker" }))))
          : node("p", { class: "muted", text: "No remote servers in this file." }),
        c.skipped.length ? node("details", { class: "small" },
          node("summary", { text: `${c.skipped.length} not importable` }),
          node("ul", {}, ...c.skipped.map((s) => node("li", { text: s })))) : null,
        node("div", { class: "buttons" },
          node("button", {
            type: "button", "data-action": "import", disabled: fresh === 0,
            onclick: () => act(() => invoke("import_client_servers", { client: c.id })),
          }, fresh ? `Import ${fresh} server${fresh === 1 ? "" : "s"}` : "Nothing new to import"),
          node("button", {
            type: "button", class: "primary", "data-action": "connect", disabled: pending === 0,
            title: imported ? "Rewrites the imported entries of this file to go through the broker; a backup is kept" : "Import its servers first",
            onclick: () => act(async () => {
              await invoke("connect_client", { client: c.id, server: null });
              return `Connected ${c.label} to the broker: see the change below.`;
            }),
          }, pending || !imported ? `Connect ${c.label}` : "Connected ✓")),
      ];
    return node("div", { class: "fr-client", "data-client": c.id },
      node("header", {}, node("h3", { text: c.label }), node("code", { class: "fr-path", text: c.path })),
      ...body);
  }

  function renderPanel() {
    const panel = document.getElementById("firstrun");
    const d = fr.data;
    panel.hidden = !fr.open || !d;
    if (!d) return;
    const list = document.getElementById("firstrun-clients");
    list.replaceChildren(...(d.clients.length ? d.clients.map(clientCard)
      : [node("p", { class: "muted", text: "No MCP client config was found (Claude Code, Claude Desktop, Cursor, VS Code, Windsurf). Add servers by hand with “Add server”, then use each server's Copy button." })]));
  }

  // ---- changes made to client files, each with its undo ----
  function entryRows(e) {
    return node("tr", {},
      node("th", { scope: "row", text: e.key }),
      node("td", {}, e.before ? node("pre", { class: "fr-before", text: e.before }) : node("span", { class: "muted", text: "(added)" })),
      node("td", {}, node("pre", { class: "fr-after", text: e.after })));
  }

  function renderChanges() {
    const box = document.getElementById("client-changes");
    const changes = fr.data ? fr.data.changes.slice(0, 5) : [];
    box.hidden = changes.length === 0;
    document.getElementById("client-changes-list").replaceChildren(...changes.map((ch) =>
      node("div", { class: "fr-change", "data-backup": ch.backup },
        node("p", {}, node("strong", { text: ch.client }), " — ", node("code", { text: ch.path }),
          node("span", { class: "muted", text: ` · ${new Date(ch.at * 1000).toLocaleString()}` })),
        node("div", { class: "table-wrap" }, node("table", { class: "fr-diff" },
          node("thead", {}, node("tr", {}, node("th", { scope: "col", text: "Entry" }),
            node("th", { scope: "col", text: "Before" }), node("th", { scope: "col", text: "After" }))),
          node("tbody", {}, ...ch.entries.map(entryRows)))),
        node("p", { class: "small" }, "To undo: the old file is kept at ", node("code", { class: "fr-backup", text: ch.backup }), " — ",
          node("button", {
            type: "button", "data-action": "undo", "aria-label": `Undo the change to ${ch.path}`,
            onclick: () => act(() => invoke("undo_client_change", { backup: ch.backup })),
          }, "Undo")))));
  }

  // ---- "Connect to <client>" on every server row ----
  function rowButtons() {
    if (!fr.data) return;
    const clients = fr.data.clients.filter((c) => !c.error);
    for (const row of document.querySelectorAll("#server-rows tr[data-server]")) {
      const name = row.dataset.server;
      const cell = row.querySelector("td.actions");
      if (!cell) continue;
      for (const old of cell.querySelectorAll(".fr-connect")) old.remove();
      const after = cell.querySelector('[data-action="copy-claude"]');
      const buttons = clients.map((c) => {
        const done = c.connected.includes(name);
        return node("button", {
          type: "button", class: "fr-connect", "data-action": "connect-client", "data-client": c.id,
          disabled: done, "aria-label": `${done ? "Connected" : "Connect"} to ${c.label}: ${name}`,
          onclick: () => act(async () => {
            await invoke("connect_client", { client: c.id, server: name });
            return `Connected ${c.label} to ${name}: see the change below the table.`;
          }),
        }, done ? `Connected to ${c.label}` : `Connect to ${c.label}`);
      });
      if (after) after.after(...buttons);
      else cell.append(...buttons);
    }
  }

  async function load() {
    let data = null;
    try { data = await invoke("first_run"); } catch (e) { data = null; }
    const text = JSON.stringify(data);
    if (data && data.show) fr.open = true;
    if (text !== fr.text) {
      fr.text = text;
      fr.data = data;
      renderChanges();
      rowButtons();
    }
    renderPanel();
  }

  function build() {
    const view = document.getElementById("view-servers");
    const head = view.querySelector(".section-head");
    const panel = node("section", { id: "firstrun", class: "card firstrun", "aria-labelledby": "firstrun-title", hidden: true },
      node("div", { class: "section-head" },
        node("h2", { id: "firstrun-title", text: "Connect your MCP clients" }),
        node("button", {
          type: "button", id: "firstrun-done", class: "quiet",
          onclick: async () => {
            fr.open = false;
            renderPanel();
            try { await invoke("finish_first_run"); } catch (e) { say(String(e)); }
          },
        }, "Done")),
      node("p", { class: "muted", text: "These MCP clients are set up on this computer. Import their remote servers into the broker, then connect each client: its config file is changed to reach those servers through the broker. Only those entries change, a backup is kept, and Undo puts the file back." }),
      node("div", { id: "firstrun-clients" }));
    view.insertBefore(panel, head);
    const changes = node("section", { id: "client-changes", class: "card", "aria-labelledby": "client-changes-title", hidden: true },
      node("h2", { id: "client-changes-title", text: "Changes to client files" }),
      node("p", { class: "muted small", text: "Restart the client (or reload its MCP servers) to use the change. Undo restores the file from its backup, as long as it was not edited since." }),
      node("div", { id: "client-changes-list" }));
    view.append(changes);
    head.querySelector("#add-server").before(node("button", {
      type: "button", id: "open-firstrun",
      onclick: () => { fr.open = true; renderPanel(); document.getElementById("firstrun-title").scrollIntoView(); },
    }, "Connect clients"));
    // app.js redraws the rows on each change: put the buttons back each time.
    new MutationObserver(rowButtons).observe(document.getElementById("server-rows"), { childList: true });
  }

  build();
  listen("state-changed", () => load());
  load();
})();
