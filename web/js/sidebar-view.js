// The sidebar: friends with presence, groups, unread counts, and the forms that add a
// friend and create or join a group.

import { neutralise } from "./text.js";
import { refusal } from "./words.js";

export function setupSidebar(store, conn, open) {
  const friendList = document.getElementById("friend-list");
  const groupList = document.getElementById("group-list");
  const status = document.getElementById("sidebar-status");
  const friendForm = document.getElementById("friend-form");
  const groupForm = document.getElementById("group-form");

  function entry(kind, name, online) {
    const c = store.convs.get(`${kind}:${name}`);
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "conv";
    b.dataset.key = `${kind}:${name}`;
    const parts = [name];
    if (online !== undefined) {
      const dot = b.appendChild(document.createElement("span"));
      dot.className = online ? "dot online" : "dot";
      parts.push(online ? "online" : online === null ? "" : "offline");
    }
    b.appendChild(document.createElement("span")).textContent = neutralise(name);
    if (c && c.unread) {
      const badge = b.appendChild(document.createElement("span"));
      badge.className = "badge";
      badge.textContent = c.unread;
      parts.push(`${c.unread} unread`);
    }
    b.setAttribute("aria-label", parts.filter(Boolean).join(", "));
    if (store.active === `${kind}:${name}`) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => open(kind, name));
    li.appendChild(b);
    return li;
  }

  function render() {
    // Lists are drawn anew; the focused entry keeps the focus.
    const focused = document.activeElement?.dataset?.key;
    const people = [...store.friends].map(([name, online]) => entry("u", name, online));
    // People who wrote to us without being friends have a conversation too.
    for (const c of store.convs.values())
      if (c.kind === "u" && !store.friends.has(c.name)) people.push(entry("u", c.name));
    friendList.replaceChildren(...people);
    groupList.replaceChildren(...[...store.groups].sort().map((g) => entry("g", g)));
    if (focused) [...document.querySelectorAll(".conv")].find((b) => b.dataset.key === focused)?.focus();
  }
  store.addEventListener("change", render);

  friendForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = friendForm.name.value;
    const r = await conn.request({ cmd: "add_friend", friend: name });
    status.textContent = r.result === "success" ? `${name} is your friend now.` : refusal(r);
    if (r.result === "success") {
      friendForm.reset();
      refreshFriends(store, conn);
    }
  });

  groupForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const cmd = e.submitter?.value ?? "join_group";
    const name = groupForm.name.value;
    const r = await conn.request({ cmd, group: name });
    if (r.result !== "success") return (status.textContent = refusal(r));
    status.textContent = cmd === "create_group" ? `Created ${name}.` : `Joined ${name}.`;
    groupForm.reset();
    await refreshGroups(store, conn);
    open("g", name);
  });

  return { say: (text) => (status.textContent = text) };
}

export async function refreshFriends(store, conn) {
  const r = await conn.request({ cmd: "friends" });
  if (r.result === "success" && Array.isArray(r.friends)) store.setFriends(r.friends);
}

export async function refreshGroups(store, conn) {
  const r = await conn.request({ cmd: "groups" });
  if (r.result === "success" && Array.isArray(r.groups)) store.setGroups(r.groups);
}
