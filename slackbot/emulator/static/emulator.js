// The emulator page: polls /ui/state for the server-rendered fragments and posts what the person
// does to /ui/<gesture>. It never builds markup from workspace text: fragments arrive rendered and
// escaped by the server, and the few strings set here go through textContent.
"use strict";
(() => {
  const app = document.getElementById("app");
  if (!app) return;
  const cfg = JSON.parse(app.dataset.cfg);
  const $ = (id) => document.getElementById(id);
  let user = cfg.user;
  let thread = null;
  let shown = null;
  let shownModal = null;
  let asked = 0;
  let applied = 0;

  function notice(text) {
    const box = $("notice");
    box.textContent = text;
    box.classList.add("on");
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => box.classList.remove("on"), 8000);
  }

  async function post(gesture, body) {
    try {
      const response = await fetch("/ui/" + gesture, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user, ...body }),
      });
      let data;
      try {
        data = await response.json();
      } catch (err) {
        data = { ok: false, detail: "HTTP " + response.status };
      }
      if (data.ok === false) notice(data.detail || data.error);
      return data;
    } catch (err) {
      notice("The emulator is not reachable: " + err);
      return { ok: false, error: "unreachable" };
    } finally {
      refresh();
    }
  }

  async function refresh() {
    const mine = ++asked;
    const query = new URLSearchParams({ user });
    if (cfg.channel) query.set("channel", cfg.channel);
    if (cfg.home) query.set("home", "1");
    let data;
    try {
      const response = await fetch("/ui/state?" + query, { cache: "no-store" });
      data = await response.json();
      if (!response.ok) {
        notice(data.detail || data.error);
        return;
      }
    } catch (err) {
      return; // the emulator stopped or restarts: the next poll tries again
    }
    if (mine < applied) return; // an older answer overtaken by a newer one
    applied = mine;
    if (data.html !== shown) {
      const first = shown === null;
      const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      shown = data.html;
      $("timeline").innerHTML = data.html;
      if (first || atBottom) window.scrollTo(0, document.body.scrollHeight);
    }
    if (data.modal !== shownModal) {
      shownModal = data.modal;
      $("modal").innerHTML = data.modal;
    }
  }

  function containerOf(el) {
    const holder = el.closest("[data-container]");
    return holder ? JSON.parse(holder.dataset.container) : null;
  }

  function confirmThen(confirm, go) {
    const box = $("confirm");
    box.innerHTML =
      '<div class="overlay"><div class="dialog" role="dialog"><div class="title"></div><div class="text"></div>' +
      '<div class="buttons"><button type="button" class="deny"></button>' +
      '<button type="button" class="btn primary ok"></button></div></div></div>';
    box.querySelector(".title").textContent = confirm.title;
    box.querySelector(".text").textContent = confirm.text;
    box.querySelector(".deny").textContent = confirm.deny;
    box.querySelector(".ok").textContent = confirm.confirm;
    box.querySelector(".deny").onclick = () => (box.innerHTML = "");
    box.querySelector(".ok").onclick = () => {
      box.innerHTML = "";
      go();
    };
  }

  function fire(el, act) {
    const container = containerOf(el);
    const send = () => {
      if (act.url) window.open(act.url, "_blank", "noopener");
      return post("action", { container, act });
    };
    if (act.confirm) confirmThen(act.confirm, send);
    else send();
  }

  function setThread(ts) {
    thread = ts;
    const box = $("replying");
    if (box) box.hidden = !ts;
    if (ts) $("compose").focus();
  }

  function formValues(form) {
    const values = {};
    form.querySelectorAll("[data-input]").forEach((el) => {
      const at = JSON.parse(el.dataset.input);
      const value = el.multiple ? Array.from(el.selectedOptions).map((o) => o.value) : el.value;
      (values[at.block_id] = values[at.block_id] || {})[at.action_id] = value;
    });
    return values;
  }

  function switchUser(id) {
    user = id;
    const url = cfg.home ? "/home/" + encodeURIComponent(id) : location.pathname + "?as=" + encodeURIComponent(id);
    history.replaceState(null, "", url);
    document.querySelectorAll("a.nav").forEach((a) => {
      const link = new URL(a.href);
      if (link.pathname.startsWith("/home/")) link.pathname = "/home/" + encodeURIComponent(id);
      else link.searchParams.set("as", id);
      a.href = link.toString();
    });
    shown = shownModal = null;
    if (cfg.home) post("home", {});
    else refresh();
  }

  document.addEventListener("click", (ev) => {
    const target = ev.target;
    const button = target.closest("button[data-act]");
    if (button) {
      ev.preventDefault();
      fire(button, JSON.parse(button.dataset.act));
    } else if (target.closest(".reply-to")) {
      setThread(containerOf(target).ts);
    } else if (target.id === "unthread") {
      setThread(null);
    } else if (target.closest(".close-view")) {
      post("close", { view_id: target.closest("form[data-view]").dataset.view });
    }
  });

  document.addEventListener("change", (ev) => {
    const el = ev.target;
    if (el.matches("select[data-act]")) {
      const option = el.selectedOptions[0];
      fire(el, { ...JSON.parse(el.dataset.act), value: el.value, text: option ? option.textContent : "" });
    } else if (el.matches("select.react")) {
      const at = containerOf(el);
      post("react", { channel: at.channel, ts: at.ts, name: el.value });
    } else if (el.id === "as") {
      switchUser(el.value);
    }
  });

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    ev.preventDefault();
    if (form.id === "composer") {
      const input = $("compose");
      const text = input.value;
      if (!text.trim()) return;
      input.value = "";
      const answer = await post("compose", { channel: cfg.channel, text, thread_ts: thread });
      if (answer.ok === false && answer.error !== "dispatch_failed") input.value = text; // refused: keep it
    } else if (form.dataset.view) {
      post("submit", { view_id: form.dataset.view, values: formValues(form) });
    }
  });

  if (cfg.home) post("home", {});
  refresh();
  setInterval(refresh, 400);
})();
