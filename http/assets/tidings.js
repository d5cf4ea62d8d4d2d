// tidings.js — receive a user's Tidings messages in real time.
//
// A standalone ES module, no build step:
//
//   import { TidingsClient } from "/static/tidings.js";
//   const client = new TidingsClient({
//     since: cursorEmbeddedInThePage,          // optional
//     onMessage(m) { ... },                    // a parsed message object
//     onMissed(n) { ... },                     // n expired unseen: reload lists
//     onReset() { ... },                       // cursor refused: reload lists
//     onState(s) { document.body.dataset.connection = s.online ? "online" : "offline"; },
//   });
//   client.start();
//
// The client prefers a stream — WebSocket, then server-sent events — and
// falls back to long polling when a stream does not work, for example
// behind a proxy that buffers answers. It keeps one cursor across every
// transport, so switching never skips or repeats a message. It hands
// callbacks parsed objects and never touches the page itself: whatever a
// message contains, it is the caller's to put into the page as text.

const MAX_DELAY = 10000; // ms: no retry waits longer, jitter included
const BASE_DELAY = 500;
const PROBE_AGAIN = 5 * 60 * 1000; // ms on long polling before a stream is tried again

/** An error answer of the server, or a failed connection. */
export class TidingsError extends Error {
  constructor(code, message, status = 0, retryAfter = 0) {
    super(message);
    this.name = "TidingsError";
    this.code = code; // "invalid_cursor", "unauthorized", …, or "network", "timeout"
    this.status = status;
    this.retryAfter = retryAfter; // seconds, from a 503
  }
}

export class TidingsClient {
  /**
   * @param {object} options
   * @param {string} [options.base] the server's URL, e.g. "https://tidings.example.org"; default: this page's
   * @param {string} [options.token] an API token; without it the session cookie is used
   * @param {string} [options.since] the cursor to start from; without it, what is deliverable now
   * @param {"auto"|"ws"|"sse"|"poll"} [options.transport]
   * @param {(message: object) => void} [options.onMessage]
   * @param {(missed: number|null) => void} [options.onMissed] null: unknown how many (cursor refused, no onReset)
   * @param {() => void} [options.onReset] the cursor was refused; the client starts over
   * @param {(state: {transport: string|null, online: boolean, connection: string, cursor: string|null}) => void} [options.onState]
   * @param {(error: TidingsError) => void} [options.onError]
   * @param {number} [options.streamTimeout] ms a stream may take to show it works
   * @param {number} [options.idleTimeout] ms of silence after which an SSE stream counts as dead
   * @param {number} [options.pollTimeout] seconds a long poll is held
   */
  constructor(options = {}) {
    const transport = options.transport ?? "auto";
    if (!["auto", "ws", "sse", "poll"].includes(transport)) {
      throw new TypeError(`transport must be "auto", "ws", "sse" or "poll", not ${JSON.stringify(transport)}`);
    }
    if (transport === "ws" && options.token) {
      throw new TypeError("a WebSocket cannot send a token; use the session cookie, or transport \"sse\" or \"poll\"");
    }
    this._base = options.base ?? "";
    this._token = options.token ?? null;
    this._cursor = options.since || null;
    this._transport = transport;
    this._on = {
      message: options.onMessage,
      missed: options.onMissed,
      reset: options.onReset,
      state: options.onState,
      error: options.onError,
    };
    this._streamTimeout = options.streamTimeout ?? 10000;
    this._idleTimeout = options.idleTimeout ?? 70000;
    this._pollTimeout = options.pollTimeout ?? 25;
    this._state = { transport: null, online: false };
    this._running = false;
    this._abort = null;
    this._wake = null;
    this._attempt = 0;
    this._strikes = { ws: 0, sse: 0 };
    this._pollingSince = 0;
  }

  /**
   * The transport in use ("ws", "sse", "poll", or null when stopped),
   * whether the server answers, and the cursor.
   */
  get state() {
    const { transport, online } = this._state;
    return { transport, online, connection: online ? "online" : "offline", cursor: this._cursor };
  }

  /** The id of the last message handed to onMessage: resume from it. */
  get cursor() {
    return this._cursor;
  }

  /** Starts receiving; it goes on until stop(). */
  start() {
    if (this._running) return;
    this._running = true;
    this._loop();
  }

  /** Stops receiving and closes the connection. */
  stop() {
    this._running = false;
    this._abort?.abort();
    this._wake?.();
  }

  async _loop() {
    while (this._running) {
      const kind = this._choose();
      const conn = { alive: false, since: Date.now() };
      const abort = new AbortController();
      this._abort = abort;
      let err = null;
      try {
        if (kind === "ws") await this._ws(conn, abort.signal);
        else if (kind === "sse") await this._sse(conn, abort.signal);
        else await this._poll(conn, abort.signal);
      } catch (e) {
        err = e instanceof TidingsError ? e : new TidingsError("network", String(e?.message ?? e));
      }
      abort.abort();
      if (!this._running) break;

      if (err?.code === "invalid_cursor") {
        // The database was replaced or reset: start over, and let the page
        // read its lists again. What failed before is explained now.
        this._cursor = null;
        this._strikes = { ws: 0, sse: 0 };
        if (this._on.reset) this._call(this._on.reset);
        else this._call(this._on.missed, null);
        continue;
      }
      // The server works: back off from scratch next time. A stream must
      // have lasted a while, or one that a proxy cuts at once would spin.
      if (conn.alive && (kind === "poll" || Date.now() - conn.since >= 5000)) this._attempt = 0;
      if (err) {
        if (!conn.alive && kind !== "poll" && this._transport === "auto") {
          // The stream never showed it works: try the next transport now.
          this._strikes[kind]++;
          continue;
        }
        if (kind === "poll") this._strikes = { ws: 0, sse: 0 }; // the network, not the streams
        this._setOnline(false);
        this._call(this._on.error, err);
        let delay = this._delay();
        if (err.retryAfter) delay = Math.max(delay, Math.min(MAX_DELAY, err.retryAfter * 1000));
        await this._sleep(delay);
      } else if (kind !== "poll") {
        await this._sleep(this._delay()); // the server ended the stream, e.g. to restart
      }
    }
    this._abort = null;
    this._setOnline(false, null);
  }

  // _choose picks the transport: the first one that has not failed to start.
  _choose() {
    if (this._transport !== "auto") return this._transport;
    const order = [];
    if (!this._token && typeof WebSocket === "function") order.push("ws");
    if (typeof fetch === "function" && typeof ReadableStream === "function") order.push("sse");
    if (this._state.transport === "poll" && Date.now() - this._pollingSince > PROBE_AGAIN) {
      this._strikes = { ws: 0, sse: 0 }; // the stream may work by now
      this._pollingSince = Date.now();
    }
    for (const kind of order) {
      if (this._strikes[kind] === 0) return kind;
    }
    return "poll";
  }

  // _delay is an exponential backoff with jitter, never above MAX_DELAY.
  _delay() {
    const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** Math.min(this._attempt, 10));
    this._attempt++;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  _sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this._wake = done;
    }).finally(() => {
      this._wake = null;
    });
  }

  _url(path, params) {
    const base = this._base || (typeof location !== "undefined" ? location.href : undefined);
    const url = new URL(path, base);
    for (const [k, v] of Object.entries(params)) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, String(v));
    }
    return url;
  }

  _fetchOptions(signal, accept) {
    const headers = { Accept: accept };
    if (this._token) headers.Authorization = `Bearer ${this._token}`;
    return { headers, signal, credentials: this._token ? "omit" : "include" };
  }

  // _poll asks once; the loop asks again at once. Until a poll has been
  // answered it asks without holding, to know at once that the server works.
  async _poll(conn, signal) {
    const known = this._state.online && this._state.transport === "poll";
    const timeout = known ? this._pollTimeout : 0;
    const url = this._url("/api/v1/poll", { since: this._cursor, timeout });
    const timer = setTimeout(() => this._abort?.abort(), (timeout + 15) * 1000);
    let answer;
    try {
      const res = await fetch(url, this._fetchOptions(signal, "application/json"));
      if (!res.ok) throw await errorOf(res);
      answer = await res.json();
    } finally {
      clearTimeout(timer);
    }
    conn.alive = true;
    if (this._state.transport !== "poll") this._pollingSince = Date.now();
    this._setOnline(true, "poll");
    if (answer.missed > 0) this._missed(answer.missed, answer.messages.length === 0 ? answer.cursor : null);
    for (const m of answer.messages) this._message(m);
    if (answer.cursor) this._cursor = answer.cursor;
  }

  // _sse reads server-sent events from a fetch, which, unlike EventSource,
  // can send a token and read the error of a refused cursor.
  async _sse(conn, signal) {
    const url = this._url("/api/v1/stream", { since: this._cursor });
    const local = new AbortController();
    const stopLocal = () => local.abort();
    signal.addEventListener("abort", stopLocal);
    let timedOut = null;
    let timer = setTimeout(() => {
      timedOut = new TidingsError("timeout", "The stream sent nothing in time; a proxy may buffer it.");
      local.abort();
    }, this._streamTimeout);
    const watch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = new TidingsError("timeout", "The stream went silent.");
        local.abort();
      }, this._idleTimeout);
    };
    try {
      const res = await fetch(url, this._fetchOptions(local.signal, "text/event-stream"));
      if (!res.ok) throw await errorOf(res);
      if (!(res.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
        throw new TidingsError("network", "The stream answered something else than events.");
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new EventParser((ev) => this._sseEvent(ev));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!conn.alive) {
          conn.alive = true;
          this._setOnline(true, "sse");
        }
        watch();
        parser.push(value);
      }
    } catch (e) {
      throw timedOut ?? e;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stopLocal);
      local.abort();
    }
    if (timedOut) throw timedOut;
    if (!conn.alive) throw new TidingsError("network", "The stream ended before it began.");
  }

  _sseEvent(ev) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (ev.type === "message") this._message(data);
    else if (ev.type === "missed") this._missed(data.missed, ev.id);
  }

  // _ws opens a WebSocket; it counts as working once it is open.
  _ws(conn, signal) {
    return new Promise((resolve, reject) => {
      const url = this._url("/api/v1/ws", { since: this._cursor });
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(url);
      const timer = setTimeout(() => {
        fail(new TidingsError("timeout", "The WebSocket did not open in time."));
      }, this._streamTimeout);
      const fail = (err) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", close);
        try {
          ws.close();
        } catch {}
        reject(err);
      };
      const close = () => ws.close(1000);
      signal.addEventListener("abort", close);
      ws.onopen = () => {
        clearTimeout(timer);
        conn.alive = true;
        this._setOnline(true, "ws");
      };
      ws.onmessage = (ev) => {
        let f;
        try {
          f = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (f.type === "message") this._message(f.message);
        else if (f.type === "missed") this._missed(f.missed, f.cursor);
      };
      ws.onclose = (ev) => {
        if (!conn.alive) {
          fail(new TidingsError("network", "The WebSocket could not be opened."));
          return;
        }
        clearTimeout(timer);
        signal.removeEventListener("abort", close);
        if (ev.code === 1000 || ev.code === 1001) resolve();
        else reject(new TidingsError("network", `The WebSocket closed (${ev.code}).`));
      };
    });
  }

  _message(m) {
    if (!m || typeof m.id !== "string") return;
    this._cursor = m.id;
    this._call(this._on.message, m);
  }

  _missed(n, cursor) {
    if (cursor) this._cursor = cursor;
    this._call(this._on.missed, n);
  }

  // _setOnline records the connection's state and tells onState of a change.
  _setOnline(online, transport = this._state.transport) {
    if (this._state.online === online && this._state.transport === transport) return;
    this._state = { online, transport };
    this._call(this._on.state, this.state);
  }

  // _call runs a callback; an exception in it is reported, not allowed to
  // stop delivery.
  _call(fn, ...args) {
    if (typeof fn !== "function") return;
    try {
      fn(...args);
    } catch (e) {
      setTimeout(() => {
        throw e;
      });
    }
  }
}

// EventParser splits a server-sent event stream into events, as the HTML
// standard describes: fields per line, an event per blank line.
class EventParser {
  constructor(dispatch) {
    this._dispatch = dispatch;
    this._buf = "";
    this._data = [];
    this._type = "";
    this._id = null;
  }

  push(text) {
    this._buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this._buf);
      if (!m) return;
      if (m[0] === "\r" && m.index === this._buf.length - 1) return; // maybe \r\n split across chunks
      const line = this._buf.slice(0, m.index);
      this._buf = this._buf.slice(m.index + m[0].length);
      this._line(line);
    }
  }

  _line(line) {
    if (line === "") {
      if (this._data.length > 0) {
        this._dispatch({ type: this._type || "message", data: this._data.join("\n"), id: this._id });
      }
      this._data = [];
      this._type = "";
      this._id = null;
      return;
    }
    if (line.startsWith(":")) return; // a comment: the heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this._data.push(value);
    else if (field === "event") this._type = value;
    else if (field === "id" && !value.includes("\0")) this._id = value;
  }
}

async function errorOf(res) {
  let code = "network";
  let message = `The server answered ${res.status}.`;
  try {
    const body = await res.json();
    if (body?.error?.code) {
      code = body.error.code;
      message = body.error.message || message;
    }
  } catch {}
  const retryAfter = Number(res.headers.get("Retry-After")) || 0;
  return new TidingsError(code, message, res.status, retryAfter);
}
