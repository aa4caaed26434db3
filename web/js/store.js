// What the page knows: friends and their presence, groups, and each conversation's
// messages with their marks and unread count. Views draw from it; every change fires
// "change" (detail: the key of the conversation that changed, or null for the lists).

export class Store extends EventTarget {
  constructor() {
    super();
    this.reset(null);
  }

  reset(me) {
    this.me = me;
    this.friends = new Map(); // name -> online (true, false, or null: not known yet)
    this.groups = new Set();
    this.convs = new Map(); // "u:name" or "g:name" -> conversation
    this.active = null; // the key of the conversation on screen
    this.changed(null);
  }

  conv(kind, name) {
    const key = `${kind}:${name}`;
    let c = this.convs.get(key);
    if (!c) {
      c = { key, kind, name, messages: [], byId: new Map(), unread: 0, more: null };
      this.convs.set(key, c);
    }
    return c;
  }

  // From login_reply's fri (names) or friends_reply (objects with online).
  setFriends(list) {
    const old = this.friends;
    this.friends = new Map();
    for (const f of list) {
      if (typeof f === "string") this.friends.set(f, old.get(f) ?? null);
      else this.friends.set(f.user, !!f.online);
    }
    this.changed(null);
  }

  setPresence(user, online) {
    if (!this.friends.has(user)) return;
    this.friends.set(user, online);
    this.changed(null);
  }

  setGroups(names) {
    this.groups = new Set(names);
    this.changed(null);
  }

  // The conversation a pushed message belongs to.
  convOfPush(msg) {
    return msg.cmd === "group_chat_recv"
      ? this.conv("g", msg.group)
      : this.conv("u", msg.user_from);
  }

  // Adds a message (a push, or one of history, shaped alike) unless the conversation
  // has it already; counts it unread if it is someone else's and arrived live while
  // its conversation is not on screen. Returns whether it was new.
  addMessage(c, m, live) {
    const added = this.insert(c, m, live);
    this.changed(c.key);
    return added;
  }

  // A page of history, with one change for the page: the view keeps its place once.
  addHistory(c, messages) {
    for (const m of messages) this.insert(c, m, false);
    this.changed(c.key);
  }

  insert(c, m, live) {
    const msg = {
      msgId: String(m.msg_id),
      seq: m.seq,
      ts: m.ts,
      from: m.user_from,
      text: m.text,
      offline: !!m.offline,
      own: m.user_from === this.me,
      status: m.read ? "read" : m.delivered ? "delivered" : "sent",
    };
    const known = c.byId.get(msg.msgId);
    if (known) {
      if (rank(msg.status) > rank(known.status)) known.status = msg.status;
      return false;
    }
    c.byId.set(msg.msgId, msg);
    insertBySeq(c.messages, msg);
    if (live && !msg.own && (c.key !== this.active || document.hidden)) c.unread++;
    return true;
  }

  // A message of ours not yet accepted (status "sending"); `accepted` gives it its
  // msg_id and place once the reply comes.
  addOwn(c, text, cid) {
    const msg = { cid, text, from: this.me, own: true, ts: Date.now(), status: "sending" };
    c.messages.push(msg);
    this.changed(c.key);
    return msg;
  }

  accepted(c, msg, reply) {
    c.messages.splice(c.messages.indexOf(msg), 1);
    const known = c.byId.get(String(reply.msg_id)); // a push of it came first (to self)
    if (!known) {
      Object.assign(msg, { msgId: String(reply.msg_id), seq: reply.seq, ts: reply.ts });
      msg.status = reply.result === "offline" ? "stored" : "sent";
      c.byId.set(msg.msgId, msg);
      insertBySeq(c.messages, msg);
    }
    this.changed(c.key);
  }

  failed(c, msg, error) {
    msg.status = "failed";
    msg.error = error;
    this.changed(c.key);
  }

  // A receipt: "delivered" marks one message, "read" it and every one of ours before it.
  receipt(r) {
    const c = this.convs.get(`u:${r.user}`);
    const target = c && c.byId.get(String(r.msg_id));
    if (!target) return;
    const status = r.status === "read" ? "read" : "delivered";
    for (const m of c.messages) {
      const covered = m === target || (status === "read" && m.own && m.seq < target.seq);
      if (covered && rank(status) > rank(m.status)) m.status = status;
    }
    this.changed(c.key);
  }

  // The newest message in a private conversation sent by the other user.
  newestFromPeer(c) {
    for (let i = c.messages.length - 1; i >= 0; i--)
      if (!c.messages[i].own && c.messages[i].msgId) return c.messages[i];
    return null;
  }

  changed(key) {
    this.dispatchEvent(new CustomEvent("change", { detail: key }));
  }
}

const RANKS = ["failed", "sending", "sent", "stored", "delivered", "read"];
function rank(status) {
  return RANKS.indexOf(status);
}

// Keeps messages ordered by seq; messages still being sent (no seq) stay last.
function insertBySeq(list, msg) {
  let i = list.length;
  while (i > 0 && (list[i - 1].seq === undefined || list[i - 1].seq > msg.seq)) i--;
  list.splice(i, 0, msg);
}
