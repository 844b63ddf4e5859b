// The first invalid records of an ended batch: record numbers and reasons from the results
// file, original fields from the failed-records file, each read only as far as needed. The
// failed-records file holds the failed and the not-processed records, in the results' order.
import { apiFetch } from "./api.js";
import { readCsv, readLines } from "./csv.js";
import { h } from "./format.js";

const SHOWN = 20;
const MAX_RESULTS_BYTES = 8 * 2 ** 20;

/** Results rows not succeeded, in order, until SHOWN failed ones: the failed-records file's rows. */
async function firstFailures(base) {
  const unapplied = [];
  let failed = 0;
  let header = null;
  await readCsv(await apiFetch(`${base}/results`), (row) => {
    if (!header) {
      header = row;
      return true;
    }
    const record = Object.fromEntries(header.map((name, i) => [name, row[i] ?? ""]));
    if (record.outcome !== "succeeded") unapplied.push(record);
    if (record.outcome === "failed") failed += 1;
    return failed < SHOWN;
  }, MAX_RESULTS_BYTES);
  return unapplied;
}

async function firstFailedRecords(base, wanted) {
  const response = await apiFetch(`${base}/failed-records`);
  if ((response.headers.get("content-type") || "").includes("ndjson")) {
    return firstFailedLines(response, wanted);
  }
  let header = null;
  const records = [];
  await readCsv(response, (row) => {
    if (!header) header = row;
    else records.push(row);
    return records.length < wanted;
  }, MAX_RESULTS_BYTES);
  return { header: header || [], records };
}

/** JSON Lines failed records (a JSON Lines input): the members become the columns. */
async function firstFailedLines(response, wanted) {
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
    return objects.length < wanted;
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
  const unapplied = await firstFailures(base);
  const failed = await firstFailedRecords(base, unapplied.length);
  const fields = failed.header.filter((name) => name !== "error");
  const head = document.getElementById("invalid-head");
  head.replaceChildren(
    h("th", { scope: "col", class: "num" }, "Record"),
    h("th", { scope: "col" }, "Column"),
    h("th", { scope: "col" }, "Error"),
    ...fields.map((name) => h("th", { scope: "col" }, name)),
  );
  const shown = unapplied.map((failure, i) => [failure, failed.records[i] || []])
    .filter(([failure]) => failure.outcome === "failed");
  const count = shown.length;
  if (!count) return;
  const rows = [];
  for (const [failure, values] of shown) {
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
    `${Math.max(batch.failed_operations, count).toLocaleString("en")} record(s) failed; the first ${count} are shown. ` +
    "Download the failed records to fix and resend them.";
  card.hidden = false;
}
