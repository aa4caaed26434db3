// Sending messages so that each is delivered exactly once: every message gets its own
// client_msg_id, and one whose reply did not come (the connection was lost) is sent
// again with the same id after the next login; the server answers a repeat without
// delivering it twice.

import { randomHex } from "./text.js";
import { refusal } from "./words.js";

const BUSY_RETRY_MS = 2000;

export class Outbox {
  constructor(store, conn, session) {
    this.store = store;
    this.conn = conn;
    this.session = session;
    this.items = []; // { c, msg, inFlight }
    session.addEventListener("login", () => this.items.forEach((it) => this.attempt(it)));
    session.addEventListener("logout", () => (this.items = []));
  }

  send(c, text) {
    const item = { c, msg: this.store.addOwn(c, text, randomHex(16)), inFlight: false };
    this.items.push(item);
    this.attempt(item);
  }

  // Sent only while logged in: before the login reply a message would be refused
  // not_logged_in; every item is attempted again at each login.
  async attempt(item) {
    if (item.inFlight || !this.session.loggedIn) return;
    item.inFlight = true;
    const { c, msg } = item;
    const req = c.kind === "g"
      ? { cmd: "group_chat", group: c.name, text: msg.text, client_msg_id: msg.cid }
      : { cmd: "private_chat", user_to: c.name, text: msg.text, client_msg_id: msg.cid };
    const r = await this.conn.request(req);
    item.inFlight = false;
    // Again after the next login (not_logged_in: the session's login was lost).
    if (r.result === "disconnected" || r.result === "not_logged_in") return;
    if (r.result === "busy" || r.result === "rate_limited") {
      setTimeout(() => this.attempt(item), r.retry_after_ms ?? BUSY_RETRY_MS);
      return;
    }
    const i = this.items.indexOf(item);
    if (i < 0) return; // logged out meanwhile
    this.items.splice(i, 1);
    if (r.result === "success" || r.result === "offline") this.store.accepted(c, msg, r);
    else this.store.failed(c, msg, refusal(r));
  }
}
