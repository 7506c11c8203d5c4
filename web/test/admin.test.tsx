import { afterEach, describe, expect, it, vi } from 'vitest';
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { Admin, PAGE_SIZE } from '../src/admin/Admin';
import { placePoints, CHART } from '../src/admin/Charts';
import type { Server } from '../src/admin/api';

const SERVER: Server = { base: 'http://shop.test', apiKey: '' };

/** A server's admin routes in memory: `calls` keeps every URL and its api-key header. */
function fakeServer(routes: Record<string, (url: URL) => { status: number; body: unknown }>) {
  const calls: { url: URL; key: string | null }[] = [];
  const fetch = vi.fn(async (input: string, init?: RequestInit) => {
    const url = new URL(input);
    calls.push({ url, key: new Headers(init?.headers).get('api-key') });
    const route = routes[url.pathname];
    const { status, body } = route ? route(url) : { status: 404, body: { error: { code: 'not_found', message: 'no such route' } } };
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  });
  vi.stubGlobal('fetch', fetch);
  return calls;
}

function page<T>(all: T[], url: URL) {
  const limit = Number(url.searchParams.get('limit') ?? 50);
  const offset = Number(url.searchParams.get('offset') ?? 0);
  return { status: 200, body: { items: all.slice(offset, offset + limit), total: all.length, limit, offset } };
}

const ORDERS = Array.from({ length: 45 }, (_, i) => ({
  id: `ORD_${String(i).padStart(8, '0')}`,
  product_id: 'P021',
  product_name: 'Red Knit Beanie',
  quantity: 1 + (i % 3),
  unit_price_cents: 1999,
  total_cents: 1999 * (1 + (i % 3)),
  status: 'placed',
  created_at: 1_764_900_000_000 - i * 60_000,
  conversation_id: i === 0 ? 'conv-1' : null,
}));

const DAY = 86_400_000;
const T0 = 1_764_000_000_000;
const CONVERSATIONS = [
  { id: 'conv-3', session_id: 's3', agent: 'retail', started_at: T0 + 2 * DAY, ended_at: T0 + 2 * DAY + 90_000, entries: 6, analysis_status: 'done', rating: 2, customer_sentiment: 'negative' },
  { id: 'conv-2', session_id: 's2', agent: 'retail', started_at: T0 + DAY, ended_at: T0 + DAY + 60_000, entries: 4, analysis_status: 'failed', rating: null, customer_sentiment: null },
  { id: 'conv-1', session_id: 's1', agent: 'retail', started_at: T0, ended_at: T0 + 30_000, entries: 8, analysis_status: 'done', rating: 5, customer_sentiment: 'positive' },
  { id: 'conv-0', session_id: 's0', agent: 'retail', started_at: T0 - DAY, ended_at: null, entries: 1, analysis_status: 'done', rating: 4, customer_sentiment: 'positive' },
];

function detail(id: string) {
  const c = CONVERSATIONS.find((x) => x.id === id);
  if (!c) return { status: 404, body: { error: { code: 'not_found', message: `There is no conversation '${id}'.` } } };
  const analysis = c.analysis_status === 'failed'
    ? { status: 'failed', attempts: 3, last_error: 'the model timed out', analysis: null, created_at: c.started_at, updated_at: c.started_at }
    : { status: 'done', attempts: 1, last_error: null, created_at: c.started_at, updated_at: c.started_at, analysis: {
        call_reason: 'Buy a beanie', customer_satisfaction: 'satisfied', customer_sentiment: c.customer_sentiment, rating: c.rating,
        rating_justification: 'The order was placed quickly.', product: 'Red Knit Beanie' } };
  return {
    status: 200,
    body: {
      ...c,
      entries: [
        { seq: 1, at_ms: 0, role: 'user', kind: 'message', name: null, call_id: null, text: 'I want two red beanies' },
        { seq: 2, at_ms: 900, role: 'assistant', kind: 'function_call', name: 'order_products', call_id: 'c1', text: '{"product_id":"P021","quantity":2}' },
        { seq: 3, at_ms: 950, role: 'tool', kind: 'function_call_output', name: 'order_products', call_id: 'c1',
          text: JSON.stringify({ OrderId: 'ORD_AB12CD34', ProductId: 'P021', Name: 'Red Knit Beanie', Quantity: 2, Price: 19.99, Total: 39.98, Status: 'placed' }) },
        { seq: 4, at_ms: 1500, role: 'assistant', kind: 'message', name: null, call_id: null, text: 'Your order ORD_AB12CD34 is placed.' },
      ],
      analysis,
    },
  };
}

const ROUTES = {
  '/api/orders': (url: URL) => page(ORDERS, url),
  '/api/shipments': (url: URL) => page([], url),
  '/api/conversations': (url: URL) => page(CONVERSATIONS, url),
};
const withDetails = (url: URL) => detail(decodeURIComponent(url.pathname.slice('/api/conversations/'.length)));

let root: HTMLElement | null = null;
afterEach(() => {
  if (root) {
    render(null, root);
    root.remove();
    root = null;
  }
  vi.unstubAllGlobals();
});

/** Lets the fetches and the renders they cause finish. */
async function settle() {
  await act(async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
  });
}

async function show(route: string, server = SERVER) {
  const el = document.createElement('div');
  document.body.append(el);
  root = el;
  act(() => render(<Admin server={server} route={route} />, el));
  await settle();
  return el;
}

function rows(el: HTMLElement): string[][] {
  return [...el.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent!.trim()));
}

function button(el: HTMLElement, name: string): HTMLButtonElement {
  const b = [...el.querySelectorAll('button')].find((x) => x.textContent === name);
  if (!b) throw new Error(`no button ${name}`);
  return b as HTMLButtonElement;
}

describe('the admin view', () => {
  it('pages through the orders', async () => {
    const calls = fakeServer(ROUTES);
    const el = await show('orders');
    expect(calls[0].url.pathname).toBe('/api/orders');
    expect(calls[0].url.searchParams.get('limit')).toBe(String(PAGE_SIZE));
    expect(calls[0].url.searchParams.get('offset')).toBe('0');
    expect(rows(el)).toHaveLength(PAGE_SIZE);
    expect(rows(el)[0]).toEqual(['ORD_00000000', expect.any(String), 'Red Knit Beanie (P021)', '1', '$19.99', 'placed', 'conv-1']);
    expect(el.querySelector('.pager [role=status]')!.textContent).toBe('1–20 of 45');
    expect(button(el, 'Previous').disabled).toBe(true);
    // The order's conversation is a link to it.
    expect(el.querySelector('tbody a')!.getAttribute('href')).toBe('#/admin/conversations/conv-1');
    act(() => button(el, 'Next').click());
    await settle();
    act(() => button(el, 'Next').click());
    await settle();
    expect(calls.at(-1)!.url.searchParams.get('offset')).toBe('40');
    expect(rows(el)).toHaveLength(5);
    expect(el.querySelector('.pager [role=status]')!.textContent).toBe('41–45 of 45');
    expect(button(el, 'Next').disabled).toBe(true);
    act(() => button(el, 'Previous').click());
    await settle();
    expect(el.querySelector('.pager [role=status]')!.textContent).toBe('21–40 of 45');
  });

  it('says when a list is empty, and lists the conversations with their analyses', async () => {
    fakeServer(ROUTES);
    let el = await show('shipments');
    expect(el.textContent).toContain('No shipments yet.');
    expect(el.querySelector('.pager [role=status]')!.textContent).toBe('0 of 0');
    render(null, el);
    el = await show('conversations');
    expect(rows(el).map((r) => [r[0], r[4]])).toEqual([['conv-3', 'rated 2/5, negative'], ['conv-2', 'failed'], ['conv-1', 'rated 5/5, positive'], ['conv-0', 'rated 4/5, positive']]);
    expect(rows(el)[3][2]).toBe('in progress');
  });

  it('opens a conversation with its tool calls as cards and its analysis', async () => {
    fakeServer({ ...ROUTES, '/api/conversations/conv-1': withDetails });
    const el = await show('conversations/conv-1');
    const analysis = el.querySelector('[data-testid=analysis]')!;
    expect(analysis.textContent).toContain('5 / 5');
    expect(analysis.textContent).toContain('positive');
    expect(analysis.textContent).toContain('Buy a beanie');
    expect(el.querySelector('[data-kind=function_call] code')!.textContent).toBe('order_products({"product_id":"P021","quantity":2})');
    expect(el.querySelector('[data-kind=function_call_output] .card.order')!.textContent).toContain('$39.98');
    expect(el.textContent).toContain('I want two red beanies');
  });

  it('shows a failed analysis and an unknown conversation in words', async () => {
    fakeServer({ ...ROUTES, '/api/conversations/conv-2': withDetails, '/api/conversations/nope': withDetails });
    let el = await show('conversations/conv-2');
    expect(el.querySelector('.admin-error')!.textContent).toContain('failed after 3 attempts: the model timed out');
    render(null, el);
    el = await show('conversations/nope');
    expect(el.querySelector('[role=alert]')!.textContent).toBe("Not found: There is no conversation 'nope'.");
  });

  it('charts each rated call over time, coloured by sentiment, and counts the sentiments', async () => {
    const routes: Record<string, (url: URL) => { status: number; body: unknown }> = { ...ROUTES };
    for (const c of CONVERSATIONS) routes[`/api/conversations/${c.id}`] = withDetails;
    const calls = fakeServer(routes);
    const el = await show('');
    // One request: the list carries each call's rating and sentiment, no call's detail is asked for.
    expect(calls.filter((c) => c.url.pathname.startsWith('/api/conversations/')).map((c) => c.url.pathname)).toEqual([]);
    const points = [...el.querySelectorAll('[data-testid=rating-chart] circle')];
    // Oldest first, left to right; a higher rating is higher up.
    expect(points.map((p) => p.getAttribute('data-id'))).toEqual(['conv-0', 'conv-1', 'conv-3']);
    expect(points.map((p) => p.getAttribute('data-rating'))).toEqual(['4', '5', '2']);
    const x = points.map((p) => Number(p.getAttribute('cx')));
    const y = points.map((p) => Number(p.getAttribute('cy')));
    expect(x[0]).toBe(CHART.left);
    expect(x[2]).toBe(CHART.width - CHART.right);
    expect(x[1]).toBeCloseTo(CHART.left + (CHART.width - CHART.left - CHART.right) / 3, 0);
    expect(y[1]).toBe(CHART.top);
    expect(y[1]).toBeLessThan(y[0]);
    expect(y[0]).toBeLessThan(y[2]);
    expect(points.map((p) => p.getAttribute('class'))).toEqual(['point positive', 'point positive', 'point negative']);
    expect(el.querySelector('[data-testid=rating-chart]')!.getAttribute('aria-label')).toContain('Rating of 3 analysed calls');
    const bars = [...el.querySelectorAll('[data-testid=sentiment-chart] [data-sentiment]')];
    expect(bars.map((b) => [b.getAttribute('data-sentiment'), b.getAttribute('data-count')])).toEqual([['positive', '2'], ['neutral', '0'], ['negative', '1']]);
    expect(el.querySelector('.summary')!.textContent).toBe('4 conversations; 3 rated calls charted. 1 analysis failed (see the conversations).');
  });

  it('places one point in the middle and clamps ratings to 1–5', () => {
    const [p] = placePoints([{ id: 'a', at: 5, rating: 9, sentiment: null }]);
    expect(p.x).toBe(CHART.left + (CHART.width - CHART.left - CHART.right) / 2);
    expect(p.y).toBe(CHART.top);
  });

  it('says so when nothing is analysed yet', async () => {
    fakeServer({ '/api/conversations': (url) => page([], url) });
    const el = await show('');
    expect(el.textContent).toContain('No call has been analysed yet');
  });

  it('explains a missing or refused key, a server without an agent, and a server that is down', async () => {
    const unauthorized = () => ({ status: 401, body: { error: { code: 'unauthorized', message: 'Missing or invalid API key.' } } });
    let calls = fakeServer({ '/api/orders': unauthorized });
    let el = await show('orders');
    expect(el.querySelector('[role=alert]')!.textContent).toBe('This server needs an API key to show its data. Enter it in the settings.');
    render(null, el);
    calls = fakeServer({ '/api/orders': unauthorized });
    el = await show('orders', { ...SERVER, apiKey: 'wrong' });
    expect(calls[0].key).toBe('wrong');
    expect(el.querySelector('[role=alert]')!.textContent).toBe('The server refused the API key. Check the key in the settings.');
    render(null, el);
    fakeServer({ '/api/conversations': () => ({ status: 404, body: { error: { code: 'no_agent', message: 'This server runs no agent.' } } }) });
    el = await show('');
    expect(el.querySelector('[role=alert]')!.textContent).toBe('This server runs no agent, so it keeps no orders, shipments or conversations.');
    render(null, el);
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch'); }));
    el = await show('shipments');
    expect(el.querySelector('[role=alert]')!.textContent).toContain('The server at http://shop.test cannot be reached');
    // The tabs stay: the page is never blank.
    expect([...el.querySelectorAll('.tabs a')].map((a) => a.textContent)).toEqual(['Overview', 'Orders', 'Shipments', 'Conversations']);
    expect(el.querySelector('.tabs a[aria-current=page]')!.textContent).toBe('Shipments');
  });
});
