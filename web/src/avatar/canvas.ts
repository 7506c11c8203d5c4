// The avatar drawn by the page itself from `response.animation_viseme.delta` events (output mode
// "canvas"): no video at all, the mouth follows the visemes on the audio's own play position.

/** How open and how wide the mouth is for each Azure viseme id (0–21), 0–1. */
const SHAPES: [number, number][] = [
  [0, 0.5], [0.55, 0.55], [0.8, 0.5], [0.65, 0.35], [0.5, 0.6], [0.4, 0.4], [0.3, 0.75], [0.25, 0.2],
  [0.5, 0.3], [0.75, 0.45], [0.6, 0.35], [0.7, 0.55], [0.45, 0.5], [0.35, 0.35], [0.35, 0.55], [0.15, 0.7],
  [0.25, 0.4], [0.2, 0.6], [0.1, 0.55], [0.2, 0.6], [0.3, 0.55], [0, 0.45],
];

/** A viseme from a point of an item's audio. */
export interface VisemeMark {
  offsetMs: number;
  id: number;
}

/** Mouth openness and width (0–1) at `ms` into the audio, eased between visemes. */
export function mouthAt(marks: VisemeMark[], ms: number): [number, number] {
  let i = -1;
  for (let k = 0; k < marks.length; k++) if (marks[k].offsetMs <= ms) i = k;
  if (i < 0) return SHAPES[0];
  const shape = SHAPES[marks[i].id] ?? SHAPES[0];
  const next = marks[i + 1];
  if (!next) return ms - marks[i].offsetMs > 400 ? SHAPES[0] : shape;
  const span = Math.max(1, next.offsetMs - marks[i].offsetMs);
  const f = Math.min(1, Math.max(0, (ms - marks[i].offsetMs - span * 0.5) / (span * 0.5)));
  const to = SHAPES[next.id] ?? SHAPES[0];
  return [shape[0] + (to[0] - shape[0]) * f, shape[1] + (to[1] - shape[1]) * f];
}

/** Draws a face whose mouth follows the visemes of the item being heard. */
export class CanvasAvatar {
  private marks = new Map<string, VisemeMark[]>();
  private raf = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    /** The item being heard and how far into it, ms (`null`: none). */
    private readonly position: () => { itemId: string; ms: number } | null,
  ) {
    const tick = () => {
      this.draw();
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  /** Adds a viseme of item `itemId`. */
  add(itemId: string, mark: VisemeMark): void {
    const list = this.marks.get(itemId) ?? [];
    list.push(mark);
    this.marks.set(itemId, list);
  }

  /** Stops drawing. */
  close(): void {
    cancelAnimationFrame(this.raf);
  }

  private draw(): void {
    const g = this.canvas.getContext('2d');
    if (!g) return;
    const { width: w, height: h } = this.canvas;
    const at = this.position();
    const [open, wide] = at ? mouthAt(this.marks.get(at.itemId) ?? [], at.ms) : SHAPES[0];
    g.clearRect(0, 0, w, h);
    const cx = w / 2;
    const cy = h * 0.45;
    const r = Math.min(w, h) * 0.32;
    g.fillStyle = '#e8b894';
    g.beginPath();
    g.ellipse(cx, cy, r * 0.82, r, 0, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#2b1d14';
    for (const dx of [-0.33, 0.33]) {
      g.beginPath();
      g.ellipse(cx + dx * r, cy - 0.15 * r, r * 0.08, r * 0.1, 0, 0, 2 * Math.PI);
      g.fill();
    }
    g.fillStyle = '#5a1e24';
    g.beginPath();
    g.ellipse(cx, cy + 0.5 * r, r * (0.18 + 0.22 * wide), r * (0.03 + 0.22 * open), 0, 0, 2 * Math.PI);
    g.fill();
  }
}
