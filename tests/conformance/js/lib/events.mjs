// A queue of received events with `waitFor`, so tests read server events in order.
export const WAIT_MS = Number(process.env.BRAZEN_CONF_WAIT_S || 20) * 1000;
export const CHUNK_SLEEP_MS = Number(process.env.BRAZEN_CONF_CHUNK_SLEEP_S ?? 0.02) * 1000;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class EventQueue {
  constructor(label) {
    this.label = label;
    this.all = [];
    this.pending = [];
    this.waiters = [];
  }
  push(ev) {
    this.all.push(ev);
    const w = this.waiters.shift();
    if (w) w(ev); else this.pending.push(ev);
  }
  next(timeoutMs) {
    if (this.pending.length) return Promise.resolve(this.pending.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== fn); reject(new Error('timeout')); }, timeoutMs);
      const fn = (ev) => { clearTimeout(t); resolve(ev); };
      this.waiters.push(fn);
    });
  }
  /** Read events until `want` (a type or a predicate) matches. Returns { ev, seen }. */
  async waitFor(want, { timeoutMs = WAIT_MS, allowError = false } = {}) {
    const pred = typeof want === 'string' ? (e) => e.type === want : want;
    const seen = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      let ev;
      try {
        if (left <= 0) throw new Error('timeout');
        ev = await this.next(left);
      } catch {
        throw new Error(`[${this.label}] timed out after ${timeoutMs} ms waiting for ${typeof want === 'string' ? want : 'predicate'}; got: ${seen.slice(-40).map((e) => e.type).join(', ')}`);
      }
      seen.push(ev);
      if (ev.type === 'error' && !allowError && !pred(ev)) {
        throw new Error(`[${this.label}] unexpected error event: ${JSON.stringify(ev)}`);
      }
      if (pred(ev)) return { ev, seen };
    }
  }
  async drain(quietMs = 300) {
    const out = [];
    for (;;) {
      try { out.push(await this.next(quietMs)); } catch { return out; }
    }
  }
}

export const ofType = (events, t) => events.filter((e) => e.type === t);
