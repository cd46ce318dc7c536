// Today's charts on the wallboard, drawn with the vendored uPlot: calls started per
// 15 minutes, and the service level (share of calls answered within SL_SECONDS of being
// placed, cumulative since midnight) at the end of each 15 minutes. The figures come
// from today's calls (GET /api/calls/history from local midnight), kept up to date by
// the `calls` channel.
import uPlot from "/assets/vendor/uPlot.esm.js";
import { parseTime } from "./util.js";

export const SL_SECONDS = 20;
const BUCKET_MS = 15 * 60 * 1000;
const BUCKETS = 96;

export function midnight(now = new Date()) {
  const d = new Date(now);
  d.setHours(0, 0, 0, 0);
  return d;
}

function answeredInTime(call) {
  const placed = parseTime(call.created_at);
  const answered = parseTime(call.answered_at);
  return Number.isFinite(answered) && answered - placed <= SL_SECONDS * 1000;
}

function isSettled(call, now) {
  // A call counts for the service level once it was answered, ended or waited too long.
  return call.answered_at || call.ended_at || now - parseTime(call.created_at) > SL_SECONDS * 1000;
}

// figures(calls) -> {x, counts, sl, total, slNow}
export function figures(calls, now = Date.now()) {
  const start = midnight(new Date(now)).getTime();
  const x = [];
  const counts = new Array(BUCKETS).fill(0);
  const offered = new Array(BUCKETS).fill(0);
  const inTime = new Array(BUCKETS).fill(0);
  for (let i = 0; i < BUCKETS; i += 1) x.push((start + i * BUCKET_MS) / 1000);
  for (const call of calls) {
    const i = Math.floor((parseTime(call.created_at) - start) / BUCKET_MS);
    if (i < 0 || i >= BUCKETS) continue;
    counts[i] += 1;
    if (isSettled(call, now)) {
      offered[i] += 1;
      if (answeredInTime(call)) inTime[i] += 1;
    }
  }
  const current = Math.min(BUCKETS - 1, Math.floor((now - start) / BUCKET_MS));
  const sl = [];
  let off = 0;
  let ok = 0;
  for (let i = 0; i < BUCKETS; i += 1) {
    off += offered[i];
    ok += inTime[i];
    sl.push(i > current || off === 0 ? null : Math.round((ok / off) * 1000) / 10);
  }
  return { x, counts: counts.map((c, i) => (i > current ? null : c)), sl, total: calls.length,
    slNow: off ? Math.round((ok / off) * 1000) / 10 : null };
}

function baseOptions(width, label, stroke, fill) {
  return {
    width, height: 180,
    legend: { show: false },
    cursor: { show: true, points: { show: false } },
    scales: { x: { time: true } },
    axes: [
      { stroke: "#1f2933", grid: { stroke: "#d9dee3" }, ticks: { stroke: "#d9dee3" } },
      { stroke: "#1f2933", grid: { stroke: "#d9dee3" }, ticks: { stroke: "#d9dee3" }, label },
    ],
    series: [{}, { label, stroke, fill, width: 2, points: { show: false } }],
  };
}

export class TodayCharts {
  constructor(callsBox, slBox) {
    this.boxes = [callsBox, slBox];
    this.plots = null;
  }

  width(box) { return Math.max(260, box.clientWidth - 8); }

  draw(calls) {
    const f = figures(calls);
    if (!this.plots) {
      const [a, b] = this.boxes;
      const callsOpts = baseOptions(this.width(a), "calls", "#0b5cad", "rgba(11,92,173,0.15)");
      callsOpts.series[1].paths = uPlot.paths.bars({ size: [0.8, 40] });
      const slOpts = baseOptions(this.width(b), "% in " + SL_SECONDS + " s", "#1b7a3d", "rgba(27,122,61,0.12)");
      slOpts.scales.y = { range: [0, 100] };
      slOpts.series[1].points = { show: true, size: 5 };
      this.plots = [new uPlot(callsOpts, [f.x, f.counts], a), new uPlot(slOpts, [f.x, f.sl], b)];
      window.addEventListener("resize", () => this.resize());
    } else {
      this.plots[0].setData([f.x, f.counts]);
      this.plots[1].setData([f.x, f.sl]);
    }
    return f;
  }

  resize() {
    if (!this.plots) return;
    this.plots.forEach((plot, i) => plot.setSize({ width: this.width(this.boxes[i]), height: 180 }));
  }

  destroy() {
    if (this.plots) this.plots.forEach((p) => p.destroy());
    this.plots = null;
  }
}
