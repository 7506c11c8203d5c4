// The transcript: the user's words and the assistant's as they stream, the word being heard
// highlighted, tool calls inline, errors and notices in plain words. Always shown (captions).
import { useEffect, useRef, useState } from 'preact/hooks';
import { wordAt, type Entry } from '../conversation';
import { parseToolOutput, ToolCards } from './ToolCards';

interface Props {
  entries: Entry[];
  /** The assistant item being heard and how far into it, ms. */
  heard(): { itemId: string; ms: number } | null;
  /** Whether anything is playing (the highlight is refreshed only then). */
  playing: boolean;
  /** The server's http(s) origin: tools' pictures given as paths come from there. */
  base?: string;
}

function Words({ entry, at }: { entry: Entry; at: number }) {
  if (!entry.words.length || at < 0) return <>{entry.text}</>;
  return (
    <>
      {entry.words.map((w, i) => (
        <span key={i} class={i === at ? 'word now' : i < at ? 'word heard' : 'word'}>{w.text} </span>
      ))}
    </>
  );
}

/** The conversation's transcript. */
export function Transcript({ entries, heard, playing, base = location.origin }: Props) {
  const [now, setNow] = useState<{ itemId: string; ms: number } | null>(null);
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!playing) {
      setNow(null);
      return;
    }
    const timer = setInterval(() => setNow(heard()), 80);
    return () => clearInterval(timer);
  }, [playing, heard]);
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: 'end' });
  }, [entries.length, entries[entries.length - 1]?.text]);

  return (
    <div class="transcript" role="log" aria-live="polite" aria-label="Transcript">
      {entries.length === 0 && <p class="empty">Connect and speak, or type a message.</p>}
      {entries.map((e) => {
        if (e.kind === 'tool') {
          const output = e.tool?.output;
          const result = output === undefined ? null : parseToolOutput(output);
          return (
            <div key={e.id} class="entry tool" data-status={e.status} data-tool={e.tool?.name}>
              <span class="who">tool</span>
              <code>{e.tool?.name}({e.tool?.arguments})</code>
              {output !== undefined && !result && <code class="output">→ {output}</code>}
              {result && <ToolCards result={result} base={base} />}
              {result && result.kind !== 'error' && (
                <details class="output raw"><summary>the tool's answer as data</summary><code>{output}</code></details>
              )}
            </div>
          );
        }
        const at = now && now.itemId === e.id ? wordAt(e.words, now.ms) : -1;
        return (
          <div key={e.id} class={`entry ${e.kind}`} data-status={e.status} data-item={e.id}>
            <span class="who">{e.kind === 'user' ? 'you' : e.kind === 'assistant' ? 'assistant' : e.kind === 'error' ? 'error' : 'note'}</span>
            <span class="text">
              {e.kind === 'user' && !e.text && e.status === 'streaming' ? '…' : <Words entry={e} at={at} />}
              {e.truncatedAtMs !== undefined && <em class="cut"> (interrupted at {(e.truncatedAtMs / 1000).toFixed(1)} s)</em>}
            </span>
          </div>
        );
      })}
      <div ref={end} />
    </div>
  );
}
