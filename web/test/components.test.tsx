import { afterEach, describe, expect, it } from 'vitest';
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { SettingsPanel, type Catalog } from '../src/ui/SettingsPanel';
import { Transcript } from '../src/ui/Transcript';
import { DevPanel } from '../src/ui/DevPanel';
import type { LogLine } from '../src/client';
import { DEFAULTS, type Settings } from '../src/settings';
import type { Entry } from '../src/conversation';

const CATALOG: Catalog = {
  voices: ['af_heart', 'am_adam'],
  characters: [
    { name: 'ava', description: 'a woman', styles: ['business', 'casual'] },
    { name: 'noah', description: 'a man', styles: ['formal'] },
  ],
  portraits: ['anika'],
  ice_servers: [],
  auth: true,
};

let root: HTMLElement;
afterEach(() => {
  render(null, root);
  root.remove();
});

function mount(node: preact.ComponentChild) {
  root = document.createElement('div');
  document.body.append(root);
  act(() => render(node, root));
}

function settingsPanel(start: Settings) {
  const changes: Settings[] = [];
  let current = start;
  const draw = () => render(<SettingsPanel settings={current} catalog={CATALOG} onChange={(s) => { changes.push(s); current = s; draw(); }} onClose={() => {}} />, root);
  root = document.createElement('div');
  document.body.append(root);
  act(draw);
  return { changes, now: () => current };
}

function field(label: string): HTMLInputElement | HTMLSelectElement {
  const l = [...root.querySelectorAll('label')].find((x) => x.textContent!.trim().startsWith(label));
  if (!l) throw new Error(`no field labelled ${label}`);
  return l.querySelector('input, select, textarea') as HTMLInputElement;
}

function set(el: HTMLInputElement | HTMLSelectElement, value: string, event = 'change') {
  act(() => {
    el.value = value;
    el.dispatchEvent(new Event(event, { bubbles: true }));
  });
}

describe('the settings panel', () => {
  it('offers the server catalog and hands every change up', () => {
    const { changes, now } = settingsPanel(DEFAULTS);
    expect([...root.querySelectorAll('#voices option')].map((o) => (o as HTMLOptionElement).value)).toEqual(['af_heart', 'am_adam']);
    expect((field('API key') as HTMLInputElement).placeholder).toBe('required by this server');
    set(field('Voice'), 'am_adam');
    set(field('Character'), 'noah');
    expect(now().voice).toBe('am_adam');
    // Picking a character picks its first style.
    expect(now().avatar).toMatchObject({ character: 'noah', style: 'formal' });
    expect([...(field('Style') as HTMLSelectElement).options].map((o) => o.value)).toEqual(['formal']);
    set(field('Rate'), '1.25', 'input');
    expect(now().rate).toBe(1.25);
    expect(changes).toHaveLength(3);
  });

  it('shows live scene sliders for a photo avatar and a transparent background as alpha', () => {
    const { now } = settingsPanel({ ...DEFAULTS, avatar: { ...DEFAULTS.avatar, kind: 'photo' } });
    expect(root.textContent).not.toContain('Character');
    set(field('Zoom'), '1.5', 'input');
    set(field('Roll (z)'), '-0.2', 'input');
    expect(now().avatar.scene).toMatchObject({ zoom: 1.5, rotation_z: -0.2 });
    set(field('Background opacity'), '0', 'input');
    expect(now().avatar.background).toBe('#FFFFFF00');
    set(field('Background colour'), '#00ff00', 'input');
    expect(now().avatar.background).toBe('#00FF0000');
  });

  it('takes the focus when it opens', () => {
    settingsPanel(DEFAULTS);
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Close settings');
  });

  it('turns detection off for push-to-talk', () => {
    settingsPanel(DEFAULTS);
    set(field('Microphone'), 'push-to-talk');
    expect((field('Turn detection') as HTMLSelectElement).disabled).toBe(true);
  });
});

describe('the transcript', () => {
  const entry = (over: Partial<Entry>): Entry => ({ id: 'x', kind: 'assistant', text: '', status: 'streaming', words: [], ...over });

  it('highlights the word being heard and marks the ones before it', async () => {
    const words = ['Paris', 'is', 'lovely'].map((text, i) => ({ text, startMs: i * 400, durationMs: 350 }));
    mount(<Transcript entries={[entry({ id: 'a1', text: 'Paris is lovely', words })]} heard={() => ({ itemId: 'a1', ms: 500 })} playing={true} />);
    await act(() => new Promise((r) => setTimeout(r, 120)));
    expect(root.querySelector('.word.now')?.textContent).toBe('is ');
    expect([...root.querySelectorAll('.word.heard')].map((w) => w.textContent)).toEqual(['Paris ']);
  });

  it('shows tool calls, cut replies and errors, and is a live region for screen readers', () => {
    mount(<Transcript playing={false} heard={() => null} entries={[
      entry({ id: 't', kind: 'tool', status: 'done', tool: { name: 'get_local_time', callId: 'c', arguments: '{}', output: '"noon"' } }),
      entry({ id: 'a', text: 'It is', status: 'cancelled', truncatedAtMs: 1234 }),
      entry({ id: 'e', kind: 'error', text: 'The API key is not valid.', status: 'done' }),
    ]} />);
    const log = root.querySelector('[role=log]')!;
    expect(log.getAttribute('aria-live')).toBe('polite');
    expect(log.textContent).toContain('get_local_time({})');
    expect(log.textContent).toContain('→ "noon"');
    expect(log.textContent).toContain('(interrupted at 1.2 s)');
    expect(root.querySelector('.entry.error')!.textContent).toContain('The API key is not valid.');
  });
});

describe('the developer panel', () => {
  const line = (n: number, dir: 'in' | 'out', type: string, json = `{"type":"${type}"}`): LogLine => ({ n, dir, at: n * 10, type, json });
  const log = [
    line(1, 'out', 'session.update'),
    line(2, 'in', 'session.updated'),
    line(3, 'out', 'input_audio_buffer.append', '{"type":"input_audio_buffer.append","audio":"<1920 bytes>"}'),
    line(4, 'in', 'response.audio.delta'),
    line(5, 'in', 'response.audio_transcript.delta', '{"type":"response.audio_transcript.delta","delta":"Paris"}'),
  ];
  const shown = () => [...root.querySelectorAll('.log summary')].map((s) => s.textContent);

  it('lists events both ways, media deltas only when asked, filtered by type, text and direction', () => {
    mount(<DevPanel log={log} turns={[]} startup={{}} onClear={() => {}} />);
    expect(shown()).toEqual(['session.update', 'session.updated', 'response.audio_transcript.delta']);
    const media = [...root.querySelectorAll('.log-controls label')].find((l) => l.textContent === 'media deltas')!.querySelector('input')!;
    act(() => media.click());
    expect(shown()).toHaveLength(5);
    set(root.querySelector('input[type=search]') as HTMLInputElement, 'Paris', 'input');
    expect(shown()).toEqual(['response.audio_transcript.delta']);
    set(root.querySelector('input[type=search]') as HTMLInputElement, '', 'input');
    set(root.querySelector('select[aria-label=Direction]') as HTMLSelectElement, 'out');
    expect(shown()).toEqual(['session.update', 'input_audio_buffer.append']);
    expect(root.querySelector('.log li.out pre')!.textContent).toBe('{"type":"session.update"}');
  });

  it('shows the start-up and each turn in milliseconds', () => {
    mount(<DevPanel log={[]} startup={{ click: 1000, socketOpen: 1030, sessionUpdated: 1055, answer: 1100, firstFrame: 1250.4 }}
      turns={[{ endOfSpeech: 0, transcript: 310, firstText: 820, firstAudio: 900 }]} onClear={() => {}} />);
    expect(root.querySelector('[data-stage=first-frame]')!.textContent).toBe('250 ms');
    expect(root.querySelector('[data-stage=socket]')!.textContent).toBe('30 ms');
    const cells = [...root.querySelectorAll('.latency.turns tbody td')].map((c) => c.textContent);
    expect(cells).toEqual(['310 ms', '820 ms', '900 ms', '—']);
  });
});
