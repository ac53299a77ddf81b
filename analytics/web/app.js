// The analytics page: asks once for an admin token (kept in localStorage),
// then draws the /v1/admin/analytics/* answers. No framework: uPlot draws
// the time series, tables the rest.
"use strict";
(function () {
  const KEY = "onair.analytics.token";
  const $ = (id) => document.getElementById(id);
  const palette = ["#2980b9", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50"];
  const charts = {};

  function askToken(msg) {
    $("dashboard").hidden = true;
    $("token-form").hidden = false;
    $("status").textContent = msg || "";
  }

  async function get(path) {
    const r = await fetch("/v1/admin/analytics/" + path, { headers: { Authorization: "Bearer " + localStorage.getItem(KEY) } });
    if (r.status === 401 || r.status === 403) {
      localStorage.removeItem(KEY);
      throw Object.assign(new Error("the token was refused (" + r.status + "): enter an admin token"), { auth: true });
    }
    const body = await r.json();
    if (!r.ok) throw new Error(path + ": " + ((body.error && body.error.message) || r.status));
    return body;
  }

  function drawSeries(id, data, unit) {
    const names = Object.keys(data.series).sort();
    const xs = data.days.map((d) => Date.parse(d + "T00:00:00") / 1000);
    const opts = {
      width: 560, height: 260,
      series: [{}].concat(names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, value: (u, v) => v == null ? "" : v.toFixed(unit === "h" ? 1 : 0) }))),
      axes: [{}, { label: unit === "h" ? "hours" : "users" }],
    };
    if (charts[id]) charts[id].destroy();
    $(id).textContent = "";
    charts[id] = new uPlot(opts, [xs].concat(names.map((n) => data.series[n])), $(id));
    $(id).dataset.series = names.length;
  }

  function fill(id, rows) {
    const tb = $(id).querySelector("tbody");
    tb.textContent = "";
    for (const cells of rows) {
      const tr = tb.insertRow();
      for (const c of cells) {
        const td = tr.insertCell();
        if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      }
    }
  }

  const pct = (a, b) => b ? (100 * a / b).toFixed(1) + " %" : "–";

  async function load() {
    const days = $("days").value, biz = $("biz").value;
    try {
      const [dau, listening, hour, today, retention, stations] = await Promise.all([
        get("dau?days=" + days), get("listening?days=" + days),
        get("top?window=hour&limit=10&biz=" + biz), get("top?window=day&limit=10&biz=" + biz),
        get("retention?days=" + days), get("stations?days=7"),
      ]);
      $("token-form").hidden = true;
      $("dashboard").hidden = false;
      $("status").textContent = "";
      drawSeries("dau-chart", dau, "u");
      drawSeries("listening-chart", listening, "h");
      const items = (r) => r.items.map((it) => [String(it.item_id), String(it.plays), (it.listened_ms / 60000).toFixed(0)]);
      fill("top-hour", items(hour));
      fill("top-day", items(today));
      fill("retention", retention.items.map((c) => [c.day, String(c.users), pct(c.day1, c.users), c.mature ? pct(c.day7, c.users) : "–"]));
      fill("stations", stations.items.map((s) => {
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.width = Math.round(200 * s.skip_rate) + "px";
        return [String(s.station_id), String(s.plays), String(s.skips), (100 * s.skip_rate).toFixed(1) + " %", bar];
      }));
      document.body.dataset.loaded = String(Date.now());
    } catch (e) {
      if (e.auth) askToken(e.message); else $("status").textContent = e.message;
    }
  }

  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim().replace(/^Bearer\s+/i, "");
    if (!t) return;
    localStorage.setItem(KEY, t);
    load();
  });
  $("forget").addEventListener("click", () => { localStorage.removeItem(KEY); askToken(); });
  $("days").addEventListener("change", load);
  $("biz").addEventListener("change", load);
  if (localStorage.getItem(KEY)) load(); else askToken();
})();
