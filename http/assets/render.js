// render.js — list entries built from API objects, the same as the server
// renders them in html/_items.html. Values go in as text only.

/** el makes an element with attributes ("text" is its text) and children. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

function dayText(date) {
  // date is YYYY-MM-DD: shown as the calendar day it names, in no time zone.
  const d = new Date(`${date}T12:00:00Z`);
  return new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", weekday: "short", day: "numeric", month: "short", year: "numeric" }).format(d).replace(",", "");
}

function timeText(iso, tz) {
  try {
    return new Intl.DateTimeFormat("en-GB", { timeZone: tz, weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  } catch {
    return iso;
  }
}

export function renderTodo(t, today) {
  const overdue = t.due && t.status === "open" && today && t.due < today;
  const li = el("li", { class: `todo prio-${t.priority}${t.status === "done" ? " done" : ""}${overdue ? " overdue" : ""}`, "data-id": t.id });
  li.append(el("a", { href: `/todos/${t.id}`, class: "title", text: t.title }), " ");
  li.append(el("span", { class: "badge prio", text: t.priority }));
  if (t.status === "done") li.append(" ", el("span", { class: "badge status", text: "done" }));
  const meta = el("span", { class: "meta" });
  meta.append(t.assignee || "unassigned");
  if (t.due) {
    meta.append(` · due ${dayText(t.due)}`);
    if (overdue) meta.append(" ", el("strong", { class: "overdue-mark", text: "overdue" }));
  }
  meta.append(` · ${t.project.name}`);
  li.append(" ", meta);
  return li;
}

export function renderNote(n, tz) {
  const li = el("li", { class: "note", "data-id": n.id });
  li.append(el("a", { href: `/notes/${n.id}`, class: "title", text: n.title }), " ");
  li.append(el("span", { class: "meta" }, "changed ", el("time", { datetime: n.updated_at, text: timeText(n.updated_at, tz) })));
  return li;
}

export function renderAppointment(a, tz) {
  const li = el("li", { class: "appointment", "data-id": a.id });
  li.append(el("a", { href: `/appointments/${a.id}`, class: "title", text: a.title }), " ");
  li.append(
    el(
      "span",
      { class: "meta" },
      el("time", { datetime: a.start, text: timeText(a.start, tz) }),
      " – ",
      el("time", { datetime: a.end, text: timeText(a.end, tz) }),
      ` · ${a.project.name}`,
    ),
  );
  return li;
}

export function renderMember(m, owner, myLogin) {
  const li = el("li", { "data-id": m.login });
  li.append(el("span", { class: "avatar", "aria-hidden": "true", text: (m.name || "?").slice(0, 1).toUpperCase() }), " ");
  li.append(el("span", { class: "title", text: m.name }), " ");
  li.append(el("span", { class: "meta", text: `${m.login} · ${m.role}` }));
  if (owner || m.login === myLogin) {
    const b = el("button", { type: "button", class: "link danger", "data-remove-member": m.login, text: m.login === myLogin ? "Leave" : "Remove" });
    b.append(el("span", { class: "visually-hidden", text: ` ${m.name}` }));
    li.append(" ", b);
  }
  return li;
}

export function renderProject(p) {
  const li = el("li", { "data-id": p.id });
  li.append(el("a", { href: `/projects/${p.id}`, class: "title", text: p.name }), " ");
  const n = p.members.length;
  li.append(el("span", { class: "meta", text: `${n} ${n === 1 ? "member" : "members"} · ${p.role === "owner" ? "you own it" : "you are a member"}` }));
  return li;
}
