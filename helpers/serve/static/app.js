// The page of chapter 13's service: POST /predict, then POST /explain, and show both.
"use strict";

const $ = (id) => document.getElementById(id);

async function call(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) {
    // FastAPI's 422 lists the problems; the 413 from the size guard is one string
    const detail = Array.isArray(data.detail) ? data.detail.map((d) => d.msg).join("; ") : data.detail;
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}

function showTokens(tokens, scores) {
  const box = $("tokens");
  box.replaceChildren();
  const scale = Math.max(...scores.map(Math.abs), 1e-9);
  tokens.forEach((token, i) => {
    const span = document.createElement("span");
    const a = Math.min(Math.abs(scores[i]) / scale, 1).toFixed(2);
    span.style.background = scores[i] >= 0 ? `rgba(0,150,0,${a})` : `rgba(210,0,0,${a})`;
    span.title = scores[i].toFixed(3);
    span.textContent = token;
    box.append(span);
  });
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  $("error").hidden = true;
  if (!text) return;
  $("go").disabled = true;
  try {
    const prediction = await call("/predict", { texts: [text] });
    $("label").textContent = prediction.labels[0];
    $("probability").textContent = prediction.probabilities[0].toFixed(3);
    $("bar").style.width = `${(100 * prediction.probabilities[0]).toFixed(1)}%`;
    $("version").textContent = `Model version ${prediction.model_version}.`;
    $("result").hidden = false;
    const explanation = await call("/explain", { text });
    showTokens(explanation.tokens, explanation.scores);
  } catch (err) {
    $("error").textContent = err.message;
    $("error").hidden = false;
  } finally {
    $("go").disabled = false;
  }
});
