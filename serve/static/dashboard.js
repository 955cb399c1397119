// The dashboard's only script: draws the charts, keeps the shot page's two players in step, and
// follows a running job. Pages are complete without it; it adds no content that is not already
// in the HTML, apart from the charts drawn from the figures the server embedded.
"use strict";

// Plotly loads without holding the page up (its figures are in the tables beside each chart), so
// the charts are drawn whenever it has arrived: before this script runs, or after.
function drawCharts() {
  const charts = document.querySelectorAll(".chart[data-spec]");
  if (!charts.length) return;
  const draw = () => {
    for (const div of charts) {
      const spec = JSON.parse(document.getElementById(div.dataset.spec).textContent);
      Plotly.newPlot(div, spec.data, spec.layout, { displaylogo: false, responsive: true });
    }
  };
  if (typeof Plotly !== "undefined") draw();
  else document.getElementById("plotly")?.addEventListener("load", draw, { once: true });
}

// The shot page: the lead player (the source, or the remaster alone) drives; the other follows
// its play, pause, seeks and rate, and is nudged back whenever it drifts more than a few frames.
// Both loop over the shot.
function syncPlayers() {
  const box = document.getElementById("players");
  if (!box) return;
  const lead = box.querySelector('video[data-role="lead"]');
  const follow = box.querySelector('video[data-role="follow"]');
  if (!lead) return;
  const start = Number(box.dataset.start), end = Number(box.dataset.end);
  const state = document.getElementById("sync-state");
  const MAX_DRIFT = 0.1;

  const align = () => {
    if (follow && Math.abs(follow.currentTime - lead.currentTime) > MAX_DRIFT) follow.currentTime = lead.currentTime;
  };
  if (follow) {
    lead.addEventListener("play", () => { align(); follow.play().catch(() => {}); });
    lead.addEventListener("pause", () => follow.pause());
    lead.addEventListener("seeked", align);
    lead.addEventListener("ratechange", () => { follow.playbackRate = lead.playbackRate; });
  }
  setInterval(() => {
    if (lead.paused) return;
    if (lead.currentTime >= end || lead.currentTime < start - 0.5) lead.currentTime = start;
    align();
    if (state && follow) {
      const drift = Math.abs(follow.currentTime - lead.currentTime);
      state.value = `playing together · ${lead.currentTime.toFixed(2)} s · drift ${drift.toFixed(3)} s`;
      state.dataset.drift = drift.toFixed(3);
    }
  }, 200);
  document.getElementById("play")?.addEventListener("click", () => {
    if (lead.currentTime < start || lead.currentTime >= end) lead.currentTime = start;
    lead.play().catch((err) => { if (state) state.value = `cannot play: ${err.message}`; });
  });
  document.getElementById("pause")?.addEventListener("click", () => lead.pause());
  for (const button of document.querySelectorAll("button.seek")) {
    button.addEventListener("click", () => { lead.currentTime = Number(button.dataset.t); lead.play().catch(() => {}); });
  }
}

// A running job: poll its progress and write the figures into the page; reload once it ends.
function followRuns() {
  for (const box of document.querySelectorAll("[data-progress]")) {
    const poll = async () => {
      let progress;
      try {
        const answer = await fetch(box.dataset.progress, { credentials: "same-origin" });
        if (!answer.ok) return;
        progress = await answer.json();
      } catch {
        return;
      }
      if (progress.status !== "running") {
        location.reload();
        return;
      }
      const set = (name, text) => box.querySelectorAll(`[data-field="${name}"]`).forEach((el) => { el.textContent = text; });
      set("spooled", progress.spooled);
      set("steps", progress.steps.length);
      set("seconds", `${Math.round(progress.seconds)} s`);
      const list = box.querySelector('[data-field="step-list"]');
      if (list) list.replaceChildren(...progress.steps.map((s) => {
        const item = document.createElement("li");
        item.textContent = `${s.step}: ${s.rows} rows`;
        return item;
      }));
      box.dataset.updated = String(Date.now());
    };
    setInterval(poll, 2000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  syncPlayers();
  followRuns();
});
