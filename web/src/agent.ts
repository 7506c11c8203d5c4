// The agent the server runs, from `GET /api/agent`: its name and description for the page, and
// whether there is one at all (then the app leaves the agent's session as it is: see
// `sessionConfig`). The same key as the WebSocket's opens the server's `/api/*` routes.

/** What `/api/agent` says about the server's agent. */
export interface Agent {
  name: string;
  description: string;
  /** The tools it runs inside the server. */
  tools: string[];
  /** Whether it answers from documents. */
  knowledge: boolean;
  /** Whether every call is analysed when it ends. */
  analyse_calls: boolean;
}

/** The headers that carry the API key to the server's HTTP routes (none without a key). */
export function keyHeaders(apiKey: string): Record<string, string> {
  return apiKey ? { 'api-key': apiKey } : {};
}

/**
 * The server's agent: the agent, `null` when the server runs none (404), or a rejected promise
 * when the server could not be asked (down, refused): the caller then treats it as no agent.
 */
export async function fetchAgent(base: string, apiKey: string, signal?: AbortSignal): Promise<Agent | null> {
  const r = await fetch(`${base}/api/agent`, { headers: keyHeaders(apiKey), signal });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  const a = (await r.json()) as Partial<Agent>;
  return {
    name: typeof a.name === 'string' ? a.name : 'agent',
    description: typeof a.description === 'string' ? a.description : '',
    tools: Array.isArray(a.tools) ? a.tools.filter((t): t is string => typeof t === 'string') : [],
    knowledge: a.knowledge === true,
    analyse_calls: a.analyse_calls === true,
  };
}
