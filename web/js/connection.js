// One WebSocket to chatd: requests with ids and their replies, pushes, and reconnecting
// with a capped, jittered backoff. It knows nothing of logins (see session.js).

const REPLY_TIMEOUT_MS = 20000; // no reply this long: the connection is taken as dead
const KEEPALIVE_MS = 60000; // a ping after this long without sending anything
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

// Events: "state" (this.state changed), "open", "close", "push" (detail: the object),
// "reply" (detail: the reply to a request), "error-line" (detail: an error the server
// sent outside any reply, e.g. a timeout).
export class Connection extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.wanted = false; // reconnect when the connection is lost
    this.state = "offline"; // offline | connecting | open | waiting
    this.retryInMs = 0; // while "waiting"
    this.delay = 0;
    this.timer = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, timer }
    this.lastSend = 0;
    setInterval(() => this.keepalive(), KEEPALIVE_MS / 4);
    window.addEventListener("online", () => this.retryNow());
  }

  // Connects (if not already) and resolves to true once open, false if that failed.
  connect() {
    this.wanted = true;
    if (this.state === "open") return Promise.resolve(true);
    if (this.state !== "connecting") this.retryNow();
    return new Promise((resolve) => {
      const done = (ok) => () => {
        this.removeEventListener("open", onOpen);
        this.removeEventListener("close", onClose);
        resolve(ok);
      };
      const onOpen = done(true);
      const onClose = done(false);
      this.addEventListener("open", onOpen);
      this.addEventListener("close", onClose);
    });
  }

  // Closes and stays closed until connect().
  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.drop();
    else this.setState("offline");
  }

  // Drops the connection (it is broken, or must start afresh) at once, without waiting
  // for the close handshake; reconnects if wanted.
  drop() {
    const ws = this.ws;
    if (!ws) return;
    ws.close(1000);
    this.closed(ws);
  }

  // After a successful login: the next loss starts again from the shortest delay.
  resetBackoff() {
    this.delay = 0;
  }

  retryNow() {
    if (!this.wanted || this.ws) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.open();
  }

  // Sends a request and resolves to its reply; to {result:"disconnected"} when there is
  // no connection or it is lost before the reply.
  request(obj) {
    if (this.state !== "open") return Promise.resolve({ result: "disconnected" });
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.drop(), REPLY_TIMEOUT_MS);
      this.pending.set(id, { resolve, timer });
      this.send({ ...obj, id });
    });
  }

  // Sends a request that gets no reply when accepted (ack).
  send(obj) {
    if (this.state !== "open") return;
    this.ws.send(JSON.stringify(obj));
    this.lastSend = Date.now();
  }

  open() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.setState("connecting");
    ws.onopen = () => {
      this.setState("open");
      this.dispatchEvent(new Event("open"));
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = () => this.closed(ws);
  }

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // not ours to show; the server never sends this
    }
    if (!msg || typeof msg.cmd !== "string") return;
    const waiting = msg.id !== undefined && this.pending.get(msg.id);
    if (waiting) {
      this.pending.delete(msg.id);
      clearTimeout(waiting.timer);
      waiting.resolve(msg);
      this.dispatchEvent(new CustomEvent("reply", { detail: msg }));
    } else if (msg.cmd === "error" || msg.cmd.endsWith("_reply")) {
      this.dispatchEvent(new CustomEvent("error-line", { detail: msg }));
    } else {
      this.dispatchEvent(new CustomEvent("push", { detail: msg }));
    }
  }

  closed(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    for (const { resolve, timer } of this.pending.values()) {
      clearTimeout(timer);
      resolve({ result: "disconnected" });
    }
    this.pending.clear();
    this.setState("offline");
    this.dispatchEvent(new Event("close")); // a listener may stop() here
    if (!this.wanted) return;
    // 1 s, 2 s, 4 s ... 30 s, each drawn between half and all of it, so that the
    // clients of a restarted server do not all come back in the same second.
    this.delay = this.delay ? Math.min(this.delay * 2, MAX_DELAY_MS) : FIRST_DELAY_MS;
    this.retryInMs = Math.round(this.delay / 2 + (Math.random() * this.delay) / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open();
    }, this.retryInMs);
    this.setState("waiting");
  }

  keepalive() {
    if (this.state === "open" && Date.now() - this.lastSend > KEEPALIVE_MS)
      this.request({ cmd: "ping" });
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new Event("state"));
  }
}
