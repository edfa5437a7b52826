// The broker's words for a person (crate::words on the Rust side): a problem as one sentence —
// what happened and what to do — with the raw cause behind a "details" toggle, and a flow's name
// with its protocol term as the detail. All text goes in with textContent, never as HTML.
"use strict";

// Which toggles are open, by key, so a redraw of the table keeps them open.
const openDetails = new Set();

function problemView(p, key) {
  const box = document.createElement("div");
  box.className = `problem problem-${p.kind}`;
  const line = document.createElement("p");
  line.className = "problem-sentence";
  line.textContent = p.sentence;
  const details = document.createElement("details");
  details.className = "problem-more";
  details.open = openDetails.has(key);
  details.addEventListener("toggle", () => {
    if (details.open) openDetails.add(key); else openDetails.delete(key);
  });
  const summary = document.createElement("summary");
  summary.textContent = "details";
  const raw = document.createElement("pre");
  raw.className = "problem-details";
  raw.textContent = p.details;
  details.append(summary, raw);
  box.append(line, details);
  return box;
}

// "Browser sign-in", with "OAuth authorization code with PKCE (authorization_code)" below it.
function flowView(name, term) {
  const wrap = document.createElement("span");
  wrap.className = "flow-words";
  const n = document.createElement("span");
  n.className = "flow-name";
  n.textContent = name;
  wrap.append(n);
  if (term) {
    const t = document.createElement("span");
    t.className = "flow-term detail";
    t.textContent = term;
    wrap.append(t);
  }
  return wrap;
}

window.Words = { problemView, flowView };
