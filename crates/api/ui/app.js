// Tiffin's status page: asks for the admin key, then reads GET /admin/overview every second
// and updates the tables in place (rows keyed by id, so a button stays put between refreshes).
"use strict";

const KEY = "tiffin-admin-key";
const REFRESH_MS = 1000;
const $ = (id) => document.getElementById(id);
let timer = null;
let busy = false; // a refresh is in flight
let again = false; // and another was asked for meanwhile

function adminKey() {
  return sessionStorage.getItem(KEY);
}

// An admin request; a refused key sends the operator back to the key form.
async function call(method, path) {
  const res = await fetch(path, { method, headers: { "x-admin-key": adminKey() || "" } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) {
    forget("The admin key was refused (" + (body.code || "401") + ").");
    throw new Error("admin key refused");
  }
  if (!res.ok) throw new Error(body.error || method + " " + path + ": " + res.status);
  return body;
}

function forget(message) {
  sessionStorage.removeItem(KEY);
  clearTimeout(timer);
  timer = null;
  $("status").hidden = true;
  $("forget").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("admin-key").focus();
}

function show() {
  $("login").hidden = true;
  $("status").hidden = false;
  $("forget").hidden = false;
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  timer = null;
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    render(await call("GET", "admin/overview"));
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    $("updated").classList.remove("stale");
  } catch (e) {
    $("updated").textContent = e.message;
    $("updated").classList.add("stale");
  } finally {
    busy = false;
  }
  if (!adminKey()) return;
  if (again) {
    again = false;
    refresh();
  } else {
    timer = setTimeout(refresh, REFRESH_MS);
  }
}

// ---- formatting ----

function ago(secs) {
  if (secs == null) return "";
  const s = Math.floor(secs);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function short(id) {
  return String(id).slice(0, 8);
}

// ---- DOM helpers ----

// Makes the rows of `table` those of `items`, in order, reusing each row with the same key.
function syncRows(table, items, keyOf, fill) {
  const body = table.tBodies[0];
  const old = new Map(Array.from(body.rows, (r) => [r.dataset.key, r]));
  items.forEach((item, i) => {
    const key = String(keyOf(item));
    let row = old.get(key);
    if (row) old.delete(key);
    else {
      row = document.createElement("tr");
      row.dataset.key = key;
    }
    fill(row, item);
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
  });
  old.forEach((row) => row.remove());
  $(table.id + "-empty").hidden = items.length > 0;
}

// The row's cells by class name, created on first use in the order given.
function cells(row, names) {
  if (row.cells.length !== names.length) {
    row.replaceChildren(...names.map((n) => {
      const td = document.createElement("td");
      td.className = n;
      return td;
    }));
  }
  return Object.fromEntries(names.map((n, i) => [n, row.cells[i]]));
}

function text(td, value, title) {
  const s = value == null ? "" : String(value);
  if (td.textContent !== s) td.textContent = s;
  if (title !== undefined && td.title !== title) td.title = title;
}

// The action buttons of a job in `status` (rebuilt only when its status changes).
function actions(td, id, status) {
  if (td.dataset.shown === status) return;
  td.dataset.shown = status;
  const buttons = [];
  if (status === "RUNNING") buttons.push(button("cancel", id, "Cancel job " + short(id) + "?"));
  if (status === "FAILED") buttons.push(button("retry", id, null));
  td.replaceChildren(...buttons);
}

function button(action, id, confirmText) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = action;
  b.textContent = action;
  b.addEventListener("click", async () => {
    if (confirmText && !confirm(confirmText)) return;
    b.disabled = true;
    try {
      await call("POST", "admin/jobs/" + id + "/" + action);
    } catch (e) {
      if (adminKey()) alert(action + " failed: " + e.message);
    }
    refresh();
  });
  return b;
}

// ---- the tables ----

function render(o) {
  const running = o.jobs.filter((j) => j.status === "RUNNING").length;
  const alive = o.agents.filter((a) => a.alive).length;
  const queued = o.queues.reduce((n, q) => n + q.ready, 0);
  const n = (count, what) => count + " " + what + (count === 1 ? "" : "s");
  $("summary").textContent =
    running + " running · " + alive + " of " + n(o.agents.length, "agent") + " alive · " +
    n(queued, "task") + " queued · " + n(o.failures.length, "recent failure");

  syncRows($("jobs"), o.jobs, (j) => j.id, (row, j) => {
    const c = cells(row, ["id", "tenant", "kind", "status", "stage", "segments", "progress",
      "age", "actions"]);
    text(c.id, short(j.id), j.id);
    text(c.tenant, j.tenant);
    text(c.kind, j.kind);
    text(c.status, j.status, j.error || "");
    c.status.dataset.status = j.status;
    text(c.stage, j.stage || "");
    text(c.segments, j.segments ? j.proven + "/" + j.segments : "");
    let bar = c.progress.firstChild;
    if (!bar) bar = c.progress.appendChild(document.createElement("progress"));
    bar.max = j.steps_total;
    bar.value = j.status === "SUCCEEDED" ? j.steps_total : j.steps_done;
    bar.title = j.steps_done + " of " + j.steps_total + " steps";
    text(c.age, ago(j.age_secs));
    actions(c.actions, j.id, j.status);
  });

  syncRows($("agents"), o.agents, (a) => a.agent, (row, a) => {
    const c = cells(row, ["agent", "kinds", "host", "alive", "seen", "task"]);
    text(c.agent, a.agent);
    text(c.kinds, a.kinds.join(", "));
    text(c.host, a.host || "");
    text(c.alive, a.alive ? "alive" : "dead");
    c.alive.dataset.status = a.alive ? "alive" : "dead";
    text(c.seen, ago(a.seconds_since_seen) + " ago");
    const tasks = a.tasks.map((t) => t.kind + " " + t.task + " of " + short(t.job));
    text(c.task, tasks.length ? tasks.join("; ") : "idle");
  });

  syncRows($("queues"), o.queues, (q) => q.tenant + "/" + q.kind, (row, q) => {
    const c = cells(row, ["tenant", "kind", "ready", "running"]);
    text(c.tenant, q.tenant);
    text(c.kind, q.kind);
    text(c.ready, q.ready);
    text(c.running, q.running);
  });

  syncRows($("failures"), o.failures, (f) => f.job, (row, f) => {
    const c = cells(row, ["id", "tenant", "code", "error", "task", "ended", "actions"]);
    text(c.id, short(f.job), f.job);
    text(c.tenant, f.tenant);
    text(c.code, f.code || "");
    text(c.error, f.error, f.error);
    text(c.task, f.task_kind || "");
    text(c.ended, f.ended_secs_ago == null ? "" : ago(f.ended_secs_ago) + " ago");
    actions(c.actions, f.job, "FAILED");
  });
}

// ---- start ----

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = $("admin-key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("admin-key").value = "";
  $("login-error").textContent = "";
  show();
});
$("forget").addEventListener("click", () => forget(""));

if (adminKey()) show();
else forget("");
