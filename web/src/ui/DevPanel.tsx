// Developer mode: the raw event log (both directions, filterable, payloads elided) and the
// latency of the start-up and of each turn, on the client clock.
import { useState } from 'preact/hooks';
import type { LogLine } from '../client';
import { stages, type TurnTiming } from '../conversation';
import type { Startup } from '../call';

interface Props {
  log: LogLine[];
  turns: TurnTiming[];
  startup: Startup;
  onClear(): void;
}

/** The events that stream media, many per second; hidden from the log unless asked for. */
const MEDIA = /^input_audio_buffer\.append$|(audio|video)\.delta$|animation_(viseme|blendshapes)\.delta$/;

const ms = (v: number | undefined) => (v === undefined ? '—' : `${Math.round(v)} ms`);

/** The developer panel. */
export function DevPanel({ log, turns, startup, onClear }: Props) {
  const [filter, setFilter] = useState('');
  const [dir, setDir] = useState<'both' | 'in' | 'out'>('both');
  const [media, setMedia] = useState(false);
  const shown = log.filter(
    (l) =>
      (dir === 'both' || l.dir === dir) &&
      (media || !MEDIA.test(l.type)) &&
      (!filter || l.type.includes(filter) || l.json.includes(filter)),
  );
  const since = (x: number | undefined) => (x === undefined || startup.click === undefined ? undefined : x - startup.click);
  return (
    <section class="dev" aria-label="Developer panel">
      <h2>Latency</h2>
      <table class="latency">
        <caption>Start-up, from the Connect click</caption>
        <tbody>
          <tr><th>socket open</th><td data-stage="socket">{ms(since(startup.socketOpen))}</td></tr>
          <tr><th>session configured</th><td data-stage="session">{ms(since(startup.sessionUpdated))}</td></tr>
          <tr><th>avatar answer</th><td data-stage="answer">{ms(since(startup.answer))}</td></tr>
          <tr><th>first avatar frame</th><td data-stage="first-frame">{ms(since(startup.firstFrame))}</td></tr>
        </tbody>
      </table>
      <table class="latency turns">
        <caption>Per turn, from the end of speech</caption>
        <thead><tr><th>turn</th>{stages({}).map((s) => <th key={s.label}>{s.label}</th>)}</tr></thead>
        <tbody>
          {turns.map((t, i) => (
            <tr key={i}><th>{i + 1}</th>{stages(t).map((s) => <td key={s.label}>{ms(s.ms)}</td>)}</tr>
          ))}
        </tbody>
      </table>
      <h2>Events</h2>
      <div class="log-controls">
        <input type="search" placeholder="filter (type or text)" aria-label="Filter events" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        <select aria-label="Direction" value={dir} onChange={(e) => setDir(e.currentTarget.value as typeof dir)}>
          <option value="both">both directions</option>
          <option value="in">received</option>
          <option value="out">sent</option>
        </select>
        <label><input type="checkbox" checked={media} onChange={(e) => setMedia(e.currentTarget.checked)} />media deltas</label>
        <button type="button" onClick={onClear}>Clear</button>
      </div>
      <ol class="log" aria-label="Event log">
        {shown.slice(-400).map((l) => (
          <li key={l.n} class={l.dir}>
            <span class="arrow" aria-label={l.dir === 'in' ? 'received' : 'sent'}>{l.dir === 'in' ? '↓' : '↑'}</span>
            <span class="t">{(l.at / 1000).toFixed(3)}</span>
            <details><summary>{l.type}</summary><pre>{l.json}</pre></details>
          </li>
        ))}
      </ol>
    </section>
  );
}
