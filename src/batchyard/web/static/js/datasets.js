// Datasets with their schemas and row counts, from GET /datasets.
import { allDatasets, showNotice, startPage } from "./api.js";
import { formatNumber, h } from "./format.js";

function typeOf(column) {
  if (column.type === "decimal" && column.precision) return `decimal(${column.precision}, ${column.scale ?? 0})`;
  if (column.type === "string" && column.max_length) return `string(${column.max_length})`;
  return column.type;
}

function constraintsOf(column) {
  const parts = [];
  if (column.from) parts.push(h("span", { class: "from" }, "read from ", h("code", {}, column.from)));
  if (column.default !== null && column.default !== undefined) {
    parts.push(h("span", {}, "default ", h("code", {}, JSON.stringify(column.default))));
  }
  if (column.pattern) parts.push(h("span", {}, "pattern ", h("code", {}, column.pattern)));
  if (column.min !== null && column.min !== undefined) parts.push(`min ${column.min}`);
  if (column.max !== null && column.max !== undefined) parts.push(`max ${column.max}`);
  if (column.enum) parts.push(h("span", {}, "one of ", ...column.enum.map((v) => h("code", {}, v))));
  if (!parts.length) return ["—"];
  return parts.flatMap((part, i) => (i ? ["; ", part] : [part]));
}

function datasetCard(dataset) {
  const titleId = `dataset-${dataset.name}`;
  const keys = new Set(dataset.primary_key);
  return h("section", { class: "card dataset", "aria-labelledby": titleId },
    h("div", { class: "section-head" },
      h("h2", { id: titleId, class: "mono" }, dataset.name),
      h("a", { class: "button", href: `/ui/import?dataset=${encodeURIComponent(dataset.name)}` }, "Import into it"),
    ),
    h("p", { class: "muted" },
      h("strong", { class: "row-count" }, formatNumber(dataset.row_count)), " rows · ",
      dataset.primary_key.length ? `primary key ${dataset.primary_key.join(", ")}` : "no primary key", " · ",
      `${dataset.columns.length} columns`,
      dataset.null_markers ? ` · null: ${dataset.null_markers.map((m) => JSON.stringify(m)).join(", ")}` : ""),
    h("div", { class: "table-wrap" },
      h("table", { class: "schema" },
        h("caption", { class: "visually-hidden" }, `Columns of ${dataset.name}`),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Column"), h("th", { scope: "col" }, "Type"),
          h("th", { scope: "col" }, "Nullable"), h("th", { scope: "col" }, "Constraints"))),
        h("tbody", {}, dataset.columns.map((column) => h("tr", {},
          h("td", { "data-label": "Column", class: "mono" }, column.name, keys.has(column.name) ? h("abbr", { class: "key", title: "primary key" }, "PK") : null),
          h("td", { "data-label": "Type" }, typeOf(column)),
          h("td", { "data-label": "Nullable" }, column.nullable ? "yes" : "no"),
          h("td", { "data-label": "Constraints" }, ...constraintsOf(column)),
        ))),
      ),
    ),
  );
}

async function load() {
  const summary = document.getElementById("datasets-summary");
  try {
    const datasets = await allDatasets();
    document.getElementById("datasets").replaceChildren(...datasets.map(datasetCard));
    summary.textContent = datasets.length
      ? `${datasets.length} dataset${datasets.length === 1 ? "" : "s"}`
      : "No dataset yet: declare one with POST /datasets (see the API docs).";
  } catch (error) {
    summary.textContent = "";
    showNotice(`Could not load datasets: ${error.message}`);
  }
}

if (startPage()) load();
