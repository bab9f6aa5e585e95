// The operations dashboard: polls GET /v1/dashboard (OperationsService.GetDashboard, the proto's JSON)
// with the key it was given and draws what it says. No framework, no CDN, no inline script or style:
// the page's Content-Security-Policy allows only this origin's files. Text from the server is only
// ever set as textContent, never parsed as HTML.
"use strict";

(() => {
  const KEY_STORE = "lattice-dashboard-key";
  const POLL_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const num = (value) => Number(value || 0); // proto3 JSON: int64 as strings, zeros left out

  let violations = 0;
  document.addEventListener("securitypolicyviolation", (event) => {
    violations += 1;
    $("csp-violations").textContent = String(violations);
    console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
  });

  // --- the key: from the URL fragment (never sent to a server) or the form, kept in this tab only ----

  const key = () => sessionStorage.getItem(KEY_STORE) || "";

  function takeKeyFromFragment() {
    const match = /(?:^#|&)key=([^&]*)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search); // out of the address bar
    }
  }

  function showKeyForm(why) {
    setStatus(why, "bad");
    $("board").hidden = true;
    $("key-form").hidden = false;
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = $("key-input").value.trim();
    if (typed) sessionStorage.setItem(KEY_STORE, typed);
    $("key-input").value = "";
    poll();
  });

  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    clearTimeout(timer);
    showKeyForm("The key is forgotten.");
  });

  // --- polling ---------------------------------------------------------------------------------------

  let timer = 0;

  function errorMessage(body) {
    return body && body.error && typeof body.error.message === "string" ? body.error.message : "";
  }

  async function poll() {
    clearTimeout(timer);
    const headers = { accept: "application/json" };
    if (key()) headers["x-api-key"] = key();
    try {
      const response = await fetch("/v1/dashboard", { headers, cache: "no-store", credentials: "omit" });
      const body = await response.json().catch(() => ({}));
      if (response.status === 401 || response.status === 403) {
        showKeyForm(errorMessage(body) || "This dashboard needs an API key.");
        return; // until a key is given
      }
      if (response.ok) {
        render(body);
        setStatus("Live", "good");
      } else {
        setStatus(`The gateway answered ${response.status}: ${errorMessage(body)}`, "bad");
      }
    } catch (error) {
      setStatus(`Cannot reach the gateway: ${error.message}`, "bad");
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = `status ${kind}`;
  }

  // --- rendering -------------------------------------------------------------------------------------

  function render(snapshot) {
    $("key-form").hidden = true;
    $("board").hidden = false;
    const everyone = snapshot.scope === "gateway";
    document.body.classList.toggle("gateway-scope", everyone);
    $("scope").textContent = everyone ? "every account (admin key)" : `account ${snapshot.accountId || "(no key)"}`;
    $("version").textContent = `Lattice ${snapshot.version || "?"}`;
    const now = Date.parse(snapshot.snapshotTime) || Date.now();
    $("updated").textContent = clock(now);

    const buckets = snapshot.activity || [];
    const bucketSeconds = num(snapshot.bucketSeconds) || 10;
    const windowSeconds = num(snapshot.windowSeconds) || buckets.length * bucketSeconds;
    $("window").textContent = `(last ${Math.round(windowSeconds / 60)} min)`;
    $("bucket-size").textContent = `${bucketSeconds} s`;
    renderTotals(buckets, bucketSeconds, snapshot.models || []);
    drawThroughput($("throughput-chart"), buckets);
    drawLatency($("latency-chart"), buckets);
    renderModels(snapshot.models || []);
    renderRuntimes(snapshot.personalRuntimes || [], now);
    renderRecent(snapshot.recentRequests || []);
  }

  function renderTotals(buckets, bucketSeconds, models) {
    let requests = 0, failed = 0, tokens = 0, durationSum = 0;
    for (const bucket of buckets) {
      requests += num(bucket.requests);
      failed += num(bucket.failedRequests);
      tokens += num(bucket.completionTokens);
      durationSum += num(bucket.meanDurationMs) * num(bucket.requests);
    }
    const lastMinute = buckets.slice(-Math.max(1, Math.round(60 / bucketSeconds)));
    const recentTokens = lastMinute.reduce((sum, bucket) => sum + num(bucket.completionTokens), 0);
    $("total-requests").textContent = String(requests);
    $("total-failed").textContent = String(failed);
    $("total-tokens").textContent = String(tokens);
    $("tokens-per-second").textContent = (recentTokens / (lastMinute.length * bucketSeconds)).toFixed(1);
    $("mean-latency").textContent = requests ? duration(durationSum / requests) : "–";
    $("queued-now").textContent = String(models.reduce((sum, model) => sum + num(model.queued), 0));
  }

  function renderModels(models) {
    const rows = models.map((entry) => {
      const model = entry.model || {};
      const capabilities = (model.capabilities || [])
        .map((c) => String(c).replace(/^CAPABILITY_/, "").toLowerCase().replace(/_/g, " "))
        .join(", ");
      return row([
        model.id || "",
        model.backend || "",
        badge(entry.state || "", `state-${entry.state || "unknown"}`),
        capabilities,
        num(entry.running),
        num(entry.maxConcurrency),
        num(entry.queued),
      ]);
    });
    fill($("models"), rows, 7, "No models.");
  }

  function renderRuntimes(runtimes, now) {
    const rows = runtimes.map((runtime) => {
      const seen = Date.parse(runtime.lastSeenTime || "");
      return row([
        runtime.latticeId || "",
        runtime.displayName || "",
        { text: runtime.accountId || "", className: "gateway-only" },
        badge(runtime.status || "", `runtime-${runtime.status || "unknown"}`),
        num(runtime.inFlight),
        Number.isNaN(seen) ? "–" : `${Math.max(0, Math.round((now - seen) / 1000))} s ago`,
      ]);
    });
    fill($("runtimes"), rows, 6, "No personal runtimes.");
  }

  function renderRecent(requests) {
    const rows = requests.map((request) => {
      const status = request.status || "";
      const kind = status === "ok" ? "good" : status === "cancelled" ? "neutral" : "bad";
      return row([
        clock(Date.parse(request.endTime)),
        { text: request.requestId || "", className: "mono" },
        { text: request.accountId || "", className: "gateway-only" },
        request.model || "",
        request.backend || "–",
        badge(status, kind),
        duration(num(request.durationMs)),
        request.firstTokenMs ? duration(num(request.firstTokenMs)) : "–",
        num(request.promptTokens),
        num(request.completionTokens),
      ]);
    });
    fill($("recent"), rows, 10, "No requests yet.");
  }

  // A cell is text, a number (right-aligned), an element, or {text, className}.
  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) {
        td.append(cell);
      } else if (typeof cell === "number") {
        td.textContent = String(cell);
        td.className = "num";
      } else if (cell && typeof cell === "object") {
        td.textContent = cell.text;
        td.className = cell.className;
      } else {
        td.textContent = String(cell);
        if (/^[\d.]+ m?s$/.test(td.textContent)) td.className = "num";
      }
      tr.append(td);
    }
    return tr;
  }

  function badge(text, kind) {
    const span = document.createElement("span");
    span.className = `badge ${kind}`;
    span.textContent = text;
    return span;
  }

  function fill(tbody, rows, columns, empty) {
    if (!rows.length) {
      const td = document.createElement("td");
      td.colSpan = columns;
      td.className = "muted";
      td.textContent = empty;
      const tr = document.createElement("tr");
      tr.append(td);
      rows = [tr];
    }
    tbody.replaceChildren(...rows);
  }

  function clock(ms) {
    return Number.isNaN(ms) ? "–" : new Date(ms).toLocaleTimeString([], { hour12: false });
  }

  function duration(ms) {
    return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
  }

  // --- charts: plain SVG -----------------------------------------------------------------------------

  const WIDTH = 600, HEIGHT = 160, LEFT = 48, RIGHT = 8, TOP = 10, BOTTOM = 20;
  const PLOT_W = WIDTH - LEFT - RIGHT, PLOT_H = HEIGHT - TOP - BOTTOM;

  function svg(tag, attributes, text) {
    const element = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function frame(chart, maximum, label) {
    const y = (value) => TOP + PLOT_H - (value / maximum) * PLOT_H;
    const parts = [
      svg("line", { x1: LEFT, y1: TOP + PLOT_H, x2: WIDTH - RIGHT, y2: TOP + PLOT_H, class: "axis" }),
      svg("line", { x1: LEFT, y1: y(maximum), x2: WIDTH - RIGHT, y2: y(maximum), class: "grid" }),
      svg("text", { x: LEFT - 4, y: y(maximum) + 4, class: "tick end" }, label(maximum)),
      svg("text", { x: LEFT - 4, y: TOP + PLOT_H + 4, class: "tick end" }, label(0)),
      svg("text", { x: LEFT, y: HEIGHT - 4, class: "tick" }, chart.dataset.from || ""),
      svg("text", { x: WIDTH - RIGHT, y: HEIGHT - 4, class: "tick end" }, "now"),
    ];
    return { y, parts };
  }

  function windowLabel(buckets) {
    return buckets.length ? `−${Math.round((Date.now() - Date.parse(buckets[0].startTime)) / 60000)} min` : "";
  }

  function drawThroughput(chart, buckets) {
    chart.dataset.from = windowLabel(buckets);
    const maximum = niceCeiling(Math.max(1, ...buckets.map((b) => num(b.requests))));
    const { y, parts } = frame(chart, maximum, (v) => String(v));
    const slot = PLOT_W / Math.max(1, buckets.length);
    buckets.forEach((bucket, i) => {
      const total = num(bucket.requests), failed = num(bucket.failedRequests);
      if (!total) return;
      const x = LEFT + i * slot + 1, width = Math.max(1, slot - 2);
      parts.push(svg("rect", { x, y: y(total), width, height: y(failed) - y(total), class: "bar ok" }));
      if (failed) parts.push(svg("rect", { x, y: y(failed), width, height: TOP + PLOT_H - y(failed), class: "bar failed" }));
    });
    chart.replaceChildren(...parts);
  }

  function drawLatency(chart, buckets) {
    chart.dataset.from = windowLabel(buckets);
    const values = buckets.flatMap((b) => [num(b.meanDurationMs), num(b.meanFirstTokenMs)]);
    const maximum = niceCeiling(Math.max(1, ...values));
    const { y, parts } = frame(chart, maximum, (v) => duration(v));
    const slot = PLOT_W / Math.max(1, buckets.length);
    for (const [field, className] of [["meanDurationMs", "line duration"], ["meanFirstTokenMs", "line first-token"]]) {
      let points = [];
      const flush = () => {
        if (points.length === 1) {
          const [x, yy] = points[0].split(",");
          parts.push(svg("circle", { cx: x, cy: yy, r: 2.5, class: `${className} dot` }));
        } else if (points.length > 1) {
          parts.push(svg("polyline", { points: points.join(" "), class: className }));
        }
        points = [];
      };
      buckets.forEach((bucket, i) => {
        if (!num(bucket.requests) || !num(bucket[field])) return flush(); // a gap, not a zero
        points.push(`${(LEFT + (i + 0.5) * slot).toFixed(1)},${y(num(bucket[field])).toFixed(1)}`);
      });
      flush();
    }
    chart.replaceChildren(...parts);
  }

  function niceCeiling(value) {
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
    return 10 * power;
  }

  // A key pasted into the address bar of an open page: only the fragment changes, the page stays.
  window.addEventListener("hashchange", () => {
    takeKeyFromFragment();
    poll();
  });
  takeKeyFromFragment();
  poll();
})();
