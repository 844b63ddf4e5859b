// The first records' outputs of an ended batch of an operation that answers per record (http,
// a plugin's): read from the results as JSON Lines, only as far as needed.
import { apiFetch } from "./api.js";
import { readLines } from "./csv.js";
import { h } from "./format.js";

const SHOWN = 20;
const MAX_BYTES = 8 * 2 ** 20;

/** Fills the "Outputs" card with the first records: outcome, and output (or error). */
export async function showOutputs(batch) {
  const base = `/batches/${encodeURIComponent(batch.batch)}`;
  const rows = [];
  await readLines(await apiFetch(`${base}/results?format=jsonl`), (line) => {
    let record;
    try {
      record = JSON.parse(line);
    } catch {
      return true;
    }
    const shown = record.output === null || record.output === undefined
      ? (record.code ? `${record.code}: ${record.message || ""}` : "—")
      : typeof record.output === "string" ? record.output : JSON.stringify(record.output);
    rows.push(h("tr", {},
      h("td", { class: "num", "data-label": "Record" }, String(record.record_number)),
      h("td", { "data-label": "Outcome" }, record.outcome),
      h("td", { "data-label": "Output", class: "mono" }, shown),
    ));
    return rows.length < SHOWN;
  }, MAX_BYTES);
  if (!rows.length) return;
  document.getElementById("outputs-rows").replaceChildren(...rows);
  document.getElementById("outputs-summary").textContent =
    `The first ${rows.length} record(s); download the results for all of them (an output column), ` +
    "or GET the results with ?format=jsonl.";
  document.getElementById("outputs-card").hidden = false;
}
