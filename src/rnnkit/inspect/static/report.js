// rnnkit inspect: draws the report from the JSON embedded in #rnnkit-data. No network, no libraries.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("rnnkit-data").textContent);
  const $ = (id) => document.getElementById(id);
  const L = data.tokens.length;
  const H = data.hidden_size;
  const GATES_01 = new Set(["i", "f", "o", "r", "z"]); // sigmoid outputs, in [0, 1]
  const NAME_HELP = {
    h: "h: hidden state, the layer's output",
    c: "c: cell state, the LSTM's memory",
    i: "i: input gate, how much of the candidate is written",
    f: "f: forget gate, how much memory is kept",
    g: "g: candidate, what would be written",
    o: "o: output gate, how much memory is shown",
    r: "r: reset gate, how much of the old state the candidate sees",
    z: "z: update gate, how much of the old state is kept",
    n: "n: new candidate state",
  };
  const PALETTE = ["#3b5bdb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#1098ad", "#f59f00", "#495057"];
  const view = { layer: data.num_layers - 1, direction: 0, name: "h", unit: 0 };
  const found = data.units && data.units.top ? data.units.top : [];
  if (found.length) {
    Object.assign(view, { layer: found[0].layer, direction: found[0].direction, name: found[0].name, unit: found[0].unit });
  }

  // ---- helpers --------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function shown(token) {
    return token.replace(/ /g, "\u2423").replace(/\n/g, "\u23ce").replace(/\t/g, "\u21e5");
  }
  function exact(v) {
    return v === null || v === undefined ? "n/a" : String(v);
  }
  function short(v) {
    return v === null || v === undefined ? "n/a" : Number(v).toPrecision(3);
  }
  function directionName(d) {
    return d === 0 ? "forward" : "reverse";
  }
  // States arrive as base64 little-endian float32 (states_f32), decoded once per layer/direction/name and
  // shown with the fewest digits that are still the same float32 (as Python writes them).
  const decoded = {};
  function shortest(v) {
    if (!Number.isFinite(v)) return v;
    for (let d = 6; d <= 9; d++) {
      const x = Number(v.toPrecision(d));
      if (Math.fround(x) === v) return x;
    }
    return v;
  }
  function float32s(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
    return new Float32Array(bytes.buffer);
  }
  function matrix() {
    if (data.states) return data.states[view.layer][view.direction][view.name]; // [L][H]
    const key = `${view.layer}/${view.direction}/${view.name}`;
    if (!decoded[key]) {
      const flat = float32s(data.states_f32[view.layer][view.direction][view.name]);
      const rows = [];
      for (let t = 0; t < L; t++) rows.push(Array.from(flat.subarray(t * H, (t + 1) * H), shortest));
      decoded[key] = rows;
    }
    return decoded[key];
  }
  function scaleOf(name, values) {
    if (GATES_01.has(name)) return { kind: "seq", lo: 0, hi: 1 };
    let m = 0;
    for (const row of values) for (const v of row) m = Math.max(m, Math.abs(v));
    return { kind: "div", lo: -(m || 1), hi: m || 1 };
  }
  function mix(a, b, x) {
    return a.map((c, k) => Math.round(c + (b[k] - c) * x));
  }
  const WHITE = [255, 255, 255], RED = [201, 42, 42], BLUE = [25, 113, 194], PURPLE = [95, 61, 196];
  function colour(v, scale) {
    if (v === null || v === undefined || Number.isNaN(v)) return [230, 230, 230];
    if (scale.kind === "seq") return mix(WHITE, PURPLE, Math.max(0, Math.min(1, (v - scale.lo) / (scale.hi - scale.lo))));
    const x = Math.max(-1, Math.min(1, v / scale.hi));
    return x >= 0 ? mix(WHITE, RED, x) : mix(WHITE, BLUE, -x);
  }
  function css(rgb) {
    return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
  }
  function ink(rgb) {
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140 ? "#fff" : "#1d2330";
  }
  function tokenSpan(t, value, scale, tip) {
    const rgb = colour(value, scale);
    const span = el("span", { class: "token" + (data.unknown[t] ? " unknown" : ""), "data-i": String(t) }, shown(data.tokens[t]));
    span.style.background = css(rgb);
    span.style.color = ink(rgb);
    span.dataset.tip = tip;
    return span;
  }
  function legend(container, scale, label) {
    container.replaceChildren();
    const canvas = el("canvas", { width: "160", height: "10" });
    const ctx = canvas.getContext("2d");
    for (let x = 0; x < 160; x++) {
      ctx.fillStyle = css(colour(scale.lo + ((scale.hi - scale.lo) * x) / 159, scale));
      ctx.fillRect(x, 0, 1, 10);
    }
    container.append(el("span", {}, short(scale.lo)), canvas, el("span", {}, short(scale.hi)), el("span", {}, label || ""));
  }

  // ---- tooltip --------------------------------------------------------------------------------
  const tooltip = $("tooltip");
  function showTip(x, y, text) {
    tooltip.textContent = text;
    tooltip.style.display = "block";
    const w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    tooltip.style.left = Math.min(x + 12, window.innerWidth - w - 4) + "px";
    tooltip.style.top = (y + 14 + h > window.innerHeight ? y - h - 8 : y + 14) + "px";
  }
  function hideTip() {
    tooltip.style.display = "none";
  }
  document.addEventListener("mouseover", (e) => {
    const target = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (target) showTip(e.clientX, e.clientY, target.dataset.tip);
  });
  document.addEventListener("mousemove", (e) => {
    const target = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (target) showTip(e.clientX, e.clientY, target.dataset.tip);
    else if (e.target.id !== "heatmap") hideTip();
  });

  // ---- header ---------------------------------------------------------------------------------
  function renderHeader() {
    const dirs = data.num_directions === 2 ? "bidirectional" : "forward only";
    const layers = data.num_layers === 1 ? "1 layer" : `${data.num_layers} layers`;
    const task = data.task === "lm" ? "language model" : "classifier";
    $("model-line").textContent =
      `${data.cell.toUpperCase()} ${task} · ${layers} · ${dirs} · ${H} units per direction · ${L} tokens`;
    const summary = $("summary");
    if (data.task === "classify" && data.probs) {
      const order = data.probs.map((p, c) => [p, c]).sort((a, b) => b[0] - a[0]).slice(0, 3);
      summary.append("prediction: ", el("b", {}, data.prediction), " ");
      summary.append(el("span", { class: "prob" }, order.map(([p, c]) => `${data.labels[c]} ${short(p)}`).join(" · ")));
    } else if (data.next_token_probs) {
      const ps = data.next_token_probs.filter((p) => p !== null && p > 0);
      const nll = ps.reduce((s, p) => s - Math.log(p), 0) / Math.max(ps.length, 1);
      summary.textContent = `mean probability of the actual next token ${short(ps.reduce((s, p) => s + p, 0) / Math.max(ps.length, 1))}` +
        ` · perplexity ${short(Math.exp(nll))} over ${ps.length} predicted tokens`;
    }
  }

  // ---- controls -------------------------------------------------------------------------------
  function fill(select, options, value) {
    select.replaceChildren(...options.map(([v, text]) => {
      const option = el("option", { value: String(v) }, text);
      if (String(v) === String(value)) option.selected = true;
      return option;
    }));
  }
  function isFound(layer, direction, name, unit) {
    return found.findIndex((u) => u.layer === layer && u.direction === direction && u.name === name && u.unit === unit);
  }
  function renderControls() {
    fill($("layer"), [...Array(data.num_layers).keys()].map((k) => [k, String(k)]), view.layer);
    fill($("direction"), [...Array(data.num_directions).keys()].map((d) => [d, directionName(d)]), view.direction);
    fill($("name"), data.names.map((n) => [n, NAME_HELP[n] || n]), view.name);
    fill($("unit"), [...Array(H).keys()].map((u) => {
      const rank = isFound(view.layer, view.direction, view.name, u);
      return [u, rank >= 0 ? `${u} ★${rank + 1}` : String(u)];
    }), view.unit);
    $("name-help").textContent = GATES_01.has(view.name) ? "values in [0, 1]" : "values around 0";
  }
  for (const key of ["layer", "direction", "unit"]) {
    $(key).addEventListener("change", (e) => { view[key] = Number(e.target.value); update(); });
  }
  $("name").addEventListener("change", (e) => { view.name = e.target.value; update(); });

  // ---- tokens coloured by one unit ------------------------------------------------------------
  function renderTokens() {
    const values = matrix();
    const scale = scaleOf(view.name, values.map((row) => [row[view.unit]])); // this unit's own range
    $("unit-title").textContent = `unit ${view.unit} of ${view.name}, layer ${view.layer}, ${directionName(view.direction)}`;
    const row = $("tokens");
    row.replaceChildren(...data.tokens.map((tok, t) => {
      const v = values[t][view.unit];
      const tip = `token ${t}: ${JSON.stringify(tok)}${data.unknown[t] ? " (unknown word)" : ""}\n` +
        `${view.name}[layer ${view.layer}, ${directionName(view.direction)}, unit ${view.unit}] = ${exact(v)}`;
      return tokenSpan(t, v, scale, tip);
    }));
    legend($("tokens-legend"), scale, NAME_HELP[view.name] || view.name);
  }

  // ---- heatmap --------------------------------------------------------------------------------
  const heat = { left: 64, top: 78, cw: 12, ch: 8 };
  function renderHeatmap() {
    const values = matrix();
    const scale = scaleOf(view.name, values);
    heat.cw = Math.max(6, Math.min(32, Math.floor(1100 / Math.max(L, 1))));
    heat.ch = Math.max(3, Math.min(14, Math.floor(560 / Math.max(H, 1))));
    const canvas = $("heatmap");
    const width = heat.left + L * heat.cw + 8, height = heat.top + H * heat.ch + 4;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.ceil(width * ratio);
    canvas.height = Math.ceil(height * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    for (let t = 0; t < L; t++) {
      for (let u = 0; u < H; u++) {
        ctx.fillStyle = css(colour(values[t][u], scale));
        ctx.fillRect(heat.left + t * heat.cw, heat.top + u * heat.ch, heat.cw, heat.ch);
      }
    }
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#5d6677";
    if (heat.cw >= 9) {
      for (let t = 0; t < L; t++) {
        ctx.save();
        ctx.translate(heat.left + t * heat.cw + heat.cw / 2 + 3, heat.top - 4);
        ctx.rotate(-Math.PI / 3);
        ctx.fillText(shown(data.tokens[t]).slice(0, 12), 0, 0);
        ctx.restore();
      }
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let u = 0; u < H; u++) {
      const y = heat.top + u * heat.ch + heat.ch / 2;
      const rank = isFound(view.layer, view.direction, view.name, u);
      const marks = (u === view.unit ? "▸" : "") + (rank >= 0 ? "★" : "");
      if (heat.ch >= 9 || marks) {
        ctx.fillStyle = u === view.unit ? "#3b5bdb" : "#5d6677";
        ctx.fillText(heat.ch >= 9 ? `${marks}${u}` : marks, heat.left - 4, y);
      }
    }
    ctx.strokeStyle = "#1d2330";
    ctx.lineWidth = 1;
    ctx.strokeRect(heat.left + 0.5, heat.top + view.unit * heat.ch + 0.5, L * heat.cw - 1, heat.ch - 1);
    legend($("heatmap-legend"), scale, `${view.name}, layer ${view.layer}, ${directionName(view.direction)}`);
  }
  function heatCell(e) {
    const box = $("heatmap").getBoundingClientRect();
    const t = Math.floor((e.clientX - box.left - heat.left) / heat.cw);
    const u = Math.floor((e.clientY - box.top - heat.top) / heat.ch);
    return t >= 0 && t < L && u >= 0 && u < H ? [t, u] : null;
  }
  $("heatmap").addEventListener("mousemove", (e) => {
    const cell = heatCell(e);
    if (!cell) return hideTip();
    const [t, u] = cell;
    showTip(e.clientX, e.clientY, `token ${t}: ${JSON.stringify(data.tokens[t])}, unit ${u}\n` +
      `${view.name}[layer ${view.layer}, ${directionName(view.direction)}] = ${exact(matrix()[t][u])}`);
  });
  $("heatmap").addEventListener("mouseleave", hideTip);
  $("heatmap").addEventListener("click", (e) => {
    const cell = heatCell(e);
    if (cell) { view.unit = cell[1]; update(); }
  });

  // ---- classifier: per-prefix probabilities and contributions ------------------------------
  function renderPrefix() {
    if (!data.prefix_probs) return;
    $("prefix-view").hidden = false;
    const C = data.labels.length;
    const best = [...Array(C).keys()]
      .map((c) => [Math.max(...data.prefix_probs.map((row) => row[c])), c])
      .sort((a, b) => b[0] - a[0]).slice(0, Math.min(C, 6)).map(([, c]) => c);
    const step = Math.max(14, Math.min(40, Math.floor(1000 / Math.max(L, 1))));
    const left = 40, top = 12, plotH = 180, bottom = 80;
    const width = left + step * Math.max(L - 1, 1) + 160, height = top + plotH + bottom;
    const svg = $("prefix-chart");
    svg.replaceChildren();
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const x = (t) => left + t * step, y = (p) => top + (1 - p) * plotH;
    for (const p of [0, 0.5, 1]) {
      svg.append(svgEl("line", { class: "axis", x1: left, x2: x(L - 1), y1: y(p), y2: y(p) }));
      svg.append(svgEl("text", { x: left - 6, y: y(p) + 4, "text-anchor": "end" }, String(p)));
    }
    best.forEach((c, k) => {
      const points = data.prefix_probs.map((row, t) => `${x(t)},${y(row[c])}`).join(" ");
      svg.append(svgEl("polyline", { points, fill: "none", stroke: PALETTE[k], "stroke-width": 2 }));
      data.prefix_probs.forEach((row, t) => svg.append(svgEl("circle", { cx: x(t), cy: y(row[c]), r: 2.5, fill: PALETTE[k] })));
      svg.append(svgEl("text", { x: x(L - 1) + 10, y: top + 12 + 16 * k, fill: PALETTE[k], style: `fill:${PALETTE[k]}` }, data.labels[c]));
    });
    data.tokens.forEach((tok, t) => {
      const label = svgEl("text", { x: x(t), y: top + plotH + 12, transform: `rotate(60 ${x(t)} ${top + plotH + 12})` }, shown(tok).slice(0, 14));
      svg.append(label);
      const lines = [...Array(C).keys()].map((c) => [data.prefix_probs[t][c], c]).sort((a, b) => b[0] - a[0]).slice(0, 6)
        .map(([p, c]) => `${data.labels[c]}: ${exact(p)}`);
      const hit = svgEl("rect", { x: x(t) - step / 2, y: top, width: step, height: plotH, fill: "transparent" });
      hit.dataset.tip = `after token ${t} (${JSON.stringify(tok)}):\n${lines.join("\n")}`;
      svg.append(hit);
    });
  }
  function renderContributions() {
    if (!data.contributions) return;
    $("contrib-view").hidden = false;
    const a = data.attribution || {};
    const sum = data.contributions.reduce((s, v) => s + v, 0);
    $("contrib-help").textContent =
      `${a.method || "attribution"} (${a.citation || ""}) of the ${a.explains || "output"} "${a.target}", ` +
      `from a ${a.baseline || "baseline"}, ${a.steps} steps. Red tokens push towards "${a.target}", blue ones away. ` +
      `The contributions sum to ${short(sum)}; log p(text) − log p(baseline) = ${short(a.f_input - a.f_baseline)} ` +
      `(gap ${short(a.completeness_gap)}).`;
    const m = Math.max(...data.contributions.map(Math.abs)) || 1;
    const scale = { kind: "div", lo: -m, hi: m };
    $("contrib-tokens").replaceChildren(...data.tokens.map((tok, t) =>
      tokenSpan(t, data.contributions[t], scale, `token ${t}: ${JSON.stringify(tok)}\ncontribution = ${exact(data.contributions[t])}`)));
    legend($("contrib-legend"), scale, `contribution to log p(${a.target})`);
  }

  // ---- language model ------------------------------------------------------------------------
  function renderNextToken() {
    if (!data.next_token_probs) return;
    $("lm-view").hidden = false;
    const scale = { kind: "seq", lo: 0, hi: 1 };
    $("lm-tokens").replaceChildren(...data.tokens.map((tok, t) =>
      tokenSpan(t, data.next_token_probs[t], scale, `token ${t}: ${JSON.stringify(tok)}\np(this token | the tokens before) = ${exact(data.next_token_probs[t])}`)));
    legend($("lm-legend"), scale, "probability given to the actual token");
  }

  // ---- gates and units -----------------------------------------------------------------------
  function renderGates() {
    const rows = data.gate_summary || [];
    const help = $("gates-help");
    if (!rows.length) {
      help.textContent = "A plain RNN has no gates: its state is rewritten at every step.";
      $("gates").hidden = true;
      return;
    }
    help.textContent = data.cell === "lstm"
      ? "Forget gate f in c_t = f ⊙ c_{t−1} + i ⊙ g: above 0.9 the memory is kept, below 0.1 it is forgotten. Shares of all token × unit values."
      : "Update gate z in h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}: above 0.9 the old state is kept, below 0.1 it is replaced. Shares of all token × unit values.";
    const head = el("tr");
    for (const h of ["layer", "direction", "gate", "kept (> 0.9)", "forgotten (< 0.1)", "mean"]) head.append(el("th", {}, h));
    const body = rows.map((r) => {
      const tr = el("tr");
      tr.append(el("td", {}, String(r.layer)), el("td", {}, directionName(r.direction)), el("td", {}, r.gate));
      for (const [key, cls] of [["above_0_9", "keep"], ["below_0_1", "forget"]]) {
        const td = el("td", {}, `${(100 * r[key]).toFixed(1)}% `);
        const bar = el("span", { class: `bar ${cls}` });
        bar.style.width = Math.round(80 * r[key]) + "px";
        td.append(bar);
        td.dataset.tip = `${key.replace(/_/g, " ").replace("0 ", "0.")}: ${exact(r[key])} of ${r.n} values`;
        tr.append(td);
      }
      tr.append(el("td", {}, short(r.mean)));
      return tr;
    });
    $("gates").replaceChildren(el("thead"), el("tbody"));
    $("gates").tHead.append(head);
    $("gates").tBodies[0].append(...body);
  }
  function renderUnits() {
    if (!found.length) return;
    $("units-view").hidden = false;
    const u0 = data.units;
    const window = u0.window === null ? "any later token" : u0.window === 0 ? "the trigger token itself" : `up to ${u0.window} tokens later`;
    $("units-help").textContent =
      `Pattern ${u0.pattern.map((p) => JSON.stringify(p)).join(", ")}: ${u0.triggers} matches in ${u0.texts} texts ` +
      `(${u0.tokens} tokens). Score: ${u0.statistic}, comparing a unit's value at ${window} with every other token. ` +
      "Click a row to show the unit.";
    const head = el("tr");
    for (const h of ["rank", "layer", "direction", "state", "unit", "score", "mean after", "mean elsewhere", "n after", "n elsewhere"]) head.append(el("th", {}, h));
    const body = found.map((u, k) => {
      const tr = el("tr", { "data-rank": String(k) });
      const cells = [k + 1, u.layer, directionName(u.direction), u.name, u.unit, short(u.score), short(u.mean_after), short(u.mean_elsewhere), u.n_after, u.n_elsewhere];
      for (const c of cells) tr.append(el("td", {}, String(c)));
      tr.dataset.tip = `score ${exact(u.score)}\nmean after ${exact(u.mean_after)} (sd ${exact(u.std_after)})\nmean elsewhere ${exact(u.mean_elsewhere)} (sd ${exact(u.std_elsewhere)})`;
      tr.addEventListener("click", () => {
        Object.assign(view, { layer: u.layer, direction: u.direction, name: u.name, unit: u.unit });
        update();
      });
      return tr;
    });
    $("units").replaceChildren(el("thead"), el("tbody"));
    $("units").tHead.append(head);
    $("units").tBodies[0].append(...body);
  }
  function markSelectedUnit() {
    for (const tr of $("units").querySelectorAll("tbody tr")) {
      const u = found[Number(tr.dataset.rank)];
      tr.classList.toggle("selected", u.layer === view.layer && u.direction === view.direction && u.name === view.name && u.unit === view.unit);
    }
  }

  function update() {
    renderControls();
    renderTokens();
    renderHeatmap();
    markSelectedUnit();
  }

  renderHeader();
  renderPrefix();
  renderContributions();
  renderNextToken();
  renderGates();
  renderUnits();
  update();
})();
