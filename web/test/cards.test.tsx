import { afterEach, describe, expect, it } from 'vitest';
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { Transcript } from '../src/ui/Transcript';
import { parseToolOutput } from '../src/ui/ToolCards';
import { EMPTY, reduce, type Entry } from '../src/conversation';

// Outputs as the retail tools write them (crates/retail/src/tools.rs, Product/Order/Shipment::tool_json).
const PRODUCTS = JSON.stringify({
  category: 'Winter wear',
  matched: 12,
  shown: 2,
  products: [
    { id: 'P021', ProductName: 'Red Knit Beanie', Category: 'Winter wear', Price: 19.99, ProductDescription: 'A warm beanie.', imageurl: '/images/products/P021.svg', InStock: 60 },
    { id: 'P022', ProductName: 'Wool Scarf', Category: 'Winter wear', Price: 34.5, ProductDescription: 'Soft merino.', imageurl: '/images/products/P022.svg', InStock: 0 },
  ],
  note: 'Showing the 2 cheapest of 12 products; a lower price narrows the list.',
});
const ORDER = JSON.stringify({ OrderId: 'ORD_AB12CD34', ProductId: 'P021', Name: 'Red Knit Beanie', Quantity: 2, Price: 19.99, Total: 39.98, Status: 'placed' });
const SHIPMENT = JSON.stringify({ TrackingId: 'TRK_9Z8Y7X', OrderId: 'ORD_AB12CD34', Destination: '1 Main St, Springfield', Carrier: 'Contoso Express', EstimatedDelivery: '2026-12-09', Status: 'created' });

let root: HTMLElement | null = null;
afterEach(() => {
  if (!root) return;
  render(null, root);
  root.remove();
  root = null;
});

function tool(name: string, output: string, id = `item-${name}`): Entry {
  return { id, kind: 'tool', text: '', status: 'done', words: [], tool: { name, callId: `call-${id}`, arguments: '{}', output } };
}

function show(entries: Entry[]) {
  const el = document.createElement('div');
  document.body.append(el);
  root = el;
  act(() => render(<Transcript entries={entries} heard={() => null} playing={false} base="http://shop.test:8080" />, el));
  return el;
}

describe('tool outputs', () => {
  it('are recognised by their shape', () => {
    expect(parseToolOutput(PRODUCTS)).toMatchObject({ kind: 'products', category: 'Winter wear', matched: 12, shown: 2 });
    expect(parseToolOutput(ORDER)).toMatchObject({ kind: 'order', order: { OrderId: 'ORD_AB12CD34', Quantity: 2, Total: 39.98 } });
    expect(parseToolOutput(SHIPMENT)).toMatchObject({ kind: 'shipment', shipment: { TrackingId: 'TRK_9Z8Y7X' } });
    expect(parseToolOutput(JSON.stringify({ order: JSON.parse(ORDER), shipment: null }))).toMatchObject({ kind: 'status', shipment: null });
    expect(parseToolOutput('{"error": "P999 does not exist", "categories": []}')).toEqual({ kind: 'error', message: 'P999 does not exist' });
    expect(parseToolOutput('{"local_time": "Monday"}')).toBeNull();
    expect(parseToolOutput('not json')).toBeNull();
  });

  it('show products as cards with pictures from the server, prices, stock and the note', () => {
    const root = show([tool('get_products_by_category', PRODUCTS)]);
    const cards = [...root.querySelectorAll('.card.product')];
    expect(cards.map((c) => c.getAttribute('data-product'))).toEqual(['P021', 'P022']);
    const img = cards[0].querySelector('img')!;
    expect(img.getAttribute('src')).toBe('http://shop.test:8080/images/products/P021.svg');
    expect(img.getAttribute('alt')).toBe('Red Knit Beanie');
    expect(cards[0].textContent).toContain('$19.99');
    expect(cards[0].textContent).toContain('Winter wear');
    expect(cards[0].textContent).toContain('A warm beanie.');
    expect(cards[0].textContent).toContain('60 in stock');
    expect(cards[1].textContent).toContain('out of stock');
    expect(root.querySelector('ul.cards')!.getAttribute('aria-label')).toBe('Winter wear: 2 of 12');
    expect(root.textContent).toContain('Showing the 2 cheapest of 12 products');
    // The raw output is there, folded away (a native <details>: keyboard reachable).
    expect(root.querySelector('details.raw code')!.textContent).toBe(PRODUCTS);
  });

  it('show an order, a shipment and an order status as cards', () => {
    const root = show([
      tool('order_products', ORDER),
      tool('create_delivery_order', SHIPMENT),
      tool('get_order_status', JSON.stringify({ order: JSON.parse(ORDER), shipment: JSON.parse(SHIPMENT) })),
    ]);
    const order = root.querySelector('[data-tool="order_products"] .card.order')!;
    expect(order.textContent).toContain('ORD_AB12CD34');
    expect(order.textContent).toContain('Red Knit Beanie');
    expect(order.textContent).toContain('2 × $19.99');
    expect(order.textContent).toContain('$39.98');
    const shipment = root.querySelector('[data-tool="create_delivery_order"] .card.shipment')!;
    expect(shipment.textContent).toContain('TRK_9Z8Y7X');
    expect(shipment.textContent).toContain('2026-12-09');
    const status = root.querySelector('[data-tool="get_order_status"]')!;
    expect(status.querySelectorAll('.card')).toHaveLength(2);
  });

  it('show a tool error quietly, and anything else as it is', () => {
    const root = show([tool('order_products', '{"error": "Only 1 of Red Knit Beanie (P021) are in stock; 2 were asked for.", "in_stock": 1}'), tool('get_local_time', '{"local_time":"Monday"}')]);
    const error = root.querySelector('[data-tool="order_products"] .tool-error')!;
    expect(error.textContent).toContain('Only 1 of Red Knit Beanie');
    expect(root.querySelector('[data-tool="order_products"] .card')).toBeNull();
    expect(root.querySelector('[data-tool="get_local_time"] code.output')!.textContent).toBe('→ {"local_time":"Monday"}');
  });

  it('of a tool the server runs arrive as conversation items and land on the call', () => {
    let s = reduce(EMPTY, { type: 'conversation.item.created', item: { id: 'fc1', type: 'function_call', name: 'order_products', call_id: 'c1', arguments: '{"product_id":"P021","quantity":2}' } }, 1);
    s = reduce(s, { type: 'conversation.item.created', item: { id: 'fo1', type: 'function_call_output', call_id: 'c1', output: ORDER } }, 2);
    expect(s.entries).toHaveLength(1);
    expect(s.entries[0]).toMatchObject({ kind: 'tool', status: 'done', tool: { name: 'order_products', callId: 'c1', output: ORDER } });
    const root = show(s.entries);
    expect(root.querySelector('.card.order')!.textContent).toContain('ORD_AB12CD34');
  });
});
