// The batch list: filters and cursor paging through GET /batches, refreshed while batches run.
import { allDatasets, api, showNotice, startPage, whoAmI } from "./api.js";
import {
  badge, batchDuration, formatAge, formatDuration, formatNumber, h, isTerminal, percentOf,
  progressBar, setBadge, setProgress, timeElement,
} from "./format.js";

const PAGE_SIZE = 25;
const ACTIVE_REFRESH_MS = 1500;
const IDLE_REFRESH_MS = 10000;

const rows = document.getElementById("batch-rows");
const statusFilter = document.getElementById("filter-status");
const datasetFilter = document.getElementById("filter-dataset");
const ownerFilter = document.getElementById("filter-owner");
const table = document.getElementById("batch-table");
const summary = document.getElementById("list-summary");
const empty = document.getElementById("empty");
const newer = document.getElementById("newer");
const older = document.getElementById("older");
const rowsById = new Map();
const earlierCursors = [];
let cursor = null;
let nextCursor = null;
let timer = null;
let seesAllBatches = false;

function readFilters() {
  const query = new URLSearchParams(location.search);
  statusFilter.value = query.get("status") || "";
  datasetFilter.dataset.wanted = query.get("dataset") || "";
  ownerFilter.value = query.get("owner") || "";
}

function filters() {
  const query = new URLSearchParams();
  if (statusFilter.value) query.set("status", statusFilter.value);
  if (datasetFilter.value) query.set("dataset", datasetFilter.value);
  const owner = ownerFilter.value.trim();
  if (owner) query.set("owner", owner);
  return query;
}

function writeFilters() {
  const search = filters().toString();
  history.replaceState(null, "", search ? `/?${search}` : "/");
}

function cell(label, child, cellClass = null) {
  return h("td", { "data-label": label, class: cellClass }, child);
}

function createRow(batch) {
  const link = h("a", { href: `/ui/batches/${batch.batch}`, class: "mono",
    "aria-label": `Batch ${batch.batch}` }, batch.batch.slice(0, 8));
  const bar = progressBar(`Progress of batch ${batch.batch.slice(0, 8)}`);
  const tr = h("tr", { "data-batch": batch.batch },
    cell("Batch", link),
    cell("Owner", h("span", { class: "owner" }), "col-owner"),
    cell("Dataset", h("span", { class: "dataset" })),
    cell("Status", badge(batch.status)),
    cell("Progress", h("div", { class: "progress-cell" }, bar, h("span", { class: "pct" }))),
    cell("Records", h("span", { class: "records" }), "num"),
    cell("Failed", h("span", { class: "failed" }), "num"),
    cell("Age", h("span", { class: "age" })),
    cell("Duration", h("span", { class: "duration" })),
  );
  return tr;
}

function updateRow(tr, batch) {
  const percent = percentOf(batch);
  tr.querySelector(".owner").textContent = batch.owner ?? "—";
  tr.querySelector(".dataset").textContent = batch.dataset;
  setBadge(tr.querySelector(".badge"), batch.status);
  setProgress(tr.querySelector(".progress"), percent);
  tr.querySelector(".pct").textContent = `${Math.floor(percent)}%`;
  tr.querySelector(".records").textContent =
    `${formatNumber(batch.processed_operations)} / ${formatNumber(batch.total_operations)}`;
  const failed = tr.querySelector(".failed");
  failed.textContent = formatNumber(batch.failed_operations);
  failed.classList.toggle("bad", batch.failed_operations > 0);
  tr.querySelector(".age").replaceChildren(timeElement(batch.created_ts, formatAge(batch.created_ts)));
  tr.querySelector(".duration").textContent =
    batch.started_ts || isTerminal(batch.status) ? formatDuration(batchDuration(batch)) : "—";
}

function render(batches) {
  const seen = new Set();
  batches.forEach((batch, index) => {
    let tr = rowsById.get(batch.batch);
    if (!tr) {
      tr = createRow(batch);
      rowsById.set(batch.batch, tr);
    }
    updateRow(tr, batch);
    if (rows.children[index] !== tr) rows.insertBefore(tr, rows.children[index] || null);
    seen.add(batch.batch);
  });
  for (const [id, tr] of rowsById) {
    if (!seen.has(id)) {
      tr.remove();
      rowsById.delete(id);
    }
  }
  // Whose a batch is only tells batches apart when they can be of different users.
  const owners = new Set(batches.map((b) => b.owner));
  table.classList.toggle("with-owner", seesAllBatches || owners.size > 1);
  const filtered = filters().toString() !== "";
  empty.hidden = batches.length > 0;
  empty.firstChild.textContent = filtered ? "No batches match these filters. " : "No batches yet. ";
  const running = batches.filter((b) => !isTerminal(b.status)).length;
  summary.textContent = `${batches.length} batch${batches.length === 1 ? "" : "es"} on this page` +
    (running ? `, ${running} running` : "") + (filtered ? " (filtered)" : "");
  newer.disabled = cursor === null;
  older.disabled = !nextCursor;
}

async function load() {
  clearTimeout(timer);
  const query = filters();
  query.set("limit", String(PAGE_SIZE));
  if (cursor) query.set("cursor", cursor);
  let delay = IDLE_REFRESH_MS;
  try {
    const page = await api(`/batches?${query}`);
    nextCursor = page.next_cursor;
    render(page.batches);
    if (page.batches.some((b) => !isTerminal(b.status))) delay = ACTIVE_REFRESH_MS;
  } catch (error) {
    showNotice(`Could not load batches: ${error.message}`);
  }
  timer = setTimeout(refreshWhenVisible, delay);
}

function refreshWhenVisible() {
  if (document.visibilityState === "visible") load();
  else document.addEventListener("visibilitychange", load, { once: true });
}

function restart() {
  cursor = null;
  earlierCursors.length = 0;
  writeFilters();
  load();
}

async function loadDatasets() {
  try {
    const datasets = await allDatasets();
    for (const dataset of datasets) datasetFilter.append(h("option", { value: dataset.name }, dataset.name));
  } catch (error) {
    showNotice(`Could not load datasets: ${error.message}`);
  }
  datasetFilter.value = datasetFilter.dataset.wanted;
}

async function loadWho() {
  try {
    seesAllBatches = (await whoAmI()).seesAllBatches;
  } catch {
    seesAllBatches = false; // /me unanswered: the column then shows for a page of several owners
  }
}

if (startPage()) {
  readFilters();
  statusFilter.addEventListener("change", restart);
  datasetFilter.addEventListener("change", restart);
  ownerFilter.addEventListener("change", restart);
  // Enter in the owner field applies it (the change event); the form itself never submits.
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
  older.addEventListener("click", () => {
    earlierCursors.push(cursor);
    cursor = nextCursor;
    load();
  });
  newer.addEventListener("click", () => {
    cursor = earlierCursors.length ? earlierCursors.pop() : null;
    load();
  });
  Promise.all([loadDatasets(), loadWho()]).then(load);
}
