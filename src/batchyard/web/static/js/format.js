// Small shared helpers for rendering: elements, numbers, times, status badges, progress bars.

const TERMINAL = new Set((document.body.dataset.terminal || "").split(",").filter(Boolean));
const NUMBER = new Intl.NumberFormat("en");

export function isTerminal(status) {
  return TERMINAL.has(status);
}

/** Builds an element; children are nodes or text (never parsed as HTML). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function formatNumber(value) {
  return value === null || value === undefined ? "—" : NUMBER.format(value);
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "—";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function formatAge(ts) {
  const seconds = Math.max(0, Date.now() / 1000 - ts);
  if (seconds < 5) return "just now";
  return `${formatDuration(seconds).replace(/\.\d/, "")} ago`;
}

export function formatTime(ts) {
  return new Date(ts * 1000).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

export function formatClock(ts) {
  return new Date(ts * 1000).toLocaleTimeString(undefined, {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

export function timeElement(ts, text) {
  return h("time", { datetime: new Date(ts * 1000).toISOString(), title: formatTime(ts) }, text);
}

/** Seconds the batch has run: from start to completion, or until now while it runs. */
export function batchDuration(batch) {
  const start = batch.started_ts ?? batch.created_ts;
  const end = batch.completed_ts ?? (isTerminal(batch.status) ? batch.updated_ts : Date.now() / 1000);
  return end - start;
}

export function statusLabel(status) {
  return status.replaceAll("_", " ");
}

export function setBadge(element, status) {
  element.textContent = statusLabel(status);
  element.className = `badge status-${status}`;
  element.dataset.status = status;
}

export function badge(status) {
  const element = h("span", { class: "badge" });
  setBadge(element, status);
  return element;
}

export function percentOf(batch) {
  if (batch.status === "completed") return 100;
  return Math.max(0, Math.min(100, batch.progress_percentage ?? 0));
}

export function setProgress(element, percent, text) {
  const value = Math.round(percent * 10) / 10;
  element.setAttribute("aria-valuenow", String(value));
  element.setAttribute("aria-valuetext", text ?? `${value}%`);
  element.querySelector(".progress-fill").style.width = `${value}%`;
}

export function progressBar(label) {
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-label": label,
      "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0 },
    h("div", { class: "progress-fill" }),
  );
}
