// app.js — keeps every Tidings page live: the info box, lists that update
// themselves, item forms that mark what someone else changed, and one
// connection per browser shared by all its tabs.
//
// Nothing here builds HTML from strings: every value goes into the page as
// text (textContent, attributes), and the Content-Security-Policy with
// Trusted Types makes the browser refuse anything else.

import { TidingsClient } from "./tidings.js";
import { api, describeError, setupForms } from "./forms.js";
import { el, renderTodo, renderNote, renderAppointment, renderMember, renderProject } from "./render.js";

const body = document.body;
const me = { login: body.dataset.user, id: Number(body.dataset.userId), tz: body.dataset.timeZone || "UTC" };
const pageProject = Number(body.dataset.project || 0);
const [itemKind, itemIDText] = (body.dataset.item || "").split(" ");
const pageItem = itemKind ? { kind: itemKind, id: Number(itemIDText) } : null;

const FADE_MS = 8000;
const URGENT_KEY = "tidings.urgent";
const seen = new Set(); // message ids this tab has handled
let lastCursor = body.dataset.cursor || null;

// ---- the connection: one per browser --------------------------------------

const channelName = `tidings:${me.id}`;
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(channelName) : null;
let leader = false;
let client = null;

function setConnection(online) {
  body.dataset.connection = online ? "online" : "offline";
}

function startClient(since) {
  leader = true;
  client = new TidingsClient({
    since,
    onMessage(m) {
      channel?.postMessage({ type: "message", message: m });
      handleMessage(m);
    },
    onMissed(n) {
      channel?.postMessage({ type: "missed", missed: n, cursor: client.cursor });
      handleMissed(n);
    },
    onReset() {
      channel?.postMessage({ type: "missed", missed: null, cursor: null });
      handleMissed(null);
    },
    onState(s) {
      channel?.postMessage({ type: "state", online: s.online });
      setConnection(s.online);
    },
    onError(err) {
      if (err.code === "unauthorized") location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    },
  });
  client.start();
  // The lock is held as long as the tab lives: the promise never settles.
  return new Promise(() => {});
}

// A tab that is not the leader listens to the leader; it first asks the
// server, once and without holding, for what happened between its page load
// and now, which the leader may have passed on before this tab listened.
async function follow() {
  try {
    const q = new URLSearchParams({ timeout: "0" });
    if (lastCursor) q.set("since", lastCursor);
    const res = await fetch(`/api/v1/poll?${q}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.ok) {
      const answer = await res.json();
      setConnection(true);
      if (answer.missed > 0) handleMissed(answer.missed);
      for (const m of answer.messages) handleMessage(m);
      if (answer.messages.length === 0 && answer.cursor) lastCursor = answer.cursor;
    } else if (res.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    } else if (res.status === 400) {
      lastCursor = null;
      handleMissed(null);
    }
  } catch {
    setConnection(false);
  }
  channel?.postMessage({ type: "hello" });
}

if (channel) {
  channel.onmessage = (ev) => {
    const d = ev.data || {};
    if (d.type === "hello" && leader) {
      channel.postMessage({ type: "state", online: client?.state.online ?? false });
      return;
    }
    if (leader) return;
    if (d.type === "message") handleMessage(d.message);
    else if (d.type === "missed") {
      if (d.cursor) lastCursor = d.cursor;
      handleMissed(d.missed);
    } else if (d.type === "state") setConnection(d.online);
  };
}

if (navigator.locks && channel) {
  navigator.locks.request(channelName, { ifAvailable: true }, (lock) => {
    if (lock) return startClient(lastCursor);
    follow();
    // Wait in line: when the leader's tab closes, this one takes over from
    // the last message it was passed.
    navigator.locks.request(channelName, () => startClient(lastCursor));
    return null;
  });
} else {
  startClient(lastCursor);
}

// ---- messages ---------------------------------------------------------------

function handleMessage(m) {
  if (!m || typeof m.id !== "string" || seen.has(m.id)) return;
  seen.add(m.id);
  if (seen.size > 2000) seen.delete(seen.values().next().value);
  lastCursor = m.id;
  showTiding(m);
  notifyDesktop(m);
  updateLists(m);
  updateItemPage(m);
}

function handleMissed(n) {
  if (n) {
    showNotice(`You missed ${n} ${n === 1 ? "update" : "updates"} while you were away; the lists are up to date again.`);
  }
  refreshAllLists();
}

// ---- the info box ------------------------------------------------------------

const infobox = document.getElementById("infobox");

const kindOf = (process) =>
  ({ login: "presence", logout: "presence", remind: "reminders", message: "messages" })[process] || "records";
const kindLabel = { records: "changes", presence: "log-ins", reminders: "reminders", messages: "messages" };

function timeText(iso) {
  try {
    return new Intl.DateTimeFormat("en-GB", { timeZone: me.tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  } catch {
    return "";
  }
}


function showTiding(m, restored = false) {
  if (!infobox) return;
  const urgent = !!m.urgent;
  const box = el("article", { class: `tiding${urgent ? " urgent" : ""}`, "data-id": m.id, "data-module": m.module, "data-process": m.process, role: urgent ? "alert" : null, tabindex: "-1" });
  const head = el("div", { class: "who" });
  head.append(el("span", { text: m.actor ? m.actor.name : "Tidings" }));
  const t = timeText(m.valid_from || m.created_at);
  if (t) head.append(" · ", el("time", { datetime: m.valid_from || m.created_at, text: t }));
  box.append(head);
  box.append(el("p", { class: "what", text: m.text }));
  const where = el("div", { class: "where" });
  if (m.item && m.item.url && m.process !== "delete") {
    where.append(el("a", { href: m.item.url, text: m.item.name }));
  } else if (m.item) {
    where.append(el("span", { text: m.item.name }));
  }
  if (m.project) {
    if (where.childNodes.length) where.append(" · ");
    where.append(el("a", { href: `/projects/${m.project.id}`, text: m.project.name }));
  }
  if (where.childNodes.length) box.append(where);
  const kind = kindOf(m.process);
  const mute = el("button", { type: "button", class: "mute", text: `Don't show ${kindLabel[kind]} again` });
  mute.addEventListener("click", async () => {
    try {
      await api("PUT", "/api/v1/me/settings", { [kind]: false });
      dismiss(box, m);
      showNotice(`You will no longer see ${kindLabel[kind]}. Turn them on again in Settings.`);
    } catch (err) {
      showNotice(describeError(err));
    }
  });
  box.append(mute);
  const close = el("button", { type: "button", class: "close", "aria-label": "Dismiss", text: "×" });
  close.addEventListener("click", () => dismiss(box, m));
  box.append(close);
  infobox.prepend(box);
  if (urgent) {
    if (!restored) rememberUrgent(m);
  } else {
    fadeLater(box);
  }
}

function showNotice(text) {
  showTiding({ id: `notice-${Date.now()}-${Math.random()}`, process: "message", module: "tidings", text, actor: null, item: null, project: null, urgent: false }, true);
}

// fadeLater removes a box after a while, but never while it is hovered or
// has the focus.
function fadeLater(box) {
  let timer = null;
  let held = false;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!held) leave(box);
    }, FADE_MS);
  };
  const hold = () => {
    held = true;
    clearTimeout(timer);
  };
  const release = () => {
    held = box.matches(":hover") || box.contains(document.activeElement);
    if (!held) arm();
  };
  box.addEventListener("mouseenter", hold);
  box.addEventListener("focusin", hold);
  box.addEventListener("mouseleave", release);
  box.addEventListener("focusout", () => setTimeout(release));
  arm();
}

function leave(box) {
  box.classList.add("leaving");
  setTimeout(() => box.remove(), 450);
}

function dismiss(box, m) {
  forgetUrgent(m.id);
  leave(box);
}

// Urgent messages stay until dismissed, also on the other pages of the tab.
function urgentList() {
  try {
    return JSON.parse(sessionStorage.getItem(URGENT_KEY) || "[]");
  } catch {
    return [];
  }
}
function rememberUrgent(m) {
  const list = urgentList().filter((x) => x.id !== m.id);
  list.push(m);
  sessionStorage.setItem(URGENT_KEY, JSON.stringify(list.slice(-20)));
}
function forgetUrgent(id) {
  sessionStorage.setItem(URGENT_KEY, JSON.stringify(urgentList().filter((x) => x.id !== id)));
}
for (const m of urgentList()) {
  seen.add(m.id);
  showTiding(m, true);
}

// Desktop notifications, if allowed, only while the page is hidden; the tag
// makes it once per message for the whole browser.
function notifyDesktop(m) {
  if (typeof Notification !== "function" || Notification.permission !== "granted" || !document.hidden) return;
  try {
    const n = new Notification(m.actor ? m.actor.name : "Tidings", { body: m.text, tag: m.id });
    n.onclick = () => {
      window.focus();
      if (m.item?.url && m.process !== "delete") location.assign(m.item.url);
    };
  } catch {
    // Some browsers allow notifications only from a service worker.
  }
}

// ---- live lists ----------------------------------------------------------------

const lists = () => document.querySelectorAll("[data-live-list]");

const fetchers = {
  todo: (id) => api("GET", `/api/v1/todos/${id}`),
  note: (id) => api("GET", `/api/v1/notes/${id}`),
  appointment: (id) => api("GET", `/api/v1/appointments/${id}`),
};

function listFor(kind) {
  return [...lists()].filter((l) => l.dataset.liveList === `${kind}s`);
}

function render(kind, item, list) {
  if (kind === "todo") return renderTodo(item, list.dataset.today);
  if (kind === "note") return renderNote(item, me.tz);
  return renderAppointment(item, me.tz);
}

// belongs says whether an item is shown in a list: the project page shows its
// project's items, the dashboard my open todos and the coming appointments.
function belongs(kind, item, list) {
  if (list.dataset.scope === "mine") return kind === "todo" && item.assignee === me.login && item.status === "open";
  if (list.dataset.scope === "upcoming") {
    const now = Date.now();
    return new Date(item.end).getTime() > now && new Date(item.start).getTime() < now + 14 * 864e5;
  }
  return pageProject !== 0 && item.project?.id === pageProject;
}

function placeInList(list, li, kind, item) {
  const old = list.querySelector(`:scope > li[data-id="${CSS.escape(String(item.id))}"]`);
  if (!belongs(kind, item, list)) {
    old?.remove();
    return;
  }
  li.classList.add("live-new");
  if (old) old.replaceWith(li);
  else if (kind === "appointment") {
    const start = new Date(item.start).getTime();
    const after = [...list.children].find((x) => new Date(x.querySelector("time")?.getAttribute("datetime") || 0).getTime() > start);
    list.insertBefore(li, after || null);
  } else if (kind === "todo" && item.priority === "urgent") list.prepend(li);
  else list.append(li);
}

async function updateLists(m) {
  const kind = m.module;
  if (kind === "todo" || kind === "note" || kind === "appointment") {
    const targets = listFor(kind);
    if (!targets.length || !m.item?.id) return;
    if (m.process === "delete") {
      for (const list of targets) list.querySelector(`:scope > li[data-id="${m.item.id}"]`)?.remove();
      return;
    }
    try {
      const item = await fetchers[kind](m.item.id);
      for (const list of targets) placeInList(list, render(kind, item, list), kind, item);
    } catch (err) {
      if (err.status === 404) for (const list of targets) list.querySelector(`:scope > li[data-id="${m.item.id}"]`)?.remove();
    }
    return;
  }
  if (kind === "member" || kind === "project") {
    if (pageProject && m.project?.id === pageProject) {
      if (kind === "project" && m.process === "delete") {
        showNotice("This project was deleted.");
        return;
      }
      await refreshMembers();
    }
    await refreshProjects();
  }
}

async function refreshMembers() {
  const list = document.querySelector('[data-live-list="members"]');
  if (!list || !pageProject) return;
  try {
    const p = await api("GET", `/api/v1/projects/${pageProject}`);
    const owner = p.role === "owner";
    list.dataset.owner = String(owner);
    list.replaceChildren(...p.members.map((mem) => renderMember(mem, owner, me.login)));
    const title = document.querySelector('.page-title[data-field="name"]');
    if (title) title.textContent = p.name;
  } catch (err) {
    if (err.status === 404) showNotice("You are no longer a member of this project.");
  }
}

async function refreshProjects() {
  const list = document.querySelector('[data-live-list="projects"]');
  if (!list) return;
  try {
    const page = await api("GET", "/api/v1/projects?limit=500");
    list.replaceChildren(...page.items.map(renderProject));
  } catch {}
}

// refreshAllLists reads every list of the page again, in place: after missed
// messages or a refused cursor.
async function refreshAllLists() {
  for (const list of lists()) {
    const kind = list.dataset.liveList;
    try {
      if (kind === "members") await refreshMembers();
      else if (kind === "projects") await refreshProjects();
      else {
        const singular = kind.slice(0, -1);
        let url;
        if (list.dataset.scope === "mine") url = null;
        else if (list.dataset.scope === "upcoming") url = null;
        else url = `/api/v1/projects/${pageProject}/${kind}?limit=500`;
        if (!url) {
          await refreshDashboardList(list, singular);
          continue;
        }
        const page = await api("GET", url);
        list.replaceChildren(...page.items.filter((it) => belongs(singular, it, list)).map((it) => render(singular, it, list)));
      }
    } catch {}
  }
}

async function refreshDashboardList(list, singular) {
  const projects = await api("GET", "/api/v1/projects?limit=500");
  const all = [];
  for (const p of projects.items) {
    const page = await api("GET", `/api/v1/projects/${p.id}/${singular}s?limit=500`);
    all.push(...page.items.filter((it) => belongs(singular, it, list)));
  }
  if (singular === "appointment") all.sort((a, b) => new Date(a.start) - new Date(b.start));
  list.replaceChildren(...all.map((it) => render(singular, it, list)));
}

// ---- an open item form -----------------------------------------------------------

const itemForm = pageItem ? document.querySelector("form.item-form") : null;

// The values the form was filled with, per field: what "changed" is
// measured against. A save makes the saved values the baseline.
const baseline = {};
function readBaseline(item) {
  if (!itemForm) return;
  for (const [k, v] of Object.entries(formValues(item))) baseline[k] = v;
}

function formValues(item) {
  const v = {};
  for (const name of ["title", "description", "body", "priority", "status"]) if (name in item) v[name] = item[name] ?? "";
  if ("assignee" in item) v.assignee = item.assignee ?? "";
  if ("due" in item) v.due = item.due ?? "";
  if ("start" in item) v.start = toLocalInput(item.start, me.tz);
  if ("end" in item) v.end = toLocalInput(item.end, me.tz);
  if ("participants" in item) v.participants = [...item.participants].sort().join(",");
  return v;
}

function fieldValue(name) {
  if (name === "participants") {
    return [...itemForm.querySelectorAll('input[name="participants"]:checked')].map((x) => x.value).sort().join(",");
  }
  return itemForm.elements[name]?.value ?? "";
}

function setFieldValue(name, value) {
  if (name === "participants") {
    const set = new Set(value ? value.split(",") : []);
    for (const box of itemForm.querySelectorAll('input[name="participants"]')) box.checked = set.has(box.value);
    return;
  }
  const f = itemForm.elements[name];
  if (f) f.value = value;
}

function fieldElement(name) {
  if (name === "participants") return itemForm.querySelector('[data-field="participants"]');
  return itemForm.elements[name];
}

function markChanged(name, value, display) {
  const field = fieldElement(name);
  if (!field) return;
  field.dataset.changed = "true";
  const holder = field.closest(".field") || field.parentElement;
  let offer = holder.querySelector(".offer");
  if (!offer) {
    offer = el("p", { class: "offer", role: "status" });
    holder.append(offer);
  }
  const use = el("button", { type: "button", class: "link", text: "Use this" });
  use.addEventListener("click", () => {
    setFieldValue(name, value);
    baseline[name] = value;
    delete field.dataset.changed;
    offer.remove();
  });
  const dismissOffer = el("button", { type: "button", class: "link", text: "Keep mine" });
  dismissOffer.addEventListener("click", () => {
    baseline[name] = value;
    delete field.dataset.changed;
    offer.remove();
  });
  offer.replaceChildren(el("span", { text: "Changed by someone else to:" }), el("span", { class: "offer-value", text: display || "(empty)" }), use, dismissOffer);
}

async function updateItemPage(m) {
  if (!itemForm || m.module !== pageItem.kind || m.item?.id !== pageItem.id) return;
  if (m.process === "delete") {
    const note = document.querySelector(".deleted-note");
    if (note) {
      note.textContent = `${m.actor ? m.actor.name : "Someone"} deleted this ${pageItem.kind}. What you see here is no longer stored.`;
      note.hidden = false;
    }
    for (const e of itemForm.elements) e.disabled = true;
    return;
  }
  if (m.actor && m.actor.id === me.id && m.process !== "remind") return;
  if (m.process !== "edit") return;
  let item;
  try {
    item = await fetchers[pageItem.kind](pageItem.id);
  } catch {
    return;
  }
  const now = formValues(item);
  for (const [name, value] of Object.entries(now)) {
    if (value === baseline[name]) continue;
    if (fieldValue(name) === value) {
      baseline[name] = value; // the user already has it
      continue;
    }
    let display = value;
    if (name === "participants") display = value.split(",").filter(Boolean).join(", ");
    markChanged(name, value, display);
  }
}

// ---- times in the user's time zone --------------------------------------------------

// offsetMinutes is how far tz is ahead of UTC at the given moment.
function offsetMinutes(tz, date) {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(date);
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const asUTC = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUTC - date.getTime()) / 60000);
}

function toLocalInput(iso, tz) {
  const d = new Date(iso);
  const local = new Date(d.getTime() + offsetMinutes(tz, d) * 60000);
  return local.toISOString().slice(0, 16);
}

function fromLocalInput(value, tz) {
  if (!value) return "";
  const guess = new Date(`${value}:00Z`);
  const first = new Date(guess.getTime() - offsetMinutes(tz, guess) * 60000);
  const exact = new Date(guess.getTime() - offsetMinutes(tz, first) * 60000);
  return exact.toISOString();
}

// ---- forms -----------------------------------------------------------------------------

setupForms({
  me,
  pageProject,
  fromLocalInput,
  changedFields() {
    return Object.keys(baseline).filter((name) => fieldValue(name) !== baseline[name]);
  },
  onItemSaved(item) {
    readBaseline(item);
    for (const f of itemForm?.querySelectorAll("[data-changed]") || []) delete f.dataset.changed;
    for (const o of itemForm?.querySelectorAll(".offer") || []) o.remove();
    const title = document.querySelector(".page-title");
    if (title && item.title) title.textContent = item.title;
  },
  onCreated(kind, item) {
    if (kind === "projects") {
      refreshProjects();
      return;
    }
    if (kind === "members") {
      refreshMembers();
      return;
    }
    const singular = kind.slice(0, -1);
    for (const list of listFor(singular)) placeInList(list, render(singular, item, list), singular, item);
  },
  notice: showNotice,
});

// The baseline is what the page was rendered with, which is newer than the
// page's cursor: a change after it arrives as a message.
if (itemForm) {
  for (const name of ["title", "description", "body", "priority", "status", "assignee", "due", "start", "end", "participants"]) {
    if (fieldElement(name)) baseline[name] = fieldValue(name);
  }
}
