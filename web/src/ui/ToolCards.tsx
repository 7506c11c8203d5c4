// A tool's output as cards in the transcript: the products a product tool found, an order placed,
// a shipment made, an order's status; a tool's error quietly, as a line. What is not recognised is
// shown as the JSON it is.
import { dollars, pictureSrc } from './format';

/** A product as the retail tools list it (`Product::tool_json`). */
export interface ProductOut {
  id: string;
  ProductName: string;
  Category: string;
  Price: number;
  ProductDescription: string;
  imageurl: string;
  InStock?: number;
}

/** An order as `order_products` answers it. */
export interface OrderOut {
  OrderId: string;
  ProductId: string;
  Name: string;
  Quantity: number;
  Price: number;
  Total: number;
  Status: string;
}

/** A shipment as `create_delivery_order` answers it. */
export interface ShipmentOut {
  TrackingId: string;
  OrderId: string;
  Destination: string;
  Carrier: string;
  EstimatedDelivery: string;
  Status: string;
}

/** What a tool's output is, as far as the page shows it. */
export type ToolResult =
  | { kind: 'products'; category: string; matched: number; shown: number; products: ProductOut[]; note?: string }
  | { kind: 'order'; order: OrderOut }
  | { kind: 'shipment'; shipment: ShipmentOut }
  | { kind: 'status'; order: OrderOut; shipment: ShipmentOut | null }
  | { kind: 'error'; message: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN);

function product(p: Obj): ProductOut | null {
  if (!str(p.id) || !str(p.ProductName)) return null;
  return {
    id: str(p.id),
    ProductName: str(p.ProductName),
    Category: str(p.Category),
    Price: num(p.Price),
    ProductDescription: str(p.ProductDescription),
    imageurl: str(p.imageurl),
    ...(typeof p.InStock === 'number' ? { InStock: p.InStock } : {}),
  };
}

function order(o: unknown): OrderOut | null {
  if (!isObj(o) || !str(o.OrderId) || o.Total === undefined) return null;
  return {
    OrderId: str(o.OrderId),
    ProductId: str(o.ProductId),
    Name: str(o.Name),
    Quantity: num(o.Quantity),
    Price: num(o.Price),
    Total: num(o.Total),
    Status: str(o.Status),
  };
}

function shipment(s: unknown): ShipmentOut | null {
  if (!isObj(s) || !str(s.TrackingId)) return null;
  return {
    TrackingId: str(s.TrackingId),
    OrderId: str(s.OrderId),
    Destination: str(s.Destination),
    Carrier: str(s.Carrier),
    EstimatedDelivery: str(s.EstimatedDelivery),
    Status: str(s.Status),
  };
}

/** Reads a tool's output (JSON text); `null` when it is none of the shapes the page draws. */
export function parseToolOutput(output: string): ToolResult | null {
  let v: unknown;
  try {
    v = JSON.parse(output);
  } catch {
    return null;
  }
  if (!isObj(v)) return null;
  if (typeof v.error === 'string') return { kind: 'error', message: v.error };
  if (Array.isArray(v.products)) {
    const products = v.products.filter(isObj).map(product).filter((p): p is ProductOut => p !== null);
    return {
      kind: 'products',
      category: str(v.category),
      matched: typeof v.matched === 'number' ? v.matched : products.length,
      shown: typeof v.shown === 'number' ? v.shown : products.length,
      products,
      ...(typeof v.note === 'string' ? { note: v.note } : {}),
    };
  }
  const o = order(v);
  if (o) return { kind: 'order', order: o };
  const s = shipment(v);
  if (s) return { kind: 'shipment', shipment: s };
  const status = order(v.order);
  if (status) return { kind: 'status', order: status, shipment: shipment(v.shipment) };
  return null;
}

function stock(n: number | undefined): string | null {
  if (n === undefined) return null;
  return n > 0 ? `${n} in stock` : 'out of stock';
}

/** One product's card: picture, name, price, category, description, stock. */
export function ProductCard({ product: p, base }: { product: ProductOut; base: string }) {
  const src = pictureSrc(p.imageurl, base);
  const left = stock(p.InStock);
  return (
    <li class="card product" data-product={p.id}>
      {src ? <img src={src} alt={p.ProductName} width={88} height={88} loading="lazy" /> : <span class="no-picture" aria-hidden="true" />}
      <div class="body">
        <strong class="name">{p.ProductName}</strong>
        <span class="price">{dollars(p.Price)}</span>
        <span class="meta">{p.Category} · {p.id}{left && <> · <span class={p.InStock ? 'stock' : 'stock out'}>{left}</span></>}</span>
        {p.ProductDescription && <span class="description">{p.ProductDescription}</span>}
      </div>
    </li>
  );
}

/** An order's card: its id, the item, quantity and total. */
export function OrderCard({ order: o, title = 'Order placed' }: { order: OrderOut; title?: string }) {
  return (
    <div class="card order" data-order={o.OrderId}>
      <strong class="name">{title}</strong>
      <dl>
        <dt>Order</dt><dd>{o.OrderId}</dd>
        <dt>Item</dt><dd>{o.Name}{o.ProductId && ` (${o.ProductId})`}</dd>
        <dt>Quantity</dt><dd>{o.Quantity} × {dollars(o.Price)}</dd>
        <dt>Total</dt><dd class="total">{dollars(o.Total)}</dd>
        {o.Status && <><dt>Status</dt><dd>{o.Status}</dd></>}
      </dl>
    </div>
  );
}

/** A shipment's card: the tracking id, carrier, where to and when it arrives. */
export function ShipmentCard({ shipment: s }: { shipment: ShipmentOut }) {
  return (
    <div class="card shipment" data-tracking={s.TrackingId}>
      <strong class="name">Delivery</strong>
      <dl>
        <dt>Tracking</dt><dd>{s.TrackingId}</dd>
        <dt>Order</dt><dd>{s.OrderId}</dd>
        {s.Carrier && <><dt>Carrier</dt><dd>{s.Carrier}</dd></>}
        <dt>Arrives</dt><dd>{s.EstimatedDelivery || 'not known yet'}</dd>
        {s.Destination && <><dt>To</dt><dd>{s.Destination}</dd></>}
        {s.Status && <><dt>Status</dt><dd>{s.Status}</dd></>}
      </dl>
    </div>
  );
}

/**
 * A tool's output as the transcript shows it: cards for what the retail tools answer, a quiet line
 * for an error, and `null` for anything else (the caller shows the raw output).
 */
export function ToolCards({ result, base }: { result: ToolResult; base: string }) {
  switch (result.kind) {
    case 'products': {
      const label = `${result.category || 'Products'}: ${result.shown} of ${result.matched}`;
      if (!result.products.length) {
        return <p class="tool-note">{result.note ?? `No ${result.category || ''} products found.`}</p>;
      }
      return (
        <div class="tool-result">
          <ul class="cards" aria-label={label}>
            {result.products.map((p) => <ProductCard key={p.id} product={p} base={base} />)}
          </ul>
          {result.note && <p class="tool-note">{result.note}</p>}
        </div>
      );
    }
    case 'order':
      return <div class="tool-result"><OrderCard order={result.order} /></div>;
    case 'shipment':
      return <div class="tool-result"><ShipmentCard shipment={result.shipment} /></div>;
    case 'status':
      return (
        <div class="tool-result cards-row">
          <OrderCard order={result.order} title="Order status" />
          {result.shipment && <ShipmentCard shipment={result.shipment} />}
        </div>
      );
    case 'error':
      return <p class="tool-note tool-error">The tool could not do it: {result.message}</p>;
  }
}
