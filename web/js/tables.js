// Keyed tables: one row per id, cells updated in place (no re-render of the table), so
// a wallboard with hundreds of live calls stays cheap to update.
import { el, setText } from "./util.js";

export class KeyedTable {
  // columns: [{key, cell(item, now) -> text | {text, cls, label}}]
  constructor(tbody, emptyNote, counter, columns, order) {
    this.tbody = tbody;
    this.emptyNote = emptyNote;
    this.counter = counter;
    this.columns = columns;
    this.order = order;
    this.rows = new Map();
    // Only rows on screen tick (a wallboard may hold hundreds): an IntersectionObserver
    // on the table's scrolling box says which; a row coming into view is repainted.
    this.visible = new Set();
    const root = tbody.closest(".table-wrap");
    this.observer = typeof IntersectionObserver === "function" ? new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const id = entry.target.dataset.id;
        if (entry.isIntersecting) {
          this.visible.add(id);
          const row = this.rows.get(id);
          if (row) this.paint(row, Date.now());
        } else {
          this.visible.delete(id);
        }
      }
    }, { root }) : null;
  }

  has(id) { return this.rows.has(id); }
  get(id) { const r = this.rows.get(id); return r && r.item; }
  items() { return [...this.rows.values()].map((r) => r.item); }

  upsert(id, item, now = Date.now()) {
    let row = this.rows.get(id);
    if (!row) {
      const tr = el("tr", { dataset: { id } });
      const cells = this.columns.map(() => tr.appendChild(el("td")));
      row = { tr, cells, item };
      this.rows.set(id, row);
      this.insert(row);
      if (this.observer) this.observer.observe(tr); else this.visible.add(id);
    }
    row.item = item;
    this.paint(row, now);
    this.counts();
  }

  insert(row) {
    if (!this.order) { this.tbody.append(row.tr); return; }
    for (const other of this.tbody.children) {
      const otherRow = this.rows.get(other.dataset.id);
      if (otherRow && this.order(row.item, otherRow.item) < 0) { this.tbody.insertBefore(row.tr, other); return; }
    }
    this.tbody.append(row.tr);
  }

  paint(row, now) {
    this.columns.forEach((column, i) => {
      const value = column.cell(row.item, now);
      const cell = row.cells[i];
      if (value && typeof value === "object") {
        setText(cell, value.text);
        const cls = value.cls || "";
        if (cell.className !== cls) cell.className = cls;
        if (value.label) cell.setAttribute("aria-label", value.label);
      } else {
        setText(cell, value);
      }
    });
  }

  // Repaint only the columns that change with time (durations).
  tick(now = Date.now()) {
    const ticking = this.columns.map((c, i) => (c.ticks ? i : -1)).filter((i) => i >= 0);
    for (const id of this.visible) {
      const row = this.rows.get(id);
      if (!row) continue;
      for (const i of ticking) setText(row.cells[i], this.columns[i].cell(row.item, now));
    }
  }

  remove(id) {
    const row = this.rows.get(id);
    if (!row) return;
    if (this.observer) this.observer.unobserve(row.tr);
    row.tr.remove();
    this.rows.delete(id);
    this.visible.delete(id);
    this.counts();
  }

  clear() {
    if (this.observer) this.observer.disconnect();
    this.rows.clear();
    this.visible.clear();
    this.tbody.replaceChildren();
    this.counts();
  }

  counts() {
    if (this.counter) setText(this.counter, this.rows.size);
    if (this.emptyNote) this.emptyNote.hidden = this.rows.size > 0;
  }
}
