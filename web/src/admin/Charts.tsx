// The admin view's charts, drawn as SVG by hand: each analysed call's rating (1–5) over time,
// coloured by the customer's sentiment, and how many calls had each sentiment.
import { when } from '../ui/format';

/** One analysed call on the chart. */
export interface RatingPoint {
  /** The conversation's id. */
  id: string;
  /** When the call started, unix ms. */
  at: number;
  /** 1–5. */
  rating: number;
  /** `positive`, `neutral`, `negative` (anything else is drawn as unknown). */
  sentiment: string | null;
}

/** The chart's size in SVG units (it scales to its box). */
export const CHART = { width: 640, height: 240, left: 40, right: 16, top: 14, bottom: 34 };

const SENTIMENTS = ['positive', 'neutral', 'negative'] as const;

/** Where each point sits: x by time (oldest left), y by rating (5 at the top); oldest first. */
export function placePoints(points: RatingPoint[]): (RatingPoint & { x: number; y: number })[] {
  const sorted = [...points].sort((a, b) => a.at - b.at);
  const w = CHART.width - CHART.left - CHART.right;
  const h = CHART.height - CHART.top - CHART.bottom;
  const first = sorted[0]?.at ?? 0;
  const span = (sorted[sorted.length - 1]?.at ?? 0) - first;
  return sorted.map((p) => {
    const r = Math.min(5, Math.max(1, p.rating));
    return {
      ...p,
      x: CHART.left + (span > 0 ? ((p.at - first) / span) * w : w / 2),
      y: CHART.top + ((5 - r) / 4) * h,
    };
  });
}

function sentimentClass(s: string | null): string {
  return SENTIMENTS.includes(s as (typeof SENTIMENTS)[number]) ? (s as string) : 'unknown';
}

/** Each analysed call's rating over time, its point coloured by the sentiment. */
export function RatingChart({ points }: { points: RatingPoint[] }) {
  if (!points.length) return <p class="empty">No call has been analysed yet: ratings appear here when calls end.</p>;
  const placed = placePoints(points);
  const h = CHART.height - CHART.top - CHART.bottom;
  const mean = points.reduce((s, p) => s + p.rating, 0) / points.length;
  const label = `Rating of ${points.length} analysed call${points.length === 1 ? '' : 's'} over time, from ${when(placed[0].at)} to ${when(placed[placed.length - 1].at)}; average ${mean.toFixed(1)} of 5.`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${CHART.width} ${CHART.height}`} role="img" aria-label={label} data-testid="rating-chart">
        {[1, 2, 3, 4, 5].map((r) => {
          const y = CHART.top + ((5 - r) / 4) * h;
          return (
            <g key={r} class="grid">
              <line x1={CHART.left} x2={CHART.width - CHART.right} y1={y} y2={y} />
              <text x={CHART.left - 8} y={y + 4} text-anchor="end">{r}</text>
            </g>
          );
        })}
        <text class="axis" x={CHART.left} y={CHART.height - 10}>{when(placed[0].at)}</text>
        {placed.length > 1 && <text class="axis" x={CHART.width - CHART.right} y={CHART.height - 10} text-anchor="end">{when(placed[placed.length - 1].at)}</text>}
        {placed.length > 1 && <polyline class="trend" points={placed.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')} />}
        {placed.map((p) => (
          <circle key={p.id} class={`point ${sentimentClass(p.sentiment)}`} cx={p.x.toFixed(1)} cy={p.y.toFixed(1)} r={5} data-rating={p.rating} data-id={p.id}>
            <title>{`${when(p.at)}: rated ${p.rating} of 5, ${p.sentiment ?? 'sentiment unknown'}`}</title>
          </circle>
        ))}
      </svg>
      <figcaption>
        Rating (1–5) per analysed call; points coloured by sentiment:{' '}
        {SENTIMENTS.map((s) => <span key={s} class={`key ${s}`}>{s}</span>)}
      </figcaption>
    </figure>
  );
}

/** Counts of calls per sentiment, from the points. */
export function sentimentCounts(points: RatingPoint[]): Record<string, number> {
  const counts: Record<string, number> = { positive: 0, neutral: 0, negative: 0 };
  for (const p of points) {
    const k = sentimentClass(p.sentiment);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

/** How many analysed calls had each sentiment, as bars. */
export function SentimentChart({ points }: { points: RatingPoint[] }) {
  if (!points.length) return null;
  const counts = sentimentCounts(points);
  const kinds = Object.keys(counts).filter((k) => k !== 'unknown' || counts[k] > 0);
  const most = Math.max(1, ...Object.values(counts));
  const row = 30;
  const width = 640;
  const left = 90;
  const barMax = width - left - 60;
  const label = `Sentiment of the analysed calls: ${kinds.map((k) => `${counts[k]} ${k}`).join(', ')}.`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${kinds.length * row + 8}`} role="img" aria-label={label} data-testid="sentiment-chart">
        {kinds.map((k, i) => {
          const w = (counts[k] / most) * barMax;
          const y = 4 + i * row;
          return (
            <g key={k} class={`bar ${k}`} data-sentiment={k} data-count={counts[k]}>
              <text x={left - 8} y={y + 17} text-anchor="end">{k}</text>
              <rect x={left} y={y} width={Math.max(w, counts[k] ? 2 : 0)} height={row - 8} rx={3} />
              <text x={left + w + 6} y={y + 17}>{counts[k]}</text>
            </g>
          );
        })}
      </svg>
      <figcaption>Calls per customer sentiment</figcaption>
    </figure>
  );
}
