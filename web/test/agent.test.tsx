import { afterEach, describe, expect, it, vi } from 'vitest';
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { fetchAgent, type Agent } from '../src/agent';
import { Call, type CallHooks } from '../src/call';
import { DEFAULTS, sessionConfig, type Settings } from '../src/settings';
import { SettingsPanel } from '../src/ui/SettingsPanel';
import { App, adminRoute } from '../src/app';

const RETAIL: Agent = {
  name: 'retail',
  description: "Contoso Fashion's shopping assistant: catalogue, orders, deliveries, store policies.",
  tools: ['get_products_by_category', 'order_products'],
  knowledge: true,
  analyse_calls: true,
};

afterEach(() => {
  vi.unstubAllGlobals();
  document.body.innerHTML = '';
});

/** The `session.update` a Call sends when the session is created, to a socket that records it. */
function firstUpdate(settings: Settings, agent: boolean): Record<string, any> {
  const hooks: CallHooks = { onView: () => {}, onEvent: () => {}, onLog: () => {}, onLevel: () => {} };
  const call = new Call(settings, 'http://shop.test', [], hooks, document.createElement('video'), document.createElement('canvas'), agent);
  const sent: any[] = [];
  // The socket itself is not under test: a stand-in that keeps what is sent.
  (call as any).client = { send: (ev: unknown) => sent.push(ev), close: () => {} };
  (call as any).handle({ type: 'session.created', session: {} });
  expect(sent).toHaveLength(1);
  expect(sent[0].type).toBe('session.update');
  return sent[0].session;
}

describe('with a server agent', () => {
  it("the app sends none of its default instructions and tools: the agent's stay", () => {
    const session = firstUpdate(DEFAULTS, true);
    expect(session).not.toHaveProperty('instructions');
    expect(session).not.toHaveProperty('tools');
    expect(session).not.toHaveProperty('tool_choice');
    expect(session).not.toHaveProperty('turn_detection');
    expect(session).not.toHaveProperty('input_audio_transcription');
    expect(session).not.toHaveProperty('modalities');
    // What the page's own transport needs still goes.
    expect(session).toMatchObject({ input_audio_format: 'pcm16', output_audio_format: 'pcm16', output_audio_timestamp_types: ['word'], voice: { name: DEFAULTS.voice } });
    expect(session.avatar).toMatchObject({ character: 'ava' });
  });

  it('without an agent the default session is sent as before', () => {
    const session = firstUpdate(DEFAULTS, false);
    expect(session.instructions).toBe(DEFAULTS.instructions);
    expect(session.tools.map((t: { name: string }) => t.name)).toEqual(['get_local_time']);
    expect(session.turn_detection).toMatchObject({ type: 'semantic_vad', eagerness: 'auto' });
  });

  it('what the user changed is sent', () => {
    const changed: Settings = { ...DEFAULTS, instructions: 'Answer like a pirate.', language: 'de', micMode: 'push-to-talk', browserToolsWithAgent: true };
    const session = sessionConfig(changed, 'webrtc', true);
    expect(session.instructions).toBe('Answer like a pirate.');
    expect(session.input_audio_transcription).toEqual({ model: 'gpt-4o-mini-transcribe', language: 'de' });
    expect(session.turn_detection).toBeNull();
    expect((session.tools as { name: string }[]).map((t) => t.name)).toEqual(['get_local_time']);
    // A changed turn setting sends the turn detection, with the rest of the user's turn settings.
    const turns = sessionConfig({ ...DEFAULTS, turn: { ...DEFAULTS.turn, type: 'server_vad', silenceMs: 900 } }, 'webrtc', true);
    expect(turns.turn_detection).toMatchObject({ type: 'server_vad', silence_duration_ms: 900, threshold: 0.5 });
    expect(turns).not.toHaveProperty('instructions');
  });

  it("the settings show the agent's instructions as empty, and empty keeps them", () => {
    const changes: Settings[] = [];
    const el = document.createElement('div');
    document.body.append(el);
    act(() => render(<SettingsPanel settings={DEFAULTS} catalog={null} agent={RETAIL} onChange={(s) => changes.push(s)} onClose={() => {}} />, el));
    const area = el.querySelector('textarea')!;
    expect(area.value).toBe('');
    expect(area.placeholder).toBe("the retail agent's own");
    expect(el.textContent).toContain('This server runs the retail agent');
    act(() => {
      area.value = 'Be brief.';
      area.dispatchEvent(new Event('change', { bubbles: true }));
    });
    expect(changes.at(-1)!.instructions).toBe('Be brief.');
    act(() => {
      area.value = '  ';
      area.dispatchEvent(new Event('change', { bubbles: true }));
    });
    expect(changes.at(-1)!.instructions).toBe(DEFAULTS.instructions);
    const tools = [...el.querySelectorAll('label')].find((l) => l.textContent!.includes("browser's tools"))!.querySelector('input')!;
    expect(tools.checked).toBe(false);
    render(null, el);
  });
});

describe('/api/agent', () => {
  it('gives the agent, null for a server without one, and fails when the server does', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify(RETAIL), { status: 200 })));
    expect(await fetchAgent('http://shop.test', '')).toEqual(RETAIL);
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"error":{"code":"no_agent"}}', { status: 404 })));
    expect(await fetchAgent('http://shop.test', '')).toBeNull();
    vi.stubGlobal('fetch', vi.fn(async () => new Response('', { status: 500 })));
    await expect(fetchAgent('http://shop.test', '')).rejects.toThrow('HTTP 500');
  });

  it("puts the agent's name and description in the page's bar, with a way to the admin view", async () => {
    localStorage.clear();
    vi.stubGlobal('fetch', vi.fn(async (url: string) => {
      if (url.endsWith('/api/agent')) return new Response(JSON.stringify(RETAIL), { status: 200 });
      return new Response(JSON.stringify({ voices: [], characters: [], portraits: [], ice_servers: [], auth: false }), { status: 200 });
    }));
    const el = document.createElement('div');
    document.body.append(el);
    act(() => render(<App />, el));
    await act(async () => {
      for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
    });
    expect(el.querySelector('[data-testid=agent]')!.textContent).toBe(`retail — ${RETAIL.description}`);
    expect(el.querySelector('a[href="#/admin"]')).not.toBeNull();
    render(null, el);
  });

  it('routes #/admin… to the admin view', () => {
    expect(adminRoute('#/admin')).toBe('');
    expect(adminRoute('#/admin/')).toBe('');
    expect(adminRoute('#/admin/conversations/abc')).toBe('conversations/abc');
    expect(adminRoute('')).toBeNull();
    expect(adminRoute('#/administrator')).toBeNull();
  });
});
