// A hand-drawn SVG line chart of processed records over time (no chart library, works offline).

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 480;
const HEIGHT = 220;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

function node(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function compact(value) {
  return new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 }).format(value);
}

function elapsed(seconds) {
  return seconds < 90 ? `${seconds.toFixed(seconds < 10 ? 1 : 0)} s` : `${(seconds / 60).toFixed(1)} min`;
}

/** A round step for four grid lines covering value (1, 2, 2.5 or 5 times a power of ten). */
function niceStep(value) {
  const rough = Math.max(value / 4, 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= rough);
}

/**
 * Draws points [{t, processed}] (t in epoch seconds) into svg, with the total as a dashed line.
 * Returns a one-line description for screen readers.
 */
export function drawChart(svg, points, total) {
  svg.replaceChildren();
  const sorted = [...points].sort((a, b) => a.t - b.t);
  if (sorted.length < 2) return "Waiting for progress…";
  if (sorted.every((p) => p.processed === 0)) {
    svg.append(node("text", { x: WIDTH / 2, y: HEIGHT / 2, class: "axis empty", "text-anchor": "middle" },
      "No records processed yet"));
    return "No records processed yet.";
  }
  const t0 = sorted[0].t;
  const span = Math.max(sorted.at(-1).t - t0, 0.001);
  const step = niceStep(Math.max(total || 0, ...sorted.map((p) => p.processed)));
  const top = step * Math.max(1, Math.ceil(Math.max(total || 0, ...sorted.map((p) => p.processed)) / step));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + ((t - t0) / span) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  for (let value = 0; value <= top; value += step) {
    svg.append(node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid" }));
    svg.append(node("text", { x: PAD.left - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" }, compact(value)));
  }
  svg.append(node("text", { x: PAD.left, y: HEIGHT - 8, class: "axis" }, "0 s"));
  svg.append(node("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, class: "axis", "text-anchor": "end" }, elapsed(span)));
  if (total) {
    svg.append(node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(total), y2: y(total), class: "total" }));
  }
  const line = sorted.map((p) => `${x(p.t).toFixed(1)},${y(p.processed).toFixed(1)}`).join(" ");
  const base = `${x(t0).toFixed(1)},${y(0)} `;
  const end = ` ${x(sorted.at(-1).t).toFixed(1)},${y(0)}`;
  svg.append(node("polygon", { points: base + line + end, class: "area" }));
  svg.append(node("polyline", { points: line, class: "line" }));
  const last = sorted.at(-1);
  svg.append(node("circle", { cx: x(last.t), cy: y(last.processed), r: 3.5, class: "dot" }));
  return `${compact(last.processed)}${total ? ` of ${compact(total)}` : ""} records processed ` +
    `in ${elapsed(span)}`;
}
