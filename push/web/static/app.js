// onair live-room page: sign-in by SMS code, room list, one room over
// GET /v1/ws (docs/api.md "Live rooms: WebSocket") and the personal
// channel (pk_invite, notice). People are named by nickname, never by
// phone. Plain DOM, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("onair.token"), user: sessionStorage.getItem("onair.user"),
  refresh: sessionStorage.getItem("onair.refresh"), nickname: "", personal: null, seen: new Set() };
const room = { id: 0, anchor: 0, ws: null, lastSeq: -1, gifts: new Set(), ping: 0, retry: 0, closing: false, versions: {} };

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  let data = null;
  try { data = await r.json(); } catch (e) { /* empty body */ }
  return { status: r.status, data };
}

function errText(res) {
  const e = res.data && res.data.error;
  return "HTTP " + res.status + (e ? ": " + e.message + (e.field ? " (" + e.field + ")" : "") : "");
}

// --- sign in ---------------------------------------------------------------
$("get-code").onclick = async () => {
  const res = await api("POST", "/v1/auth/sms-code", { phone: $("phone").value.trim() });
  if (res.status !== 200) { $("signin-msg").textContent = errText(res); return; }
  if (res.data.dev_code) { // dev sign-in: the server answers the code
    $("code").value = res.data.dev_code;
    $("signin-msg").textContent = "code sent (dev: " + res.data.dev_code + ")";
  } else {
    $("signin-msg").textContent = "code sent by SMS";
  }
};

$("login").onclick = async () => {
  const res = await api("POST", "/v1/auth/login", { phone: $("phone").value.trim(), code: $("code").value.trim() });
  if (res.status !== 200) { $("signin-msg").textContent = errText(res); return; }
  state.token = res.data.token; state.user = String(res.data.user_id); state.refresh = res.data.refresh_token;
  sessionStorage.setItem("onair.token", state.token);
  sessionStorage.setItem("onair.user", state.user);
  sessionStorage.setItem("onair.refresh", state.refresh);
  $("phone").value = ""; $("code").value = ""; // the phone is not kept on the page
  showRooms();
};

$("logout").onclick = async () => {
  if (state.refresh) await api("POST", "/v1/auth/logout", { refresh_token: state.refresh });
  closePersonal();
  sessionStorage.clear();
  Object.assign(state, { token: null, user: null, refresh: null, nickname: "" });
  $("who").textContent = "";
  $("rooms").hidden = true; $("signin").hidden = false;
};

// --- profile ---------------------------------------------------------------
async function loadMe() {
  const res = await api("GET", "/v1/me");
  if (res.status === 401 && await refreshToken()) return loadMe();
  if (res.status !== 200) { $("who").textContent = "user " + state.user; return; }
  state.nickname = res.data.nickname;
  $("who").textContent = res.data.nickname + (res.data.is_anchor ? " (anchor)" : "");
  $("nickname").value = res.data.nickname;
}

async function refreshToken() {
  if (!state.refresh) return false;
  const res = await api("POST", "/v1/auth/refresh", { refresh_token: state.refresh });
  if (res.status !== 200) return false;
  state.token = res.data.token; state.refresh = res.data.refresh_token;
  sessionStorage.setItem("onair.token", state.token);
  sessionStorage.setItem("onair.refresh", state.refresh);
  return true;
}

$("save-nickname").onclick = async () => {
  const res = await api("PATCH", "/v1/me", { nickname: $("nickname").value });
  if (res.status !== 200) { $("profile-msg").textContent = errText(res); return; }
  $("profile-msg").textContent = "saved";
  state.nickname = res.data.nickname;
  $("who").textContent = res.data.nickname;
};

// --- personal channel ------------------------------------------------------
// A personal-only WebSocket while no room is open (a room's connection
// carries the personal frames too). Frames are shown once per id.
async function openPersonal() {
  if (state.personal) return;
  state.personal = "opening";
  // a single-use ticket, as for the room's connection: the token stays out of URLs
  const t = await api("POST", "/v1/ws/ticket");
  if (state.personal !== "opening") return;
  if (t.status !== 200) {
    state.personal = null;
    if (t.status !== 401 && t.status !== 403) setTimeout(() => { if (state.token && !room.ws) openPersonal(); }, 2000 * (0.5 + Math.random()));
    return;
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/v1/ws?ticket=" + encodeURIComponent(t.data.ticket));
  state.personal = ws;
  let ping = 0;
  ws.onopen = () => { ping = setInterval(() => { if (ws.readyState === 1) ws.send('{"type":"ping"}'); }, 20000); };
  ws.onmessage = (ev) => onPersonal(JSON.parse(ev.data), ws);
  ws.onclose = () => {
    clearInterval(ping);
    if (state.personal !== ws) return;
    state.personal = null;
    setTimeout(() => { if (state.token && !room.ws) openPersonal(); }, 2000 * (0.5 + Math.random()));
  };
}

function closePersonal() {
  const ws = state.personal;
  state.personal = null;
  if (ws && ws !== "opening") ws.close(1000, "room");
}

// onPersonal handles a personal frame; false for any other.
function onPersonal(f, ws) {
  if (f.type !== "pk_invite" && f.type !== "notice") return false;
  if (f.id) {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "ack", id: f.id }));
    if (state.seen.has(f.id)) return true;
    state.seen.add(f.id);
  }
  if (f.type === "pk_invite") showInvite(f);
  else { $("notice").hidden = false; $("notice").textContent = f.message || f.kind; }
  return true;
}

function showInvite(f) {
  $("invite").hidden = false;
  $("invite").dataset.pk = f.pk_id;
  $("invite-msg").textContent = "";
  $("invite-text").textContent = "PK invitation from " + (f.from_nickname || "room " + f.room_a) +
    ": room " + f.room_a + " vs your room " + f.room_b;
}

for (const [id, verb] of [["invite-accept", "accept"], ["invite-decline", "decline"]]) {
  $(id).onclick = async () => {
    const pk = $("invite").dataset.pk;
    const res = await api("POST", "/v1/pk/" + encodeURIComponent(pk) + "/" + verb);
    if (res.status >= 300) { $("invite-msg").textContent = errText(res); return; }
    $("invite").hidden = true;
  };
}

// --- rooms -----------------------------------------------------------------
async function showRooms() {
  $("signin").hidden = true; $("room").hidden = true; $("rooms").hidden = false;
  loadMe();
  loadWallet();
  openPersonal();
  const list = $("room-list");
  list.textContent = "";
  const res = await api("GET", "/v1/rooms?live=true");
  if (res.status !== 200) {
    $("rooms-msg").textContent = "room list unavailable (" + errText(res) + "); enter a room id";
    return;
  }
  const rooms = (res.data && (res.data.items || res.data.rooms)) || [];
  $("rooms-msg").textContent = rooms.length ? "" : "no live room right now";
  for (const r of rooms) {
    const id = r.room_id || r.id;
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.className = "room"; b.dataset.id = id;
    b.textContent = "Room " + id + (r.title ? " · " + r.title : "") + (r.online !== undefined ? " · " + r.online + " online" : "");
    b.onclick = () => joinRoom(id, r.anchor_id);
    li.appendChild(b); list.appendChild(li);
  }
}

$("join").onclick = () => { const id = parseInt($("room-id").value, 10); if (id > 0) joinRoom(id); };
$("leave").onclick = () => { leaveRoom(); showRooms(); };

function joinRoom(id, anchor) {
  leaveRoom();
  closePersonal(); // the room's connection carries the personal frames
  Object.assign(room, { id, anchor: anchor || 0, lastSeq: -1, gifts: new Set(), retry: 0, closing: false, versions: {} });
  $("rooms").hidden = true; $("room").hidden = false;
  $("room-title").textContent = id;
  for (const el of ["ranking", "chat-log", "gift-log", "effects"]) $(el).textContent = "";
  connect();
}

function leaveRoom() {
  room.closing = true;
  clearInterval(room.ping);
  if (room.ws) room.ws.close(1000, "leave");
  room.ws = null;
}

// --- WebSocket -------------------------------------------------------------
// The long-lived token never goes in the URL (proxies log URLs): each
// connection is opened with a single-use ticket valid for 30 s.
async function connect() {
  const id = room.id;
  $("status").textContent = "connecting…";
  const t = await api("POST", "/v1/ws/ticket");
  if (room.closing || room.id !== id) return;
  if (t.status !== 200) {
    $("status").textContent = "cannot connect: " + errText(t);
    if (t.status === 401 || t.status === 403) return;
    const wait = Math.min(10000, 500 * 2 ** room.retry++) * (0.5 + Math.random());
    setTimeout(() => { if (!room.closing && room.id === id) connect(); }, wait);
    return;
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let url = proto + "//" + location.host + "/v1/ws?room=" + room.id + "&ticket=" + encodeURIComponent(t.data.ticket);
  if (room.lastSeq >= 0) url += "&since=" + room.lastSeq; // resume without a gap
  const ws = new WebSocket(url);
  room.ws = ws;
  ws.onopen = () => {
    room.retry = 0;
    $("status").textContent = "";
    clearInterval(room.ping);
    room.ping = setInterval(() => send({ type: "ping" }), 20000); // at least every 30 s
  };
  ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    clearInterval(room.ping);
    if (room.closing || ws !== room.ws) return;
    // 3500-3999: do not reconnect (see the close-code table in docs/api.md).
    if (ev.code >= 3500 && ev.code < 4000) { $("status").textContent = "closed: " + ev.reason; return; }
    $("status").textContent = "reconnecting" + (ev.reason ? " (" + ev.reason + ")" : "") + "…";
    const wait = Math.min(10000, 500 * 2 ** room.retry++) * (0.5 + Math.random());
    setTimeout(() => { if (!room.closing && ws === room.ws) connect(); }, wait);
  };
}

function send(obj) { if (room.ws && room.ws.readyState === 1) room.ws.send(JSON.stringify(obj)); }

// name is how a frame names a person: the nickname, never a phone.
function name(f) { return f.nickname || "user " + f.user_id; }

function onFrame(f) {
  if (onPersonal(f, room.ws)) return;
  switch (f.type) {
    case "snapshot":
      for (const k of ["leaderboard", "pk", "online", "room"]) if (f[k]) onFrame(f[k]);
      for (const it of f.recent || []) onFrame(it);
      room.lastSeq = Math.max(room.lastSeq, f.seq);
      break;
    case "batch": for (const it of f.items) onFrame(it); break;
    case "danmaku": if (fresh(f)) showDanmaku(f); break;
    case "gift":
      send({ type: "ack", id: f.id });          // ack every copy, show it once
      if (room.gifts.has(f.id)) break;
      room.gifts.add(f.id);
      if (f.seq) room.lastSeq = Math.max(room.lastSeq, f.seq);
      showGift(f);
      break;
    case "leaderboard": if (newer(f)) showRanking(f); break;
    case "pk": if (newer(f, f.pk_id)) showPK(f); break;
    case "online": if (newer(f)) $("online").textContent = f.count; break;
    case "room": if (newer(f)) $("status").textContent = f.status === "closed" ? "the room is closed" : ""; break;
  }
}

// fresh: a danmaku is shown once, in seq order.
function fresh(f) {
  if (f.seq <= room.lastSeq) return false;
  room.lastSeq = f.seq;
  return true;
}

// newer: state frames apply only when their version moved on.
function newer(f, key) {
  const k = f.type + (key || "");
  if (room.versions[k] !== undefined && f.version <= room.versions[k]) return false;
  room.versions[k] = f.version;
  return true;
}

function showDanmaku(f) {
  const li = document.createElement("li");
  li.dataset.seq = f.seq;
  li.textContent = name(f) + ": " + f.text;
  const log = $("chat-log");
  log.appendChild(li);
  while (log.children.length > 100) log.removeChild(log.firstChild);
  log.scrollTop = log.scrollHeight;
  const fly = document.createElement("div");
  fly.className = "fly";
  fly.textContent = f.text;
  fly.style.top = (Math.random() * 300 + 10) + "px";
  fly.onanimationend = () => fly.remove();
  $("stage").appendChild(fly);
  $("stage").dataset.flown = +($("stage").dataset.flown || 0) + 1;
}

function showGift(f) {
  const el = document.createElement("div");
  el.className = "gift-effect";
  el.dataset.id = f.id;
  el.textContent = (f.value >= 100 ? "🚀" : "🌹") + " " + name(f) + " ×" + f.value;
  el.onanimationend = () => el.remove();
  $("effects").appendChild(el);
  const li = document.createElement("li");
  li.dataset.id = f.id;
  li.textContent = name(f) + " sent gift " + f.gift_id + " (" + f.value + ")";
  const log = $("gift-log");
  log.insertBefore(li, log.firstChild);
  while (log.children.length > 20) log.removeChild(log.lastChild);
}

function showRanking(f) {
  const ol = $("ranking");
  ol.textContent = "";
  for (const it of f.items || []) {
    const li = document.createElement("li");
    li.textContent = name(it) + " · " + it.score;
    ol.appendChild(li);
  }
}

function showPK(f) {
  $("pk").hidden = false;
  const mine = f.room_a === room.id ? f.score_a : f.score_b;
  const other = f.room_a === room.id ? f.score_b : f.score_a;
  const total = mine + other || 1;
  $("pk-a").style.width = (100 * mine / total) + "%";
  $("pk-b").style.width = (100 * other / total) + "%";
  $("pk-a-score").textContent = mine;
  $("pk-b-score").textContent = other;
  $("pk-winner").textContent = f.winner ? (f.winner === room.id ? "this room wins!" : "room " + f.winner + " wins") : "";
}

// --- sending ---------------------------------------------------------------
$("send-danmaku").onclick = async () => {
  const text = $("danmaku-text").value.trim();
  if (!text) return;
  const res = await api("POST", "/v1/rooms/" + room.id + "/danmaku", { text });
  $("send-msg").textContent = res.status === 202 ? "" : errText(res);
  if (res.status === 202) $("danmaku-text").value = "";
};

// --- wallet ----------------------------------------------------------------
// Gifts are paid for in coins: the balance is shown, a recharge goes
// through the server's payment provider (onair dev's always pays), and a
// gift the wallet cannot pay is refused with 402 and nothing happens.
function randomID() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now());
}

async function loadWallet() {
  const res = await api("GET", "/v1/wallet");
  if (res.status === 200) $("balance").textContent = res.data.balance;
}

$("recharge").onclick = async () => {
  const res = await api("POST", "/v1/wallet/recharge", { order_id: "web-" + randomID(), coins: 1000 });
  if (res.status !== 200) { $("send-msg").textContent = errText(res); return; }
  $("balance").textContent = res.data.balance;
  $("send-msg").textContent = "";
};

for (const id of ["send-gift", "send-gift-small"]) {
  $(id).onclick = async (ev) => {
    const b = ev.currentTarget;
    // event_id makes a retry of this click charge once
    const body = { gift_id: +b.dataset.gift, count: 1, event_id: randomID() };
    const res = await api("POST", "/v1/rooms/" + room.id + "/gifts", body);
    if (res.status === 202) {
      $("balance").textContent = res.data.balance;
      $("send-msg").textContent = "";
    } else if (res.status === 402) {
      $("send-msg").textContent = "not enough coins: recharge first";
    } else {
      $("send-msg").textContent = errText(res);
    }
  };
}

if (state.token) showRooms();
