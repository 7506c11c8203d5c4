// The server's admin routes (`/api/orders`, `/api/shipments`, `/api/conversations`): their shapes,
// a fetch that carries the API key, and what a failure means in words.
import { keyHeaders } from '../agent';

/** A page of a list: `{items, total, limit, offset}`. */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** An order (money in cents, times in unix ms). */
export interface Order {
  id: string;
  product_id: string;
  product_name: string;
  quantity: number;
  unit_price_cents: number;
  total_cents: number;
  status: string;
  created_at: number;
  conversation_id: string | null;
}

/** A shipment. */
export interface Shipment {
  tracking_id: string;
  order_id: string;
  destination: string;
  carrier: string;
  status: string;
  estimated_delivery: string;
  created_at: number;
}

/** Where a call's analysis stands. */
export type AnalysisStatus = 'pending' | 'done' | 'failed';

/** A conversation in the list. */
export interface ConversationSummary {
  id: string;
  session_id: string;
  agent: string;
  started_at: number;
  ended_at: number | null;
  entries: number;
  analysis_status: AnalysisStatus | null;
  rating: number | null;
  customer_sentiment: string | null;
}

/** One line of a stored transcript (`text`: a call's arguments, a tool's output). */
export interface StoredEntry {
  seq: number;
  at_ms: number;
  role: 'user' | 'assistant' | 'system' | 'tool';
  kind: 'message' | 'function_call' | 'function_call_output';
  name: string | null;
  call_id: string | null;
  text: string;
}

/** What an analysis found. */
export interface CallAnalysis {
  call_reason: string;
  customer_satisfaction: string;
  customer_sentiment: string;
  rating: number;
  rating_justification: string;
  product: string;
}

/** A call's analysis record. */
export interface AnalysisRecord {
  status: AnalysisStatus;
  attempts: number;
  last_error: string | null;
  analysis: CallAnalysis | null;
  created_at: number;
  updated_at: number;
}

/** A conversation with its transcript and analysis. */
export interface ConversationDetail {
  id: string;
  session_id: string;
  agent: string;
  started_at: number;
  ended_at: number | null;
  entries: StoredEntry[];
  analysis: AnalysisRecord | null;
}

/** A refused or failed request: the HTTP status (0: no answer) and the server's error, if any. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where the admin routes are and the key that opens them. */
export interface Server {
  /** The server's http(s) origin. */
  base: string;
  apiKey: string;
}

/** GETs `path` (with its query) from the server as JSON; failures are `ApiError`s. */
export async function getJson<T>(server: Server, path: string, signal?: AbortSignal): Promise<T> {
  let r: Response;
  try {
    r = await fetch(`${server.base}${path}`, { headers: keyHeaders(server.apiKey), signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(0, 'unreachable', e instanceof Error ? e.message : String(e));
  }
  if (!r.ok) {
    const body = (await r.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    throw new ApiError(r.status, body?.error?.code ?? '', body?.error?.message ?? `HTTP ${r.status}`);
  }
  return (await r.json()) as T;
}

/** What a failed admin request means to a person, and what to do. */
export function describeError(e: unknown, server: Server): string {
  if (!(e instanceof ApiError)) return `Something went wrong: ${e instanceof Error ? e.message : String(e)}`;
  if (e.status === 0) return `The server at ${server.base} cannot be reached. Is brazen running there, and is the endpoint in the settings right?`;
  if (e.status === 401) {
    return server.apiKey
      ? 'The server refused the API key. Check the key in the settings.'
      : 'This server needs an API key to show its data. Enter it in the settings.';
  }
  if (e.status === 404 && e.code === 'no_agent') return 'This server runs no agent, so it keeps no orders, shipments or conversations.';
  if (e.status === 404) return `Not found: ${e.message}`;
  return `The server could not answer (${e.status}): ${e.message}`;
}
