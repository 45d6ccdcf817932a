// The demo page works without this script; it adds user-id suggestions while typing and
// similar items shown in place. Every value from the server is set as text, never as HTML.
"use strict";

function debounce(f, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => f(...a), ms); };
}

function suggestUsers() {
  const input = document.getElementById("user");
  const list = document.getElementById("user-ids");
  if (!input || !list) return;
  input.addEventListener("input", debounce(async () => {
    const prefix = input.value.trim();
    if (!prefix) { list.replaceChildren(); return; }
    try {
      const r = await fetch("/v1/users?limit=20&prefix=" + encodeURIComponent(prefix));
      if (!r.ok) return;
      const body = await r.json();
      list.replaceChildren(...body.user_ids.map((id) => {
        const o = document.createElement("option");
        o.value = id;
        return o;
      }));
    } catch (_) { /* suggestions are optional */ }
  }, 150));
}

function itemLink(it) {
  const a = document.createElement("a");
  a.href = "/items/" + encodeURIComponent(it.item_id);
  a.textContent = it.title ? it.title + " (" + it.item_id + ")" : it.item_id;
  return a;
}

async function toggleSimilar(button) {
  const box = button.nextElementSibling;
  if (button.getAttribute("aria-expanded") === "true") {
    button.setAttribute("aria-expanded", "false");
    box.replaceChildren();
    return;
  }
  button.setAttribute("aria-expanded", "true");
  box.textContent = "Loading…";
  try {
    const id = button.dataset.item;
    const r = await fetch("/v1/items/" + encodeURIComponent(id) + "/similar?k=5");
    const body = await r.json();
    if (!r.ok) { box.textContent = body.error || "No similar items."; return; }
    if (body.items.length === 0) { box.textContent = "This model has no notion of item similarity."; return; }
    const ul = document.createElement("ul");
    for (const it of body.items) {
      const li = document.createElement("li");
      li.append(itemLink(it), " " + it.score.toFixed(3));
      ul.append(li);
    }
    box.replaceChildren(ul);
  } catch (_) {
    box.textContent = "Could not load similar items.";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  suggestUsers();
  for (const b of document.querySelectorAll("button.similar")) {
    b.addEventListener("click", () => toggleSimilar(b));
  }
  document.documentElement.classList.add("js");
});
