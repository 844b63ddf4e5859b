// Reads the first rows of a CSV response as it streams, then stops: a results file may be huge.

/** Feeds text to a small RFC 4180 state machine; onRow returns false to stop. */
class CsvParser {
  constructor(onRow) {
    this.onRow = onRow;
    this.row = [];
    this.field = "";
    this.quoted = false;
    this.quoteSeen = false;
    this.stopped = false;
  }

  push(text) {
    for (const char of text) {
      if (this.stopped) return;
      this.step(char);
    }
  }

  step(char) {
    if (this.quoted) {
      if (this.quoteSeen) {
        this.quoteSeen = false;
        if (char === '"') {
          this.field += '"';
          return;
        }
        this.quoted = false;
      } else if (char === '"') {
        this.quoteSeen = true;
        return;
      } else {
        this.field += char;
        return;
      }
    }
    if (char === '"' && this.field === "") this.quoted = true;
    else if (char === ",") this.endField();
    else if (char === "\n") this.endRow();
    else if (char !== "\r") this.field += char;
  }

  endField() {
    this.row.push(this.field);
    this.field = "";
  }

  endRow() {
    this.endField();
    const row = this.row;
    this.row = [];
    if (this.onRow(row) === false) this.stopped = true;
  }
}

/**
 * Streams a CSV Response, calling onRow(row) for the header and each record until onRow returns
 * false or maxBytes have been read; then cancels the download.
 */
export async function readCsv(response, onRow, maxBytes) {
  const parser = new CsvParser(onRow);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let read = 0;
  try {
    while (!parser.stopped && read < maxBytes) {
      const { value, done } = await reader.read();
      if (done) {
        parser.push(decoder.decode());
        if (parser.field !== "" || parser.row.length) parser.endRow();
        break;
      }
      read += value.byteLength;
      parser.push(decoder.decode(value, { stream: true }));
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Streams a JSON Lines Response, calling onLine(text) for each non-blank line until onLine
 * returns false or maxBytes have been read; then cancels the download.
 */
export async function readLines(response, onLine, maxBytes) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let read = 0;
  let rest = "";
  let stopped = false;
  const feed = (text) => {
    const lines = (rest + text).split("\n");
    rest = lines.pop();
    for (const line of lines) {
      if (line.trim() && onLine(line) === false) return true;
    }
    return false;
  };
  try {
    while (!stopped && read < maxBytes) {
      const { value, done } = await reader.read();
      if (done) {
        stopped = feed(decoder.decode() + "\n");
        break;
      }
      read += value.byteLength;
      stopped = feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
