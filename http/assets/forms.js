// forms.js — the pages' forms talk to the JSON API; an error is shown beside
// the field the server names.

/** An error answer of the API. */
export class APIError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || "";
  }
}

export async function api(method, url, body) {
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, opts);
  } catch {
    throw new APIError(0, "network", "The server cannot be reached; try again in a moment.");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {}
  if (!res.ok) {
    const e = data?.error || {};
    throw new APIError(res.status, e.code || "internal", e.message || `The server answered ${res.status}.`, e.field);
  }
  return data;
}

export function describeError(err) {
  return err?.message || String(err);
}

export function clearFormError(form) {
  const p = form.querySelector(".form-error");
  if (p) {
    p.hidden = true;
    p.textContent = "";
  }
  for (const f of form.querySelectorAll('[aria-invalid="true"]')) f.removeAttribute("aria-invalid");
  for (const f of form.querySelectorAll(".field-error")) f.remove();
}

export function showFormError(form, err) {
  clearFormError(form);
  const field = err.field ? form.querySelector(`[name="${CSS.escape(err.field)}"]`) : null;
  if (field) {
    field.setAttribute("aria-invalid", "true");
    const note = document.createElement("p");
    note.className = "field-error";
    note.id = `err-${err.field}`;
    note.textContent = describeError(err);
    (field.closest(".field") || field.closest("label") || field.parentElement).append(note);
    field.setAttribute("aria-describedby", note.id);
    field.focus();
    return;
  }
  const p = form.querySelector(".form-error");
  if (p) {
    p.textContent = describeError(err);
    p.hidden = false;
  }
}

function flash(form, text) {
  const s = form.querySelector(".saved");
  if (!s) return;
  s.textContent = text;
  setTimeout(() => {
    if (s.textContent === text) s.textContent = "";
  }, 3000);
}

// formJSON turns a form into the JSON fields of its kind.
export function formJSON(form, kind, fromLocalInput, tz) {
  const v = (name) => form.elements[name]?.value ?? "";
  switch (kind) {
    case "todos":
      return { title: v("title"), description: v("description"), priority: v("priority"), assignee: v("assignee") || null, due: v("due") || null, ...(form.elements.status ? { status: v("status") } : {}) };
    case "notes":
      return { title: v("title"), body: v("body") };
    case "appointments":
      return {
        title: v("title"),
        description: v("description"),
        start: fromLocalInput(v("start"), tz),
        end: fromLocalInput(v("end"), tz),
        participants: [...form.querySelectorAll('input[name="participants"]:checked')].map((x) => x.value),
      };
    case "projects":
    case "project":
      return { name: v("name"), ...(form.elements.description ? { description: v("description") } : {}) };
    default:
      return {};
  }
}

async function busy(button, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } finally {
    if (button) button.disabled = false;
  }
}

function randomPassword() {
  const letters = "abcdefghijkmnpqrstuvwxyz23456789";
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  const s = [...b].map((x) => letters[x % letters.length]).join("");
  return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`;
}

/**
 * setupForms wires every form of the page.
 * @param {object} o
 */
export function setupForms(o) {
  const { me, pageProject, fromLocalInput } = o;

  for (const form of document.querySelectorAll("form[data-create]")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const kind = form.dataset.create;
      clearFormError(form);
      try {
        await busy(form.querySelector('button[type="submit"]'), async () => {
          if (kind === "projects") {
            const p = await api("POST", "/api/v1/projects", formJSON(form, kind));
            location.assign(`/projects/${p.id}`);
            return;
          }
          if (kind === "members") {
            await api("PUT", `/api/v1/projects/${pageProject}/members/${encodeURIComponent(form.elements.login.value.trim())}`, { role: form.elements.role.value });
            form.reset();
            o.onCreated(kind, null);
            return;
          }
          const item = await api("POST", `/api/v1/projects/${pageProject}/${kind}`, formJSON(form, kind, fromLocalInput, me.tz));
          form.reset();
          for (const box of form.querySelectorAll('input[name="participants"]')) box.checked = box.value === me.login;
          o.onCreated(kind, item);
        });
      } catch (err) {
        showFormError(form, err);
      }
    });
  }

  for (const form of document.querySelectorAll("form[data-edit]")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const kind = form.dataset.edit;
      clearFormError(form);
      try {
        await busy(form.querySelector('button[type="submit"]'), async () => {
          if (kind === "project") {
            await api("PATCH", `/api/v1/projects/${form.dataset.id}`, formJSON(form, kind));
            location.reload();
            return;
          }
          // Only what the user changed is sent: a field someone else changed
          // meanwhile keeps their value unless the user changed it too.
          const all = formJSON(form, kind, fromLocalInput, me.tz);
          const changed = o.changedFields ? o.changedFields() : Object.keys(all);
          const body = {};
          for (const k of changed) if (k in all) body[k] = all[k];
          if (changed.includes("start") || changed.includes("end")) {
            body.start = all.start;
            body.end = all.end;
          }
          const item = Object.keys(body).length ? await api("PATCH", `/api/v1/${kind}/${form.dataset.id}`, body) : await api("GET", `/api/v1/${kind}/${form.dataset.id}`);
          o.onItemSaved(item);
          flash(form, "Saved.");
        });
      } catch (err) {
        showFormError(form, err);
      }
    });
  }

  document.addEventListener("click", async (ev) => {
    const del = ev.target.closest("[data-delete]");
    if (del) {
      const kind = del.dataset.delete;
      if (!confirm(kind === "projects" ? "Delete this project with all its todos, notes and appointments?" : "Delete this for everyone?")) return;
      try {
        await api("DELETE", `/api/v1/${kind}/${del.dataset.id}`);
        location.assign(kind === "projects" || !pageProject ? "/" : `/projects/${pageProject}`);
      } catch (err) {
        o.notice(describeError(err));
      }
      return;
    }
    const rm = ev.target.closest("[data-remove-member]");
    if (rm) {
      const login = rm.dataset.removeMember;
      const self = login === me.login;
      if (!confirm(self ? "Leave this project?" : `Remove ${login} from this project?`)) return;
      try {
        await api("DELETE", `/api/v1/projects/${pageProject}/members/${encodeURIComponent(login)}`);
        if (self) location.assign("/");
        else o.onCreated("members", null);
      } catch (err) {
        o.notice(describeError(err));
      }
    }
  });

  const settings = document.querySelector("form[data-settings]");
  if (settings) {
    settings.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFormError(settings);
      const e = settings.elements;
      const body = {
        records: e.records.checked,
        presence: e.presence.checked,
        reminders: e.reminders.checked,
        messages: e.messages.checked,
        muted_projects: [...settings.querySelectorAll('input[name="muted_projects"]:checked')].map((x) => Number(x.value)),
        reminder_lead_minutes: Number(e.reminder_lead_minutes.value),
      };
      try {
        await busy(settings.querySelector('button[type="submit"]'), () => api("PUT", "/api/v1/me/settings", body));
        flash(settings, "Saved.");
      } catch (err) {
        showFormError(settings, err);
      }
    });
  }

  const profile = document.querySelector("form[data-profile]");
  if (profile) {
    profile.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFormError(profile);
      const e = profile.elements;
      const body = { name: e.name.value, email: e.email.value, time_zone: e.time_zone.value.trim(), language: e.language.value.trim() };
      if (e.password.value) body.password = e.password.value;
      try {
        await busy(profile.querySelector('button[type="submit"]'), () => api("PATCH", `/api/v1/users/${encodeURIComponent(profile.dataset.profile)}`, body));
        e.password.value = "";
        flash(profile, "Saved.");
      } catch (err) {
        showFormError(profile, err);
      }
    });
  }

  const desktop = document.querySelector("[data-desktop-notifications]");
  if (desktop) {
    const state = document.querySelector(".desktop-state");
    const show = () => {
      if (typeof Notification !== "function") state.textContent = "This browser has no desktop notifications.";
      else state.textContent = { granted: "Allowed.", denied: "Blocked in the browser's site settings.", default: "Not asked yet." }[Notification.permission];
    };
    show();
    desktop.addEventListener("click", async () => {
      if (typeof Notification === "function") await Notification.requestPermission();
      show();
    });
  }

  setupTokens();
  setupUsers();
}

const tz = () => document.body.dataset.timeZone || "UTC";

function when(iso) {
  try {
    return new Intl.DateTimeFormat("en-GB", { timeZone: tz(), day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
  } catch {
    return iso;
  }
}

function setupTokens() {
  const list = document.querySelector("[data-tokens]");
  const form = document.querySelector("form[data-token-create]");
  if (!list || !form) return;
  const load = async () => {
    try {
      const page = await api("GET", "/api/v1/tokens");
      list.replaceChildren(
        ...page.items.map((t) => {
          const li = document.createElement("li");
          li.dataset.id = t.id;
          const name = document.createElement("span");
          name.className = "title";
          name.textContent = t.name;
          const meta = document.createElement("span");
          meta.className = "meta";
          meta.textContent = `${t.scopes.join(", ")} · created ${when(t.created_at)} · ${t.last_used_at ? `last used ${when(t.last_used_at)}` : "never used"}`;
          const revoke = document.createElement("button");
          revoke.type = "button";
          revoke.className = "link danger";
          revoke.textContent = "Revoke";
          const hidden = document.createElement("span");
          hidden.className = "visually-hidden";
          hidden.textContent = ` ${t.name}`;
          revoke.append(hidden);
          revoke.addEventListener("click", async () => {
            if (!confirm(`Revoke the token "${t.name}"? Applications using it stop working at once.`)) return;
            try {
              await api("DELETE", `/api/v1/tokens/${t.id}`);
              load();
            } catch (err) {
              showFormError(form, err);
            }
          });
          li.append(name, " ", revoke, meta);
          return li;
        }),
      );
    } catch (err) {
      showFormError(form, err);
    }
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFormError(form);
    try {
      const t = await api("POST", "/api/v1/tokens", { name: form.elements.name.value });
      const box = form.querySelector(".token-secret");
      box.querySelector(".secret").textContent = t.token;
      box.hidden = false;
      form.elements.name.value = "";
      load();
    } catch (err) {
      showFormError(form, err);
    }
  });
  load();
}

function setupUsers() {
  const table = document.querySelector("[data-users]");
  const create = document.querySelector("form[data-user-create]");
  const errorBox = document.querySelector("[data-users-error]");
  const secretBox = document.querySelector("[data-users-secret]");
  const fail = (err) => {
    errorBox.textContent = describeError(err);
    errorBox.hidden = false;
  };
  if (table) {
    table.addEventListener("click", async (ev) => {
      const b = ev.target.closest("button");
      if (!b) return;
      const row = b.closest("tr");
      errorBox.hidden = true;
      secretBox.hidden = true;
      try {
        if (b.dataset.userSave) {
          await api("PATCH", `/api/v1/users/${encodeURIComponent(b.dataset.userSave)}`, {
            name: row.querySelector('[name="name"]').value,
            email: row.querySelector('[name="email"]').value,
            role: row.querySelector('[name="role"]').value,
          });
          b.textContent = "Saved";
          setTimeout(() => (b.textContent = "Save"), 2000);
        } else if (b.dataset.userPassword) {
          const password = randomPassword();
          await api("PATCH", `/api/v1/users/${encodeURIComponent(b.dataset.userPassword)}`, { password });
          secretBox.querySelector(".secret").textContent = `${b.dataset.userPassword}: ${password}`;
          secretBox.hidden = false;
        } else if (b.dataset.userDelete) {
          if (!confirm(`Delete ${b.dataset.userDelete}? Projects only they belong to go with them.`)) return;
          await api("DELETE", `/api/v1/users/${encodeURIComponent(b.dataset.userDelete)}`);
          row.remove();
        }
      } catch (err) {
        fail(err);
      }
    });
  }
  if (create) {
    create.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFormError(create);
      const e = create.elements;
      try {
        await api("POST", "/api/v1/users", { login: e.login.value.trim(), name: e.name.value, email: e.email.value, password: e.password.value, role: e.role.value });
        location.reload();
      } catch (err) {
        showFormError(create, err);
      }
    });
  }
}
