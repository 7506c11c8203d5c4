// The admin view (`#/admin`): the agent's data from the server's admin routes — an overview with
// the calls' ratings and sentiment over time, and paged tables of orders, shipments and
// conversations; a conversation opens its transcript (tool calls and their cards included) and
// its analysis. Every failure is a message saying what to do, never a blank page.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { cents, when } from '../ui/format';
import { parseToolOutput, ToolCards } from '../ui/ToolCards';
import {
  describeError,
  getJson,
  type ConversationDetail,
  type ConversationSummary,
  type Order,
  type Page,
  type Server,
  type Shipment,
  type StoredEntry,
} from './api';
import { RatingChart, SentimentChart, type RatingPoint } from './Charts';

/** Rows per page of the tables. */
export const PAGE_SIZE = 20;
/** How many of the latest analysed calls the overview charts. */
export const CHARTED_CALLS = 60;

/** What a request has given so far. */
type Load<T> = { state: 'loading' } | { state: 'done'; data: T } | { state: 'failed'; message: string };

/** GETs `path` whenever it (or the server) changes; a newer request drops an older one's answer. */
function useJson<T>(server: Server, path: string | null): Load<T> {
  const [load, setLoad] = useState<Load<T>>({ state: 'loading' });
  useEffect(() => {
    if (path === null) return;
    const request = new AbortController();
    setLoad({ state: 'loading' });
    getJson<T>(server, path, request.signal).then(
      (data) => !request.signal.aborted && setLoad({ state: 'done', data }),
      (e) => !request.signal.aborted && setLoad({ state: 'failed', message: describeError(e, server) }),
    );
    return () => request.abort();
  }, [server.base, server.apiKey, path]);
  return load;
}

function Failed({ message }: { message: string }) {
  return <p class="admin-error" role="alert">{message}</p>;
}

function Loading() {
  return <p class="loading" role="status">Loading…</p>;
}

/** A column of a paged table. */
interface Column<T> {
  label: string;
  cell(row: T): ComponentChildren;
  /** Right-aligned numbers. */
  numeric?: boolean;
}

/** A table of one list route, a page at a time, with Previous / Next. */
function PagedTable<T>({ server, path, caption, columns, rowKey, empty }: {
  server: Server;
  path: string;
  caption: string;
  columns: Column<T>[];
  rowKey(row: T): string;
  empty: string;
}) {
  const [offset, setOffset] = useState(0);
  const sep = path.includes('?') ? '&' : '?';
  const load = useJson<Page<T>>(server, `${path}${sep}limit=${PAGE_SIZE}&offset=${offset}`);
  if (load.state === 'failed') return <Failed message={load.message} />;
  if (load.state === 'loading') return <Loading />;
  const page = load.data;
  const last = Math.min(page.offset + page.items.length, page.total);
  return (
    <div class="paged">
      <div class="table-wrap">
        <table class="admin-table">
          <caption>{caption}</caption>
          <thead><tr>{columns.map((c) => <th key={c.label} scope="col" class={c.numeric ? 'num' : ''}>{c.label}</th>)}</tr></thead>
          <tbody>
            {page.items.map((row) => (
              <tr key={rowKey(row)}>{columns.map((c) => <td key={c.label} class={c.numeric ? 'num' : ''}>{c.cell(row)}</td>)}</tr>
            ))}
          </tbody>
        </table>
      </div>
      {page.items.length === 0 && <p class="empty">{empty}</p>}
      <nav class="pager" aria-label={`${caption} pages`}>
        <button type="button" disabled={page.offset === 0} onClick={() => setOffset(Math.max(0, page.offset - PAGE_SIZE))}>Previous</button>
        <span role="status">{page.total ? `${page.offset + 1}–${last} of ${page.total}` : '0 of 0'}</span>
        <button type="button" disabled={last >= page.total} onClick={() => setOffset(page.offset + PAGE_SIZE)}>Next</button>
      </nav>
    </div>
  );
}

const conversationLink = (id: string | null) => (id ? <a href={`#/admin/conversations/${encodeURIComponent(id)}`}>{id.slice(0, 12)}</a> : '—');

function Orders({ server }: { server: Server }) {
  return (
    <PagedTable<Order>
      server={server}
      path="/api/orders"
      caption="Orders, newest first"
      rowKey={(o) => o.id}
      empty="No orders yet."
      columns={[
        { label: 'Order', cell: (o) => <code>{o.id}</code> },
        { label: 'Placed', cell: (o) => when(o.created_at) },
        { label: 'Item', cell: (o) => `${o.product_name} (${o.product_id})` },
        { label: 'Quantity', cell: (o) => o.quantity, numeric: true },
        { label: 'Total', cell: (o) => cents(o.total_cents), numeric: true },
        { label: 'Status', cell: (o) => o.status },
        { label: 'Conversation', cell: (o) => conversationLink(o.conversation_id) },
      ]}
    />
  );
}

function Shipments({ server }: { server: Server }) {
  return (
    <PagedTable<Shipment>
      server={server}
      path="/api/shipments"
      caption="Shipments, newest first"
      rowKey={(s) => s.tracking_id}
      empty="No shipments yet."
      columns={[
        { label: 'Tracking', cell: (s) => <code>{s.tracking_id}</code> },
        { label: 'Order', cell: (s) => <code>{s.order_id}</code> },
        { label: 'Created', cell: (s) => when(s.created_at) },
        { label: 'Carrier', cell: (s) => s.carrier },
        { label: 'Arrives', cell: (s) => s.estimated_delivery },
        { label: 'Destination', cell: (s) => s.destination },
        { label: 'Status', cell: (s) => s.status },
      ]}
    />
  );
}

function analysisLabel(c: ConversationSummary): string {
  if (c.analysis_status === 'done') {
    const rated = c.rating !== null ? `rated ${c.rating}/5` : 'done';
    return c.customer_sentiment ? `${rated}, ${c.customer_sentiment}` : rated;
  }
  return c.analysis_status ?? 'none';
}

function Conversations({ server }: { server: Server }) {
  return (
    <PagedTable<ConversationSummary>
      server={server}
      path="/api/conversations"
      caption="Conversations, newest first"
      rowKey={(c) => c.id}
      empty="No conversations yet."
      columns={[
        { label: 'Conversation', cell: (c) => conversationLink(c.id) },
        { label: 'Started', cell: (c) => when(c.started_at) },
        { label: 'Ended', cell: (c) => (c.ended_at ? when(c.ended_at) : 'in progress') },
        { label: 'Entries', cell: (c) => c.entries, numeric: true },
        { label: 'Analysis', cell: analysisLabel },
      ]}
    />
  );
}

/** The overview: the analysed calls' ratings and sentiment. */
function Overview({ server }: { server: Server }) {
  const [load, setLoad] = useState<Load<{ points: RatingPoint[]; total: number; analysed: number; failed: number; pending: number }>>({ state: 'loading' });
  useEffect(() => {
    const request = new AbortController();
    setLoad({ state: 'loading' });
    (async () => {
      const list = await getJson<Page<ConversationSummary>>(server, '/api/conversations?limit=500', request.signal);
      const rated = list.items.filter((c) => c.analysis_status === 'done' && c.rating !== null).slice(0, CHARTED_CALLS);
      // The list carries each call's rating and sentiment.
      const points = rated.map((c): RatingPoint => ({ id: c.id, at: c.started_at, rating: c.rating!, sentiment: c.customer_sentiment }));
      const count = (status: string) => list.items.filter((c) => c.analysis_status === status).length;
      return { points, total: list.total, analysed: rated.length, failed: count('failed'), pending: count('pending') };
    })().then(
      (data) => !request.signal.aborted && setLoad({ state: 'done', data }),
      (e) => !request.signal.aborted && setLoad({ state: 'failed', message: describeError(e, server) }),
    );
    return () => request.abort();
  }, [server.base, server.apiKey]);
  if (load.state === 'failed') return <Failed message={load.message} />;
  if (load.state === 'loading') return <Loading />;
  const { points, total, analysed, failed, pending } = load.data;
  return (
    <section aria-label="Overview">
      <p class="summary">
        {total} conversation{total === 1 ? '' : 's'}; {analysed} rated call{analysed === 1 ? '' : 's'} charted{analysed === CHARTED_CALLS ? ' (the latest)' : ''}.
        {pending > 0 && ` ${pending} analys${pending === 1 ? "is" : "es"} pending.`}
        {failed > 0 && <> {failed} analys{failed === 1 ? 'is' : 'es'} failed (<a href="#/admin/conversations">see the conversations</a>).</>}
      </p>
      <h3>Rating over time</h3>
      <RatingChart points={points} />
      {points.length > 0 && <h3>Sentiment</h3>}
      <SentimentChart points={points} />
    </section>
  );
}

function StoredLine({ entry: e, base }: { entry: StoredEntry; base: string }) {
  if (e.kind === 'function_call') {
    return (
      <div class="entry tool" data-kind="function_call">
        <span class="who">tool</span>
        <code>{e.name}({e.text})</code>
      </div>
    );
  }
  if (e.kind === 'function_call_output') {
    const result = parseToolOutput(e.text);
    return (
      <div class="entry tool" data-kind="function_call_output">
        <span class="who">answer</span>
        {result ? <ToolCards result={result} base={base} /> : <code class="output">→ {e.text}</code>}
      </div>
    );
  }
  return (
    <div class={`entry ${e.role === 'user' ? 'user' : e.role === 'assistant' ? 'assistant' : 'notice'}`}>
      <span class="who">{e.role === 'user' ? 'customer' : e.role}</span>
      <span class="text">{e.text}</span>
    </div>
  );
}

/** One conversation: its analysis and transcript. */
function ConversationView({ server, id }: { server: Server; id: string }) {
  const load = useJson<ConversationDetail>(server, `/api/conversations/${encodeURIComponent(id)}`);
  return (
    <section aria-label="Conversation">
      <p><a href="#/admin/conversations">← All conversations</a></p>
      {load.state === 'failed' && <Failed message={load.message} />}
      {load.state === 'loading' && <Loading />}
      {load.state === 'done' && <ConversationBody detail={load.data} base={server.base} />}
    </section>
  );
}

function ConversationBody({ detail: c, base }: { detail: ConversationDetail; base: string }) {
  const a = c.analysis;
  return (
    <>
      <h3>Conversation <code>{c.id}</code></h3>
      <p class="summary">{c.agent} · started {when(c.started_at)} · {c.ended_at ? `ended ${when(c.ended_at)}` : 'in progress'}</p>
      <h4>Analysis</h4>
      {!a && <p class="empty">This call has not been analysed.</p>}
      {a?.status === 'pending' && <p class="empty">The analysis is pending (tried {a.attempts} time{a.attempts === 1 ? '' : 's'}).</p>}
      {a?.status === 'failed' && <p class="admin-error">The analysis failed after {a.attempts} attempt{a.attempts === 1 ? '' : 's'}: {a.last_error ?? 'no reason given'}.</p>}
      {a?.status === 'done' && a.analysis && (
        <dl class="analysis" data-testid="analysis">
          <dt>Rating</dt><dd>{a.analysis.rating} / 5</dd>
          <dt>Sentiment</dt><dd>{a.analysis.customer_sentiment}</dd>
          <dt>Satisfaction</dt><dd>{a.analysis.customer_satisfaction}</dd>
          <dt>Reason</dt><dd>{a.analysis.call_reason}</dd>
          <dt>Product</dt><dd>{a.analysis.product || '—'}</dd>
          <dt>Why this rating</dt><dd>{a.analysis.rating_justification}</dd>
        </dl>
      )}
      <h4>Transcript</h4>
      <div class="transcript stored" aria-label="Stored transcript">
        {c.entries.length === 0 && <p class="empty">Nothing was said.</p>}
        {c.entries.map((e) => <StoredLine key={e.seq} entry={e} base={base} />)}
      </div>
    </>
  );
}

const TABS = [
  { route: '', label: 'Overview' },
  { route: 'orders', label: 'Orders' },
  { route: 'shipments', label: 'Shipments' },
  { route: 'conversations', label: 'Conversations' },
];

/**
 * The admin view. `route`: what follows `#/admin/` (`''`, `orders`, `shipments`,
 * `conversations`, `conversations/ID`); `server`: where the admin routes are and the key.
 */
export function Admin({ server, route }: { server: Server; route: string }) {
  const [section, ...rest] = route.split('/');
  const id = section === 'conversations' && rest.length ? decodeURIComponent(rest.join('/')) : null;
  const current = TABS.some((t) => t.route === section) ? section : '';
  return (
    <main class="admin" aria-label="Admin">
      <header class="admin-head">
        <h2>Admin</h2>
        <nav class="tabs" aria-label="Admin sections">
          {TABS.map((t) => (
            <a key={t.route} href={`#/admin${t.route ? `/${t.route}` : ''}`} aria-current={current === t.route ? 'page' : undefined}>{t.label}</a>
          ))}
        </nav>
        <a class="back" href="#/">Back to the conversation</a>
      </header>
      {id !== null ? (
        <ConversationView server={server} id={id} />
      ) : current === 'orders' ? (
        <Orders server={server} />
      ) : current === 'shipments' ? (
        <Shipments server={server} />
      ) : current === 'conversations' ? (
        <Conversations server={server} />
      ) : (
        <Overview server={server} />
      )}
    </main>
  );
}
