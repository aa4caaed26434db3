// The conversation on screen: its messages with sender, time and marks, paging back
// through history by scrolling up, the composer, read marks, and a group's members.

import { neutralise, shortTime } from "./text.js";
import { refusal } from "./words.js";
import { refreshGroups } from "./sidebar-view.js";

const PAGE = 50;
const NEAR_EDGE_PX = 40;

export function setupConversation(store, conn, session, outbox) {
  const el = (id) => document.getElementById(id);
  const title = el("conv-title");
  const box = el("messages");
  const list = el("message-list");
  const older = el("older");
  const composer = el("composer");
  const text = el("text");
  const error = el("conv-error");
  const membersButton = el("members-button");
  const members = el("members");
  const leaveButton = el("leave-button");
  const items = new WeakMap(); // message -> its <li>
  let current = null;

  function open(kind, name) {
    current = store.conv(kind, name);
    store.active = current.key;
    current.unread = 0;
    title.textContent = kind === "g" ? `Group ${neutralise(name)}` : neutralise(name);
    membersButton.hidden = leaveButton.hidden = kind !== "g";
    showMembers(false);
    composer.hidden = false;
    error.textContent = "";
    list.replaceChildren();
    store.changed(current.key);
    box.scrollTop = box.scrollHeight;
    if (current.more === null) loadOlder();
    text.focus();
  }

  function close() {
    current = null;
    store.active = null;
    title.textContent = "Pick a friend or a group";
    membersButton.hidden = leaveButton.hidden = composer.hidden = older.hidden = true;
    showMembers(false);
    list.replaceChildren();
    store.changed(null);
  }

  function render() {
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_EDGE_PX;
    const fromBottom = box.scrollHeight - box.scrollTop;
    const firstBefore = list.firstElementChild;
    list.replaceChildren(...current.messages.map(item));
    older.hidden = !current.more;
    if (atBottom) box.scrollTop = box.scrollHeight;
    else if (firstBefore && list.firstElementChild !== firstBefore)
      box.scrollTop = box.scrollHeight - fromBottom; // older ones came in above
    markRead();
  }

  // The <li> of a message, made once and its marks brought up to date.
  function item(m) {
    let li = items.get(m);
    if (!li) {
      li = document.createElement("li");
      const meta = li.appendChild(document.createElement("div"));
      meta.className = "meta";
      meta.appendChild(document.createElement("span")).className = "from";
      meta.appendChild(document.createElement("time"));
      meta.appendChild(document.createElement("span")).className = "mark";
      const p = li.appendChild(document.createElement("p"));
      p.className = "text";
      p.dir = "auto";
      p.textContent = neutralise(m.text);
      items.set(m, li);
    }
    li.className = m.own ? "msg own" : "msg";
    li.querySelector(".from").textContent = m.own ? "you" : neutralise(m.from);
    const time = li.querySelector("time");
    time.dateTime = new Date(m.ts).toISOString();
    time.textContent = shortTime(m.ts);
    li.querySelector(".mark").textContent = mark(m);
    return li;
  }

  function mark(m) {
    if (!m.own) return m.offline ? "received while you were away" : "";
    if (m.status === "sending") return "sending…";
    if (m.status === "failed") return `not sent: ${m.error}`;
    if (current.kind === "g") return "";
    if (m.status === "stored") return `stored: ${current.name} is offline`;
    return m.status; // sent, delivered, read
  }

  async function loadOlder() {
    const c = current;
    if (!c || c.loading || c.more === false) return;
    c.loading = true;
    const req = { cmd: "history", limit: PAGE };
    req[c.kind === "g" ? "group" : "with"] = c.name;
    const oldest = c.messages.find((m) => m.msgId);
    if (c.more && oldest) req.before = oldest.msgId;
    const r = await conn.request(req);
    c.loading = false;
    if (r.result !== "success") {
      if (c === current && r.result !== "disconnected") error.textContent = refusal(r);
      return;
    }
    c.more = !!r.more;
    store.addHistory(c, r.messages ?? []);
  }

  // A private conversation on screen is read up to its newest message from the other
  // user; tell the server once for each newer one (acknowledged first, so the sender
  // sees "delivered" before "read").
  function markRead() {
    const c = current;
    if (!c || c.kind !== "u" || document.hidden || !session.loggedIn) return;
    const newest = store.newestFromPeer(c);
    if (!newest || (c.readSeq ?? -1) >= newest.seq) return;
    c.readSeq = newest.seq;
    session.flushAck();
    conn.request({ cmd: "read", with: c.name, msg_id: newest.msgId });
  }

  async function showMembers(show) {
    members.hidden = !show;
    membersButton.setAttribute("aria-expanded", String(show));
    if (!show) return;
    const r = await conn.request({ cmd: "group_members", group: current.name });
    if (r.result !== "success") return (error.textContent = refusal(r));
    members.querySelector("ul").replaceChildren(...r.members.map((m) => {
      const li = document.createElement("li");
      const flags = [m.owner && "owner", m.online ? "online" : "offline"].filter(Boolean);
      li.textContent = `${neutralise(m.user)} (${flags.join(", ")})`;
      li.className = m.online ? "online" : "";
      return li;
    }));
  }

  store.addEventListener("change", (e) => {
    if (current && (e.detail === current.key || e.detail === null)) render();
  });
  document.addEventListener("visibilitychange", () => {
    if (!current || document.hidden) return;
    current.unread = 0;
    store.changed(current.key);
  });
  box.addEventListener("scroll", () => {
    if (box.scrollTop < NEAR_EDGE_PX && current?.more) loadOlder();
  });
  older.addEventListener("click", loadOlder);
  membersButton.addEventListener("click", () => showMembers(members.hidden));
  leaveButton.addEventListener("click", async () => {
    const name = current.name;
    if (!confirm(`Leave the group ${name}?`)) return;
    const r = await conn.request({ cmd: "leave_group", group: name });
    if (r.result !== "success") return (error.textContent = refusal(r));
    store.convs.delete(`g:${name}`);
    close();
    refreshGroups(store, conn);
  });

  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!current || text.value.trim() === "") return;
    outbox.send(current, text.value);
    text.value = "";
    error.textContent = "";
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    if (!members.hidden) showMembers(false);
    error.textContent = "";
  });

  return { open, close, markRead };
}
