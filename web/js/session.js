// Who is logged in: password and token logins, the saved login, the device name,
// acknowledgements and resuming after a lost connection (login with "since").

import { randomHex } from "./text.js";

const SAVED_LOGIN = "chatd.login"; // {user, token, seq}
const DEVICE = "chatd.device";
const ACK_DELAY_MS = 200;

// Events: "login" (detail: the login_reply), "logout" (detail: a reason or ""),
// "message" (detail: a private_chat_recv or group_chat_recv not seen before),
// "logging-in" (a password login started or ended: this.loggingIn).
export class Session extends EventTarget {
  constructor(conn) {
    super();
    this.conn = conn;
    this.user = null; // logged in, or resuming, as
    this.token = null;
    this.loggedIn = false; // on the current connection
    this.loggingIn = false; // a password login waits for its reply
    this.lastSeq = null; // the highest seq received on this page
    this.ackedSeq = 0;
    this.ackTimer = null;
    conn.addEventListener("open", () => this.resume());
    conn.addEventListener("close", () => this.lost());
    conn.addEventListener("push", (e) => this.pushed(e.detail));
    conn.addEventListener("reply", (e) => this.replied(e.detail));
    window.addEventListener("pagehide", () => this.flushAck());
  }

  // The installation's device name: one per browser profile, kept.
  get device() {
    let d = localStorage.getItem(DEVICE);
    if (!d) {
      d = "web-" + randomHex(6);
      localStorage.setItem(DEVICE, d);
    }
    return d;
  }

  // At page load: resume the saved login if there is one. Returns whether there was.
  start() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(SAVED_LOGIN));
    } catch {
      saved = null;
    }
    if (!saved || typeof saved.user !== "string" || typeof saved.token !== "string")
      return false;
    this.user = saved.user;
    this.token = saved.token;
    if (Number.isInteger(saved.seq)) this.lastSeq = this.ackedSeq = saved.seq;
    this.conn.connect();
    return true;
  }

  // Resolves to the reply (result "disconnected" when chatd cannot be reached).
  async register(user, passwd) {
    if (!(await this.conn.connect())) return { result: "disconnected" };
    return this.conn.request({ cmd: "register", user, passwd });
  }

  async login(user, passwd) {
    this.setLoggingIn(true);
    const reply = (await this.conn.connect())
      ? await this.conn.request({ cmd: "login", user, passwd, device: this.device, ack: true })
      : { result: "disconnected" };
    if (reply.result === "success") this.accepted(user, reply);
    this.setLoggingIn(false);
    return reply;
  }

  setLoggingIn(on) {
    this.loggingIn = on;
    this.dispatchEvent(new Event("logging-in"));
  }

  // Every connection of a logged-in user logs in again with the token, and asks for
  // what came after the last message this page received.
  async resume() {
    if (!this.token) return;
    const req = { cmd: "login", user: this.user, token: this.token, device: this.device, ack: true };
    if (this.lastSeq !== null) req.since = this.lastSeq;
    const reply = await this.conn.request(req);
    if (reply.result === "success") this.accepted(this.user, reply);
    else if (reply.result === "token_invalid" || reply.result === "user_not_exist")
      this.end("Your saved login is no longer valid: log in again.");
    else this.conn.drop(); // busy, rate limited...: try again after the backoff
  }

  accepted(user, reply) {
    if (this.user !== user) {
      this.lastSeq = null;
      this.ackedSeq = 0;
    }
    this.user = user;
    if (typeof reply.token === "string") this.token = reply.token;
    this.saveLogin();
    this.loggedIn = true;
    this.conn.resetBackoff();
    this.dispatchEvent(new CustomEvent("login", { detail: reply }));
  }

  // A plain logout ends the page's login even without a connection; logging out
  // everywhere needs the server's success. Resolves to the reply.
  async logout(everywhere) {
    this.flushAck();
    const r = await this.conn.request(everywhere ? { cmd: "logout", all: true } : { cmd: "logout" });
    if (r.result === "success" || !everywhere) this.end("");
    return r;
  }

  end(reason) {
    localStorage.removeItem(SAVED_LOGIN);
    this.user = this.token = this.lastSeq = null;
    this.ackedSeq = 0;
    this.loggedIn = false;
    this.conn.stop();
    this.dispatchEvent(new CustomEvent("logout", { detail: reason }));
  }

  lost() {
    this.loggedIn = false;
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (!this.token) this.conn.stop(); // nobody to log in again: connect when asked
  }

  // The server ended this connection's login without a word ("logout" with "all" from
  // another device of ours): the next request is answered not_logged_in. Log in again
  // with the token, which ends the page's login if the token was revoked with it.
  replied(reply) {
    if (reply.result !== "not_logged_in" || !this.loggedIn) return;
    this.loggedIn = false;
    this.resume();
  }

  // A message is passed on once: one whose seq is at or below the last one received
  // was already passed on (a repeat after a reconnect or a crash of the server).
  pushed(msg) {
    if (msg.cmd !== "private_chat_recv" && msg.cmd !== "group_chat_recv") return;
    if (Number.isInteger(msg.seq)) {
      if (this.lastSeq !== null && msg.seq <= this.lastSeq) return;
      this.lastSeq = msg.seq;
      this.ackTimer ??= setTimeout(() => this.flushAck(), ACK_DELAY_MS);
    }
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
  }

  // Acknowledges what this page has received (one ack for a burst), and saves how far
  // it got: the next page of this browser resumes with "since" from there. An ack sent
  // as the page goes away may never leave it (Firefox drops it), and without the saved
  // seq the next page would be sent those messages again as if they were new.
  flushAck() {
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.saveLogin();
    if (!this.loggedIn || this.lastSeq === null || this.lastSeq <= this.ackedSeq) return;
    this.conn.send({ cmd: "ack", seq: this.lastSeq });
    this.ackedSeq = this.lastSeq;
  }

  saveLogin() {
    if (!this.user || !this.token) return;
    const saved = { user: this.user, token: this.token };
    if (this.lastSeq !== null) saved.seq = this.lastSeq;
    localStorage.setItem(SAVED_LOGIN, JSON.stringify(saved));
  }
}
