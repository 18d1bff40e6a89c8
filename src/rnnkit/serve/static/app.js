// The rnnkit web page: label a text as it is typed, or stream a language model's continuation.
// Talks only to this server (/v1/model, /v1/predict, /v1/generate); no other network access.
"use strict";

const DEBOUNCE_MS = 200;
const $ = (id) => document.getElementById(id);
let labels = [];
let canInspect = true;  // false when the server runs an exported file (no PyTorch weights)

function showError(message) {
  $("status").textContent = message || "";
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error ? body.error.message : response.statusText;
  } catch (e) {
    return response.statusText;
  }
}

// --- classifier ------------------------------------------------------------------------------
function buildBars() {
  const bars = $("bars");
  bars.replaceChildren();
  for (const name of labels) {
    const row = document.createElement("div");
    row.className = "bar";
    row.setAttribute("role", "listitem");
    row.dataset.label = name;
    const title = document.createElement("span");
    title.className = "name";
    title.textContent = name;
    title.title = name;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    row.append(title, track, value);
    bars.append(row);
  }
}

function showPrediction(prediction) {
  $("label").textContent = prediction.label;
  $("probability").textContent = `(${(100 * prediction.probability).toFixed(1)}%)`;
  for (const row of $("bars").children) {
    const p = prediction.probs[row.dataset.label] || 0;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = p.toFixed(3);
    row.classList.toggle("top", row.dataset.label === prediction.label);
  }
  $("inspect-link").href = `/inspect?text=${encodeURIComponent(prediction.text)}`;
  $("inspect-link").hidden = !canInspect;
  $("result").hidden = false;
}

let pending = null;  // the request in flight; a newer text aborts it
let timer = null;

async function classify(text) {
  if (pending) pending.abort();
  if (!text.trim()) {
    $("result").hidden = true;
    showError("");
    return;
  }
  pending = new AbortController();
  try {
    const response = await fetch("/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ texts: [text] }),
      signal: pending.signal,
    });
    if (!response.ok) {
      showError(await errorMessage(response));
      return;
    }
    const body = await response.json();
    showError("");
    showPrediction(body.predictions[0]);
  } catch (e) {
    if (e.name !== "AbortError") showError(`request failed: ${e.message}`);
  }
}

function setUpClassifier() {
  buildBars();
  $("classify").hidden = false;
  $("text").addEventListener("input", (event) => {
    clearTimeout(timer);
    timer = setTimeout(() => classify(event.target.value), DEBOUNCE_MS);
  });
  if ($("text").value) classify($("text").value);
}

// --- language model --------------------------------------------------------------------------
let generation = null;

function numberOrNull(id) {
  const value = $(id).value;
  return value === "" ? null : Number(value);
}

async function generate() {
  const prime = $("prime").value;
  const request = {
    prime,
    length: numberOrNull("length") || 200,
    temperature: numberOrNull("temperature") ?? 1.0,
    top_k: numberOrNull("top-k"),
    seed: numberOrNull("seed"),
    stream: true,
  };
  $("generated").textContent = "";
  $("inspect-prime-link").hidden = !prime.trim();
  $("inspect-prime-link").href = `/inspect?text=${encodeURIComponent(prime)}`;
  generation = new AbortController();
  $("generate-button").disabled = true;
  $("stop-button").disabled = false;
  showError("");
  try {
    const response = await fetch("/v1/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
      signal: generation.signal,
    });
    if (!response.ok) {
      showError(await errorMessage(response));
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) {
        if (!line) continue;
        const piece = JSON.parse(line);
        if (piece.text) $("generated").textContent += piece.text;
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") showError(`generation failed: ${e.message}`);
  } finally {
    $("generate-button").disabled = false;
    $("stop-button").disabled = true;
  }
}

function setUpLanguageModel() {
  $("generate").hidden = false;
  $("generate-button").addEventListener("click", generate);
  $("stop-button").addEventListener("click", () => generation && generation.abort());
}

// --- start -----------------------------------------------------------------------------------
async function start() {
  const response = await fetch("/v1/model");
  if (!response.ok) {
    showError(await errorMessage(response));
    return;
  }
  const info = await response.json();
  const model = info.config ? info.config.model : null;
  const shape = model
    ? `${model.cell.toUpperCase()} ${model.layers}×${model.hidden_dim}${model.bidirectional ? " bidirectional" : ""}`
    : "";
  $("model-summary").textContent = [info.task === "lm" ? "language model" : "classifier", shape,
    `backend ${info.backend}`].filter(Boolean).join(" · ");
  if (info.task === "lm") {
    setUpLanguageModel();
  } else {
    labels = info.labels || [];
    canInspect = info.inspect !== false;
    setUpClassifier();
  }
}

start().catch((e) => showError(`cannot reach the server: ${e.message}`));
