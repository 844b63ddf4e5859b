// Start an import: pick a dataset, drop a file, watch the upload (XMLHttpRequest upload events:
// fetch cannot report upload progress), then follow the processing live, without a reload.
import { api, followBatch, getToken, goToSignIn, showNotice, startPage } from "./api.js";
import { formatNumber, percentOf, setBadge, setProgress, statusLabel } from "./format.js";

const $ = (id) => document.getElementById(id);
const form = $("import-form");
const fileInput = $("file");
const dropzone = $("dropzone");
let file = null;
let stream = null;

function chooseFile(chosen) {
  file = chosen || null;
  $("file-name").textContent = file ? `${file.name} (${formatBytes(file.size)})` : "No file chosen";
  dropzone.classList.toggle("has-file", Boolean(file));
  $("form-error").textContent = "";
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

function uploadUrl() {
  const query = new URLSearchParams({ dataset: $("dataset").value, operation: $("operation").value });
  if ($("format").value) query.set("format", $("format").value);
  return `/batches?${query}`;
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

function renderRun(batch) {
  setBadge($("run-status"), batch.status);
  const percent = percentOf(batch);
  setProgress($("run-progress"), percent);
  $("run-progress").dataset.status = batch.status;
  $("run-text").textContent =
    `${statusLabel(batch.status)}: ${formatNumber(batch.processed_operations)} of ` +
    `${formatNumber(batch.total_operations)} records processed, ` +
    `${formatNumber(batch.failed_operations)} failed` +
    (batch.error_message ? ` — ${batch.error_message}` : "");
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
    const { datasets } = await api("/datasets");
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
  $("run").hidden = true;
  $("processing").hidden = true;
  setFormEnabled(true);
  $("dataset").focus();
}

if (startPage()) {
  wireDropzone();
  loadDatasets();
  $("another").addEventListener("click", reset);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = !$("dataset").value ? "Choose a dataset." : !file ? "Choose or drop a file." : "";
    $("form-error").textContent = problem;
    if (problem) {
      ($("dataset").value ? fileInput : $("dataset")).focus();
      return;
    }
    setFormEnabled(false);
    $("run").hidden = false;
    $("run-title").textContent = `Import of ${file.name} into ${$("dataset").value}`;
    showUploadProgress(0, file.size);
    upload();
  });
}
