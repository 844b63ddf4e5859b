// Start an import from a dropped file or from a list of URLs, then follow the batch live, without
// a reload. Files go up with XMLHttpRequest (fetch cannot report upload progress); URLs go as the
// JSON form of POST /batches, and the server copies them itself.
import { allDatasets, api, ApiError, followBatch, getToken, goToSignIn, showNotice, startPage } from "./api.js";
import { formatNumber, percentOf, setBadge, setProgress, statusLabel } from "./format.js";

const $ = (id) => document.getElementById(id);
const form = $("import-form");
const fileInput = $("file");
const dropzone = $("dropzone");
const urlsInput = $("urls");
const SHA256 = /^[0-9a-f]{64}$/i;
const MAX_SOURCES = 1000; // the API's limit for one batch
// Until the batch leaves these, its sources are still being copied.
const COPY_PENDING = new Set(["new", "copying"]);
// These can end a batch before its sources were all copied.
const COPY_STOPPED = new Set(["failed", "cancel", "cancelling", "cancelled"]);
let file = null;
let stream = null;
let urlCount = 0; // sources of the running URL import; 0 for an upload
let copied = false;

const sourceKind = () => form.elements.source.value;

function plural(count, word) {
  return `${formatNumber(count)} ${word}${count === 1 ? "" : "s"}`;
}

function shorten(text, length = 60) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function chooseFile(chosen) {
  file = chosen || null;
  $("file-name").textContent = file ? `${file.name} (${formatBytes(file.size)})` : "No file chosen";
  dropzone.classList.toggle("has-file", Boolean(file));
  $("form-error").textContent = "";
}

function showSourceKind() {
  const urls = sourceKind() === "urls";
  dropzone.hidden = urls;
  $("urls-panel").hidden = !urls;
  $("another").textContent = urls ? "Import other URLs" : "Import another file";
  $("form-error").textContent = "";
  urlsInput.removeAttribute("aria-invalid");
}

function formatBytes(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function wireDropzone() {
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
  }
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    const dropped = event.dataTransfer?.files?.[0];
    if (dropped) chooseFile(dropped);
  });
  fileInput.addEventListener("change", () => chooseFile(fileInput.files[0]));
}

/** Dataset, operation and format: the fields both kinds of import share. */
function batchFields() {
  const fields = { dataset: $("dataset").value, operation: $("operation").value };
  if ($("format").value) fields.format = $("format").value;
  return fields;
}

/**
 * The batch's options: only what the form sets (a dry run, the operation's settings), so the
 * server's defaults apply; throws when the settings box is not a JSON object.
 */
function batchOptions() {
  const options = {};
  if ($("dry-run").checked) options.dry_run = true;
  const settings = operationSettings();
  if (settings) options.operation = settings;
  return Object.keys(options).length ? options : null;
}

/** options.operation from the settings box: an object, null when empty; throws when not JSON. */
function operationSettings() {
  const text = $("operation-settings").value.trim();
  if ($("settings-panel").hidden || !text) return null;
  const value = JSON.parse(text);
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new SyntaxError("not a JSON object");
  return value;
}

function uploadUrl() {
  const params = new URLSearchParams(batchFields());
  const options = batchOptions();
  if (options) params.set("options", JSON.stringify(options));
  return `/batches?${params}`;
}

/** The server's operations in the select; the settings box for those that take settings. */
const operations = new Map();
async function loadOperations() {
  const select = $("operation");
  try {
    const listed = (await api("/operations")).operations;
    for (const op of listed) {
      operations.set(op.name, op);
      if (![...select.options].some((o) => o.value === op.name)) select.append(new Option(`${op.name}: ${op.description}`, op.name));
    }
  } catch (error) {
    showNotice(`Could not load the operations: ${error.message}`);
  }
  select.addEventListener("change", showSettings);
  showSettings();
}

function showSettings() {
  const op = operations.get($("operation").value);
  const keys = Object.keys(op?.settings_schema?.properties || {});
  $("settings-panel").hidden = keys.length === 0;
  const required = new Set(op?.settings_schema?.required || []);
  $("settings-help").textContent = keys.length
    ? `${op.description} Settings: ${keys.map((k) => (required.has(k) ? `${k} (required)` : k)).join(", ")}.`
    : "";
}

function isSourceUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  if (url.protocol === "s3:") return /^s3:\/\/[^/]+\/./i.test(text);
  return (url.protocol === "http:" || url.protocol === "https:") && Boolean(url.hostname);
}

function sourceProblem([url, sha256, ...rest]) {
  if (rest.length) return "expected a URL, optionally followed by its SHA-256, and nothing more.";
  if (!isSourceUrl(url)) return `“${shorten(url)}” is not an http://, https:// or s3:// URL.`;
  if (sha256 !== undefined && !SHA256.test(sha256)) {
    return `the SHA-256 “${shorten(sha256)}” is not 64 hexadecimal digits.`;
  }
  return "";
}

/**
 * The textarea's lines as API sources ("URL" or "URL sha256"; blank lines skipped), or the first
 * problem with the number of its line (0-based `line`, to select it).
 */
function parseSources(text) {
  const lines = text.split("\n");
  const sources = [];
  for (const [index, line] of lines.entries()) {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (!words.length) continue;
    const problem = sourceProblem(words);
    if (problem) return { problem: `Line ${index + 1}: ${problem}`, line: index, lines };
    const [url, sha256] = words;
    sources.push(sha256 ? { url, sha256: sha256.toLowerCase() } : url);
  }
  if (!sources.length) return { problem: "Enter at least one URL, one per line." };
  if (sources.length > MAX_SOURCES) {
    const count = formatNumber(sources.length);
    return { problem: `At most ${formatNumber(MAX_SOURCES)} URLs make one batch; this list has ${count}.` };
  }
  return { sources };
}

function showUrlsProblem({ problem, line, lines }) {
  $("form-error").textContent = problem;
  urlsInput.setAttribute("aria-invalid", "true");
  urlsInput.focus();
  if (line === undefined) return;
  const start = lines.slice(0, line).join("\n").length + (line ? 1 : 0);
  urlsInput.setSelectionRange(start, start + lines[line].length);
}

function errorMessage(xhr) {
  try {
    return JSON.parse(xhr.responseText).error.message;
  } catch {
    return `The server answered ${xhr.status}`;
  }
}

function showUploadProgress(loaded, total) {
  const percent = total ? (loaded / total) * 100 : 0;
  setProgress($("upload-progress"), percent, `${Math.floor(percent)}% uploaded`);
  $("upload-text").textContent = `${formatBytes(loaded)} of ${formatBytes(total)} uploaded`;
}

function upload() {
  const xhr = new XMLHttpRequest();
  xhr.open("POST", uploadUrl());
  xhr.setRequestHeader("Authorization", `Bearer ${getToken()}`);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.addEventListener("progress", (event) => showUploadProgress(event.loaded, event.total || file.size));
  xhr.addEventListener("load", () => {
    if (xhr.status === 202) {
      showUploadProgress(file.size, file.size);
      $("upload-text").textContent = `${formatBytes(file.size)} uploaded and stored.`;
      followProcessing(JSON.parse(xhr.responseText));
    } else if (xhr.status === 401) {
      goToSignIn();
    } else {
      failed(errorMessage(xhr));
    }
  });
  xhr.addEventListener("error", () => failed("The upload was interrupted (network error)."));
  xhr.send(file);
}

function failed(message) {
  $("upload-text").textContent = `Upload failed: ${message}`;
  $("form-error").textContent = message;
  setFormEnabled(true);
}

/** The first bar of a URL import: the server copying the sources (a stage, not bytes). */
function renderCopy(batch) {
  const bar = $("upload-progress");
  const sources = plural(urlCount, "source");
  if (COPY_PENDING.has(batch.status)) {
    setProgress(bar, 0, "copying");
    $("upload-text").textContent = `The server is copying ${sources}…`;
  } else if (COPY_STOPPED.has(batch.status) && !copied) {
    $("upload-text").textContent = `Copy stopped: the batch is ${statusLabel(batch.status)}.`;
  } else {
    copied = true;
    setProgress(bar, 100, "copied");
    $("upload-text").textContent =
      batch.status === "hash_mismatch"
        ? `${sources} copied, but one does not match its SHA-256.`
        : `${sources} copied and stored.`;
  }
}

async function importUrls(sources) {
  try {
    const body = { ...batchFields(), sources };
    const options = batchOptions();
    if (options) body.options = options;
    const batch = await api("/batches", { method: "POST", json: body });
    followProcessing(batch);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // api() went to sign in
    $("run").hidden = true;
    $("form-error").textContent =
      error instanceof ApiError
        ? `The server refused these sources: ${error.message}`
        : `Could not reach the server: ${error.message}`;
    setFormEnabled(true);
    urlsInput.focus();
  }
}

function renderRun(batch) {
  setBadge($("run-status"), batch.status);
  const percent = percentOf(batch);
  setProgress($("run-progress"), percent);
  $("run-progress").dataset.status = batch.status;
  $("run-text").textContent =
    (batch.dry_run ? "Dry run, nothing is written. " : "") +
    `${statusLabel(batch.status)}: ${formatNumber(batch.processed_operations)} of ` +
    `${formatNumber(batch.total_operations)} records processed, ` +
    `${formatNumber(batch.failed_operations)} failed` +
    (batch.error_message ? ` — ${batch.error_message}` : "");
  if (urlCount) renderCopy(batch);
}

function followProcessing(batch) {
  $("processing").hidden = false;
  $("run-link").href = `/ui/batches/${batch.batch}`;
  renderRun(batch);
  stream = followBatch(batch.batch, { batch: renderRun, end: renderRun });
}

function setFormEnabled(enabled) {
  for (const element of form.elements) element.disabled = !enabled;
}

async function loadDatasets() {
  const select = $("dataset");
  try {
    const datasets = await allDatasets();
    for (const dataset of datasets) select.append(new Option(dataset.name, dataset.name));
    if (!datasets.length) showNotice("No dataset yet: declare one with POST /datasets first.", "info");
  } catch (error) {
    showNotice(`Could not load datasets: ${error.message}`);
  }
  select.value = new URLSearchParams(location.search).get("dataset") || select.value;
}

function reset() {
  stream?.stop();
  chooseFile(null);
  fileInput.value = "";
  urlsInput.value = "";
  $("run").hidden = true;
  $("processing").hidden = true;
  setFormEnabled(true);
  $("dataset").focus();
}

/** The run section before the batch exists; the title names what is imported, and where. */
function startRun(what, progressLabel) {
  setFormEnabled(false);
  $("run").hidden = false;
  $("processing").hidden = true;
  $("run-title").textContent = `Import of ${what} into ${$("dataset").value}`;
  $("upload-label").textContent = progressLabel;
}

function startUpload() {
  if (!file) {
    $("form-error").textContent = "Choose or drop a file.";
    fileInput.focus();
    return;
  }
  urlCount = 0;
  startRun(file.name, "Upload");
  showUploadProgress(0, file.size);
  upload();
}

function startUrlImport() {
  const parsed = parseSources(urlsInput.value);
  if (parsed.problem) {
    showUrlsProblem(parsed);
    return;
  }
  urlsInput.removeAttribute("aria-invalid");
  urlCount = parsed.sources.length;
  copied = false;
  startRun(plural(urlCount, "URL"), "Copy");
  setProgress($("upload-progress"), 0, "not started");
  $("upload-text").textContent = `Sending ${plural(urlCount, "source")}…`;
  importUrls(parsed.sources);
}

if (startPage()) {
  wireDropzone();
  loadDatasets();
  loadOperations();
  showSourceKind();
  for (const radio of form.elements.source) radio.addEventListener("change", showSourceKind);
  urlsInput.addEventListener("input", () => urlsInput.removeAttribute("aria-invalid"));
  $("another").addEventListener("click", reset);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    $("form-error").textContent = "";
    let settingsOk = true;
    try {
      operationSettings();
    } catch {
      settingsOk = false;
    }
    if (!$("dataset").value) {
      $("form-error").textContent = "Choose a dataset.";
      $("dataset").focus();
    } else if (!settingsOk) {
      $("form-error").textContent = "The operation settings must be a JSON object.";
      $("operation-settings").focus();
    } else if (sourceKind() === "urls") {
      startUrlImport();
    } else {
      startUpload();
    }
  });
}
