// The first invalid records of a completed batch: record numbers and reasons from the results
// file, original fields from the failed-records file, each read only as far as needed.
import { apiFetch } from "./api.js";
import { readCsv, readLines } from "./csv.js";
import { h } from "./format.js";

const SHOWN = 20;
const MAX_RESULTS_BYTES = 8 * 2 ** 20;

async function firstFailures(base) {
  const failures = [];
  let header = null;
  await readCsv(await apiFetch(`${base}/results`), (row) => {
    if (!header) {
      header = row;
      return true;
    }
    const record = Object.fromEntries(header.map((name, i) => [name, row[i] ?? ""]));
    if (record.outcome === "failed") failures.push(record);
    return failures.length < SHOWN;
  }, MAX_RESULTS_BYTES);
  return failures;
}

async function firstFailedRecords(base) {
  const response = await apiFetch(`${base}/failed-records`);
  if ((response.headers.get("content-type") || "").includes("ndjson")) {
    return firstFailedLines(response);
  }
  let header = null;
  const records = [];
  await readCsv(response, (row) => {
    if (!header) header = row;
    else records.push(row);
    return records.length < SHOWN;
  }, MAX_RESULTS_BYTES);
  return { header: header || [], records };
}

/** JSON Lines failed records (a JSON Lines input): the members become the columns. */
async function firstFailedLines(response) {
  const objects = [];
  await readLines(response, (line) => {
    let value;
    try {
      value = JSON.parse(line);
    } catch {
      value = null;
    }
    const isObject = value !== null && typeof value === "object" && !Array.isArray(value);
    objects.push(isObject ? value : { line });
    return objects.length < SHOWN;
  }, MAX_RESULTS_BYTES);
  const header = [...new Set(objects.flatMap((o) => Object.keys(o)))];
  const text = (v) => (v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));
  const records = objects.map((o) => header.map((name) => text(o[name])));
  return { header, records };
}

/** Fills the "First invalid records" card; the table keeps the file order (by record number). */
export async function showInvalidRecords(batch) {
  const card = document.getElementById("invalid-card");
  const base = `/batches/${encodeURIComponent(batch.batch)}`;
  const [failures, failed] = await Promise.all([firstFailures(base), firstFailedRecords(base)]);
  const fields = failed.header.filter((name) => name !== "error");
  const head = document.getElementById("invalid-head");
  head.replaceChildren(
    h("th", { scope: "col", class: "num" }, "Record"),
    h("th", { scope: "col" }, "Column"),
    h("th", { scope: "col" }, "Error"),
    ...fields.map((name) => h("th", { scope: "col" }, name)),
  );
  const count = Math.max(failures.length, failed.records.length);
  const rows = [];
  for (let i = 0; i < count; i += 1) {
    const failure = failures[i] || {};
    const values = failed.records[i] || [];
    const reason = failure.error_code
      ? [h("code", {}, failure.error_code), " ", failure.error_message || ""]
      : [values[failed.header.indexOf("error")] || ""];
    rows.push(h("tr", {},
      h("td", { class: "num", "data-label": "Record" }, failure.record_number || "—"),
      h("td", { "data-label": "Column" }, failure.error_column || "—"),
      h("td", { "data-label": "Error", class: "reason" }, ...reason),
      ...fields.map((name) => h("td", { "data-label": name, class: "mono" },
        values[failed.header.indexOf(name)] ?? "")),
    ));
  }
  document.getElementById("invalid-rows").replaceChildren(...rows);
  document.getElementById("invalid-summary").textContent =
    `${batch.failed_operations.toLocaleString("en")} record(s) failed; the first ${count} are shown. ` +
    "Download the failed records to fix and resend them.";
  card.hidden = false;
}
