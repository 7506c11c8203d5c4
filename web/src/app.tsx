// The page: the avatar, the transcript, the controls (Connect, microphone, push-to-talk, typed
// messages), the settings drawer and the developer panel, wired to one Call.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import { fetchAgent, keyHeaders, type Agent } from './agent';
import { Admin } from './admin/Admin';
import { Call, preparePeer, type CallView } from './call';
import type { LogLine } from './client';
import { EMPTY, reduce, type ServerEvent } from './conversation';
import { Compositor } from './avatar/compositor';
import { DevPanel } from './ui/DevPanel';
import { SettingsPanel, type Catalog } from './ui/SettingsPanel';
import { Transcript } from './ui/Transcript';
import { httpBase, loadSettings, RESOLUTIONS, saveSettings, type Settings } from './settings';

const IDLE: CallView = { status: 'idle', video: null, mic: false, talking: false, muted: false, avatarSpeaking: false, playing: false, transparency: null, startup: {} };
const MAX_LOG = 2000;

/** The picture's width / height for the settings' size preset (the box is sized before any video). */
function aspect(s: Settings): string {
  const r = RESOLUTIONS[s.avatar.resolution];
  const [w, h] = r.crop ? [r.crop[2] - r.crop[0], r.crop[3] - r.crop[1]] : [r.width, r.height];
  return `${w} / ${h}`;
}

/** What follows `#/admin` in the page's address (`null`: not the admin view). */
export function adminRoute(hash: string): string | null {
  const m = /^#\/admin(?:\/(.*))?$/.exec(hash);
  return m ? (m[1] ?? '').replace(/\/+$/, '') : null;
}

/** Exposed for the end-to-end tests and the benchmark: when the page became ready, and the call. */
declare global {
  interface Window {
    brazen?: { readyAt?: number; call?: Call | null; view?: CallView };
  }
}

/** The app. */
export function App() {
  const [settings, setSettings] = useState<Settings>(() => loadSettings());
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [catalogError, setCatalogError] = useState<string | null>(null);
  // The server's agent: `undefined` while asked, `null` when it runs none (or could not say).
  const [agent, setAgent] = useState<Agent | null | undefined>(undefined);
  const agentAnswer = useRef<Promise<Agent | null>>(Promise.resolve(null));
  const [view, setView] = useState<CallView>(IDLE);
  const [conversation, dispatch] = useReducer((s, a: { ev: ServerEvent; at: number }) => reduce(s, a.ev, a.at), EMPTY);
  const [log, setLog] = useState<LogLine[]>([]);
  const [showSettings, setShowSettings] = useState(false);
  const [message, setMessage] = useState('');
  // The admin view is a route (`#/admin…`); the conversation stays mounted (and connected) under it.
  const [hash, setHash] = useState(() => location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  const admin = adminRoute(hash);
  const call = useRef<Call | null>(null);
  const video = useRef<HTMLVideoElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const overlay = useRef<HTMLCanvasElement>(null);
  const meter = useRef<HTMLDivElement>(null);
  const settingsButton = useRef<HTMLButtonElement>(null);
  const developer = useRef(settings.developer);
  developer.current = settings.developer;

  // What the server offers (voices, characters, portraits, ICE servers) and the agent it runs;
  // then the page is ready.
  // The key unlocks the TURN relay's credentials, which the server gives only to key holders;
  // a newer request (the key being typed) replaces an older one, which is dropped.
  useEffect(() => {
    const base = httpBase(settings, location.origin);
    const request = new AbortController();
    // Whether the server runs an agent decides what Connect sends (see sessionConfig).
    setAgent(undefined);
    const asked = fetchAgent(base, settings.apiKey, request.signal).catch(() => null);
    agentAnswer.current = asked;
    void asked.then((a) => {
      if (!request.signal.aborted) setAgent(a);
    });
    const catalogAnswer = fetch(`${base}/api/catalog`, {
      headers: keyHeaders(settings.apiKey),
      signal: request.signal,
    })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((c: Catalog) => {
        setCatalog(c);
        setCatalogError(null);
      })
      .catch((e) => {
        if (request.signal.aborted) return;
        setCatalogError(`The server at ${base} did not answer (${e.message}); check the endpoint in the settings.`);
      });
    void Promise.allSettled([catalogAnswer, asked]).then(() => {
      if (request.signal.aborted) return;
      window.brazen = { ...window.brazen, readyAt: performance.now() };
      document.body.dataset.ready = 'true';
    });
    return () => request.abort();
  }, [settings.endpoint, settings.apiKey]);

  // Prepare the WebRTC peer ahead when the microphone is already allowed (Chromium then offers
  // real host candidates), so Connect goes straight to the answer.
  useEffect(() => {
    if (!catalog || !settings.avatar.enabled || settings.avatar.output !== 'webrtc' || view.status !== 'idle') return;
    navigator.permissions
      ?.query({ name: 'microphone' as PermissionName })
      .then((p) => {
        if (p.state === 'granted') preparePeer(catalog.ice_servers);
      })
      .catch(() => {});
  }, [catalog, settings.avatar.enabled, settings.avatar.output, view.status]);

  const [unsaved, setUnsaved] = useState(false);
  const change = useCallback((next: Settings) => {
    setSettings(next);
    setUnsaved(!saveSettings(next));
    call.current?.reconfigure(next);
  }, []);

  const connect = async () => {
    if (!video.current || !canvas.current) return;
    // A Connect before the server said whether it runs an agent waits for the answer.
    const serverAgent = agent === undefined ? await agentAnswer.current : agent;
    const c = new Call(settings, location.origin, catalog?.ice_servers ?? [], {
      onView: (v) => {
        setView(v);
        window.brazen = { ...window.brazen, view: v };
      },
      onEvent: (ev, at) => dispatch({ ev, at }),
      onLog: (line) => {
        if (developer.current) setLog((l) => (l.length >= MAX_LOG ? [...l.slice(-MAX_LOG / 2), line] : [...l, line]));
      },
      onLevel: (level) => {
        if (meter.current) meter.current.style.transform = `scaleX(${level})`;
      },
    }, video.current, canvas.current, serverAgent !== null);
    call.current = c;
    window.brazen = { ...window.brazen, call: c };
    await c.connect();
  };

  const disconnect = () => {
    call.current?.disconnect();
    call.current = null;
    if (meter.current) meter.current.style.transform = 'scaleX(0)';
  };

  // Push-to-talk on the space bar (outside text fields); Escape closes the settings.
  useEffect(() => {
    const typing = (e: KeyboardEvent) => e.target instanceof HTMLElement && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
    const down = (e: KeyboardEvent) => {
      if (e.key === 'Escape') closeSettings();
      if (e.code === 'Space' && !e.repeat && !typing(e) && settings.micMode === 'push-to-talk' && call.current) {
        e.preventDefault();
        call.current.setTalking(true);
      }
    };
    const up = (e: KeyboardEvent) => {
      if (e.code === 'Space' && !typing(e) && settings.micMode === 'push-to-talk' && call.current) {
        e.preventDefault();
        call.current.setTalking(false);
      }
    };
    // A key released in another window never reaches this one: leaving the page ends the turn.
    const away = () => call.current?.setTalking(false);
    const hidden = () => document.hidden && away();
    addEventListener('keydown', down);
    addEventListener('keyup', up);
    addEventListener('blur', away);
    document.addEventListener('visibilitychange', hidden);
    return () => {
      removeEventListener('keydown', down);
      removeEventListener('keyup', up);
      removeEventListener('blur', away);
      document.removeEventListener('visibilitychange', hidden);
    };
  }, [settings.micMode]);

  // A transparent background is composited over the page.
  const transparencyKey = JSON.stringify(view.transparency);
  useEffect(() => {
    if (!view.transparency || !video.current || !overlay.current || (view.video !== 'webrtc' && view.video !== 'websocket')) return;
    try {
      const c = new Compositor(video.current, overlay.current, view.transparency);
      return () => c.close();
    } catch {
      return;
    }
  }, [transparencyKey, view.video]);

  // Closing the settings hands the focus back to the button that opened them.
  function closeSettings() {
    setShowSettings((open) => {
      if (open) setTimeout(() => settingsButton.current?.focus());
      return false;
    });
  }

  const heard = useCallback(() => call.current?.heard() ?? null, []);
  const connected = view.status === 'connected';
  const send = (e: Event) => {
    e.preventDefault();
    if (!message.trim() || !call.current) return;
    call.current.sendText(message);
    setMessage('');
  };
  const stageStyle = useMemo(() => ({ aspectRatio: aspect(settings) }), [settings.avatar.resolution]);
  const composited = view.transparency !== null && (view.video === 'webrtc' || view.video === 'websocket');

  return (
    <div class={`app ${settings.developer ? 'with-dev' : ''} ${settings.avatar.enabled ? '' : 'without-avatar'}`}>
      <header class="bar">
        <h1>brazen</h1>
        {agent && (
          <p class="agent" data-testid="agent">
            <strong>{agent.name}</strong>
            {agent.description && <span class="description"> — {agent.description}</span>}
          </p>
        )}
        <span class={`status ${view.status}`} role="status">
          {view.status === 'idle' ? 'not connected' : view.status === 'connecting' ? 'connecting…' : 'connected'}
        </span>
        <div class="actions">
          {view.status === 'idle' ? (
            <button type="button" class="primary" onClick={connect} data-testid="connect">Connect</button>
          ) : (
            <button type="button" onClick={disconnect} data-testid="disconnect">Disconnect</button>
          )}
          <button type="button" ref={settingsButton} aria-expanded={showSettings} onClick={() => (showSettings ? closeSettings() : setShowSettings(true))}>Settings</button>
          {agent && admin === null && <a class="link" href="#/admin">Admin</a>}
          <label class="toggle"><input type="checkbox" checked={settings.developer} onChange={(e) => change({ ...settings, developer: e.currentTarget.checked })} />Developer</label>
        </div>
      </header>
      {catalogError && <p class="banner" role="alert">{catalogError}</p>}
      {unsaved && <p class="banner" role="alert">This browser would not store the settings (its storage is full or off); they apply until the page is closed.</p>}
      {admin !== null && <Admin server={{ base: httpBase(settings, location.origin), apiKey: settings.apiKey }} route={admin} />}
      <main class="main" hidden={admin !== null}>
        <section class={`stage ${settings.avatar.enabled ? '' : 'no-avatar'}`} style={stageStyle} aria-label="Avatar">
          <video ref={video} playsInline autoPlay class={composited ? 'under' : ''} data-testid="avatar-video" aria-label="Avatar video" hidden={view.video === 'canvas' || !settings.avatar.enabled} />
          <canvas ref={overlay} class="overlay" hidden={!composited} aria-hidden="true" />
          <canvas ref={canvas} class="drawn" width={480} height={640} hidden={view.video !== 'canvas'} aria-label="Avatar drawn from animation events" />
          {view.video === null && settings.avatar.enabled && <p class="placeholder">The avatar appears here when you connect.</p>}
        </section>
        <section class="talk" aria-label="Conversation">
          <Transcript entries={conversation.entries} base={httpBase(settings, location.origin)} heard={heard} playing={view.playing || view.video === 'webrtc' || view.video === 'websocket'} />
          <div class="controls">
            <div class="mic" title="Microphone level">
              <span class="label">{view.muted ? 'muted' : view.mic ? (settings.micMode === 'push-to-talk' ? (view.talking ? 'listening' : 'hold to talk') : conversation.userSpeaking ? 'hearing you' : 'listening') : 'mic off'}</span>
              <div class="meter" aria-hidden="true"><div ref={meter} class="level" /></div>
            </div>
            <button type="button" class="mute" disabled={!view.mic} aria-pressed={view.muted} data-testid="mute" onClick={() => call.current?.setMuted(!view.muted)}>
              Mute
            </button>
            {settings.micMode === 'push-to-talk' && (
              <button
                type="button"
                class={`ptt ${view.talking ? 'down' : ''}`}
                disabled={!connected}
                aria-pressed={view.talking}
                onPointerDown={() => call.current?.setTalking(true)}
                onPointerUp={() => call.current?.setTalking(false)}
                onPointerLeave={() => call.current?.setTalking(false)}
                onKeyDown={(e) => (e.key === 'Enter' ? call.current?.setTalking(true) : undefined)}
                onKeyUp={(e) => (e.key === 'Enter' ? call.current?.setTalking(false) : undefined)}
              >Hold to talk (Space)</button>
            )}
            <form class="compose" onSubmit={send}>
              <input aria-label="Message" placeholder={connected ? 'Type a message…' : 'Connect to type a message'} value={message} disabled={!connected} onInput={(e) => setMessage(e.currentTarget.value)} />
              <button type="submit" disabled={!connected || !message.trim()}>Send</button>
            </form>
          </div>
        </section>
        {settings.developer && <DevPanel log={log} turns={conversation.turns} startup={view.startup} onClear={() => setLog([])} />}
      </main>
      {showSettings && <SettingsPanel settings={settings} catalog={catalog} agent={agent ?? null} onChange={change} onClose={closeSettings} />}
    </div>
  );
}
