// Wires the page together: the connection, the session, the store and the views;
// pushes into the store; the connection state, the live region and the small-screen
// menu.

import { Connection } from "./connection.js";
import { Session } from "./session.js";
import { Store } from "./store.js";
import { Outbox } from "./outbox.js";
import { neutralise } from "./text.js";
import { refusal } from "./words.js";
import { setupLoginView } from "./login-view.js";
import { setupSidebar, refreshFriends, refreshGroups } from "./sidebar-view.js";
import { setupConversation } from "./conversation-view.js";

const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const conn = new Connection(wsUrl);
const session = new Session(conn);
const store = new Store();
const outbox = new Outbox(store, conn, session);

const el = (id) => document.getElementById(id);
const loginView = el("login-view");
const appView = el("app-view");
const live = el("live");
const menu = el("menu-toggle");

const showLogin = setupLoginView(session);
const conversation = setupConversation(store, conn, session, outbox);
// The menu closes first: while it is open the conversation is hidden, and its text
// box could not take the focus.
const sidebar = setupSidebar(store, conn, (kind, name) => {
  setMenu(false);
  conversation.open(kind, name);
});

function showApp(shown) {
  appView.hidden = !shown;
  loginView.hidden = shown;
}

// The first login of the page, or after a logout, by password or with the saved token,
// puts the user somewhere: the sidebar (the menu, on a phone), its first conversation
// focused. Later ones, after a lost connection, leave the page as it is.
let landed = false;

session.addEventListener("login", (e) => {
  const reply = e.detail;
  if (store.me !== session.user) {
    store.reset(session.user);
    conversation.close();
  }
  el("me").textContent = neutralise(session.user);
  if (Array.isArray(reply.fri)) store.setFriends(reply.fri);
  if (Array.isArray(reply.group)) store.setGroups(reply.group);
  refreshFriends(store, conn); // login_reply does not say who is online
  if (!landed) {
    landed = true;
    showApp(true);
    setMenu(true);
    (document.querySelector("#sidebar .conv") ?? el("friend-form").name).focus();
  }
  conversation.markRead();
});

session.addEventListener("logout", (e) => {
  landed = false;
  store.reset(null);
  conversation.close();
  sidebar.say("");
  showApp(false);
  showLogin(e.detail);
});

session.addEventListener("message", (e) => {
  const m = e.detail;
  const c = store.convOfPush(m);
  if (!store.addMessage(c, m, true) || m.user_from === store.me) return;
  const where = m.cmd === "group_chat_recv" ? `in ${m.group} ` : "";
  live.textContent = `${neutralise(m.user_from)} ${where}wrote: ${neutralise(m.text)}`;
});

conn.addEventListener("push", (e) => {
  const p = e.detail;
  if (p.cmd === "presence") store.setPresence(p.user, p.status === "online");
  else if (p.cmd === "receipt") store.receipt(p);
  else if (p.cmd === "friend_added") {
    live.textContent = `${neutralise(p.user_from)} added you as a friend`;
    refreshFriends(store, conn);
  }
});

// A new group seen in a message (another session of ours joined it).
store.addEventListener("change", (e) => {
  const key = e.detail;
  if (key?.startsWith("g:") && !store.groups.has(key.slice(2)) && session.loggedIn)
    refreshGroups(store, conn);
});

function showConnState() {
  const state = el("conn-state");
  const loggingIn = session.loggingIn || session.token;
  const words = {
    open: session.loggedIn || !loggingIn ? "connected" : "logging in…",
    connecting: "connecting…",
    waiting: `connection lost; trying again in ${(conn.retryInMs / 1000).toFixed(1)} s`,
    offline: "not connected",
  };
  state.textContent = words[conn.state];
  state.dataset.state = conn.state;
}
conn.addEventListener("state", showConnState);
session.addEventListener("login", showConnState);
session.addEventListener("logging-in", showConnState);

conn.addEventListener("error-line", (e) => {
  if (e.detail.cmd === "error" && e.detail.result !== "bad_request") conn.drop();
});

// Below 700 px the sidebar is a menu over the conversation.
function setMenu(open) {
  menu.setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("menu-open", open);
}
menu.addEventListener("click", () => setMenu(menu.getAttribute("aria-expanded") !== "true"));
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && document.body.classList.contains("menu-open")) setMenu(false);
});

el("logout").addEventListener("click", () => session.logout(false));
el("logout-all").addEventListener("click", async () => {
  const r = await session.logout(true);
  if (r.result !== "success") sidebar.say(`Not logged out everywhere: ${refusal(r)}`);
});

if (session.start()) showApp(true);
else showLogin("");
