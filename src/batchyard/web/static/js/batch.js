// One batch, live: counters over the event stream, the timeline from /history, a chart of
// processed records, the log, the first invalid records, downloads, retry, cancel and delete.
import { ApiError, api, flash, followBatch, showNotice, startPage } from "./api.js";
import { drawChart } from "./chart.js";
import {
  batchDuration, formatClock, formatDuration, formatNumber, formatTime, h, isTerminal, percentOf, setBadge,
  setProgress, statusLabel, timeElement,
} from "./format.js";
import { showInvalidRecords } from "./invalid.js";
import { showOutputs } from "./outputs.js";

const batchId = document.getElementById("batch").dataset.batch;
const base = `/batches/${encodeURIComponent(batchId)}`;
const $ = (id) => document.getElementById(id);
const LOG_REFRESH_MS = 1000;

const points = new Map();
let current = null;
let lastStatus = null;
let logTimer = null;
let logLoadedAt = 0;
let download = null;
let stream = null;
let chartQueued = false;

function addPoint(t, processed) {
  points.set(t.toFixed(3), { t, processed });
}

function scheduleChart() {
  if (chartQueued) return;
  chartQueued = true;
  requestAnimationFrame(() => {
    chartQueued = false;
    $("chart-desc").textContent = drawChart($("chart-svg"), [...points.values()], current?.total_operations);
  });
}

function render(batch) {
  current = batch;
  const percent = percentOf(batch);
  document.title = `${batch.dataset} · ${statusLabel(batch.status)} · batchyard`;
  $("b-dataset").textContent = batch.dataset;
  setBadge($("b-status"), batch.status);
  setProgress($("b-progress"), percent);
  $("b-progress").dataset.status = batch.status;
  $("b-progress-text").textContent = `${Math.floor(percent)}%`;
  $("b-total").textContent = formatNumber(batch.total_operations);
  $("b-processed").textContent = formatNumber(batch.processed_operations);
  $("b-successful").textContent = formatNumber(batch.successful_operations);
  $("b-failed").textContent = formatNumber(batch.failed_operations);
  $("b-created").replaceChildren(timeElement(batch.created_ts, formatTime(batch.created_ts)));
  $("b-duration").textContent = batch.started_ts ? formatDuration(batchDuration(batch)) : "—";
  $("b-operation").textContent = batch.operation;
  $("b-format").textContent = batch.format || (isTerminal(batch.status) ? "auto-detected" : "detecting…");
  $("b-error").hidden = !batch.error_message;
  $("b-error").textContent = batch.error_message || "";
  $("cancel").disabled = isTerminal(batch.status) || ["cancel", "cancelling", "deleting"].includes(batch.status);
  $("delete").disabled = !isTerminal(batch.status);
  showLineage(batch);
  addPoint(batch.updated_ts, batch.processed_operations);
  scheduleChart();
  if (batch.status !== lastStatus) {
    lastStatus = batch.status;
    loadHistory();
    if (isTerminal(batch.status)) enableDownloads();
  }
  queueLog();
}

async function loadHistory() {
  try {
    const entries = await api(`${base}/history`);
    const ordered = [...entries].reverse();
    const items = ordered.map((entry, index) => {
      const previous = ordered[index - 1];
      const delta = previous ? `+${formatDuration(entry.updated_ts - previous.updated_ts)}` : "";
      addPoint(entry.updated_ts, entry.processed_operations);
      return h("li", { class: `step status-${entry.status}` },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "step-status" }, statusLabel(entry.status)),
        timeElement(entry.updated_ts, formatClock(entry.updated_ts)),
        h("span", { class: "step-meta" }, delta,
          entry.processed_operations ? ` · ${formatNumber(entry.processed_operations)} processed` : ""),
      );
    });
    $("timeline").replaceChildren(...items);
    scheduleChart();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) showNotice(`Could not load the timeline: ${error.message}`);
  }
}

function queueLog() {
  if (logTimer) return;
  const wait = Math.max(0, LOG_REFRESH_MS - (Date.now() - logLoadedAt));
  logTimer = setTimeout(loadLog, wait);
}

async function loadLog() {
  logTimer = null;
  logLoadedAt = Date.now();
  const log = $("log");
  try {
    const text = await api(`${base}/log`);
    if (log.textContent !== text) {
      log.textContent = text || "(nothing logged yet)";
      if ($("follow-log").checked) log.scrollTop = log.scrollHeight;
    }
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) showNotice(`Could not load the log: ${error.message}`);
  }
}

async function enableDownloads() {
  try {
    download = (await api(`${base}?download=true`)).download;
  } catch (error) {
    showNotice(`Could not get download links: ${error.message}`);
    return;
  }
  if (!download) return;
  $("retry").disabled = current.status === "completed" && current.failed_operations === 0;
  for (const [id, url] of [["download-results", download.url], ["download-failed", download.failed_records_url]]) {
    const link = $(id);
    link.href = url;
    link.removeAttribute("aria-disabled");
    link.removeAttribute("role");
    link.removeAttribute("tabindex");
  }
  if (!["insert", "upsert", "delete"].includes(current.operation)) {
    showOutputs(current).catch((error) => showNotice(`Could not read the outputs: ${error.message}`));
  }
  if (current.failed_operations > 0 || current.status !== "completed") {
    showInvalidRecords(current).catch((error) => showNotice(`Could not read the invalid records: ${error.message}`));
  }
}

async function refreshLinkIfExpired(event) {
  const link = event.currentTarget;
  if (link.getAttribute("aria-disabled")) {
    event.preventDefault();
    return;
  }
  if (download && download.validity_ts - 30 > Date.now() / 1000) return;
  event.preventDefault();
  download = (await api(`${base}?download=true`)).download;
  location.assign(link.id === "download-results" ? download.url : download.failed_records_url);
}

function showLineage(batch) {
  const earlier = batch.retry_of || batch.resubmits;
  const lineage = $("b-lineage");
  lineage.hidden = !earlier && !batch.dry_run;
  const parts = batch.dry_run ? [" · dry run: nothing was written"] : [];
  if (earlier) {
    const label = batch.retry_of ? "retry of" : "resends the failed records of";
    parts.push(` · ${label} `,
      h("a", { href: `/ui/batches/${encodeURIComponent(earlier)}`, class: "mono" }, earlier.slice(0, 8)));
  }
  lineage.replaceChildren(...parts);
}

async function retryBatch() {
  if (!(await confirmAction("Send the records this batch did not apply again, as they were sent, in a new batch?", "Retry"))) return;
  try {
    const retried = await api(`${base}/retry`, { method: "POST" });
    flash(`Batch ${retried.batch.slice(0, 8)} retries this one.`);
    location.assign(`/ui/batches/${encodeURIComponent(retried.batch)}`);
  } catch (error) {
    showNotice(`Could not retry: ${error.message}`);
  }
}

function confirmAction(text, label) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = label;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

async function cancelBatch() {
  if (!(await confirmAction("Stop this batch at its next chunk? Records already applied stay.", "Cancel batch"))) return;
  try {
    render(await api(`${base}/cancel`, { method: "POST" }));
    showNotice("Cancel requested: the batch stops at its next chunk.", "info");
  } catch (error) {
    showNotice(`Could not cancel: ${error.message}`);
  }
}

async function deleteBatch() {
  if (!(await confirmAction("Delete this batch's input, results and history? Loaded rows stay in the table.", "Delete batch"))) return;
  try {
    await api(base, { method: "DELETE" });
    stream?.stop();
    flash(`Batch ${batchId.slice(0, 8)} is being deleted.`);
    location.assign("/");
  } catch (error) {
    showNotice(`Could not delete: ${error.message}`);
  }
}

async function start() {
  $("cancel").addEventListener("click", cancelBatch);
  $("retry").addEventListener("click", retryBatch);
  $("delete").addEventListener("click", deleteBatch);
  $("download-results").addEventListener("click", refreshLinkIfExpired);
  $("download-failed").addEventListener("click", refreshLinkIfExpired);
  try {
    render(await api(base));
  } catch (error) {
    showNotice(error instanceof ApiError && error.status === 404 ? "This batch does not exist (or is not yours)." : error.message);
    return;
  }
  if (isTerminal(current.status)) return;
  stream = followBatch(batchId, {
    batch: render,
    end: (batch) => {
      render(batch);
      loadLog();
    },
    deleted: () => showNotice("This batch was deleted.", "info"),
    state: (text) => {
      $("live-state").textContent = text === "live" ? "Following live." : text === "ended" ? "" : text;
    },
  });
}

if (startPage()) start();
