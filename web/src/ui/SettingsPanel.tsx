// The settings: connection, voice, turns, microphone, avatar (live scene sliders for photo
// avatars), animation outputs. Every change is handed up at once; the app saves and applies it.
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Agent } from '../agent';
import { customInstructions, DEFAULTS, RESOLUTIONS, type Scene, type Settings } from '../settings';
import { pictureUrl } from './picture';

/** What the server offers, from `/api/catalog`. */
export interface Catalog {
  voices: string[];
  characters: { name: string; description: string; styles: string[] }[];
  portraits: string[];
  ice_servers: RTCIceServer[];
  auth: boolean;
}

interface Props {
  settings: Settings;
  catalog: Catalog | null;
  /** The server's agent (`null`: none): its instructions and tools stay unless changed here. */
  agent?: Agent | null;
  onChange(settings: Settings): void;
  onClose(): void;
}

type Input = JSX.TargetedEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, Event>;

const SCENE: { key: keyof Scene; label: string; min: number; max: number; step: number }[] = [
  { key: 'zoom', label: 'Zoom', min: 0.5, max: 3, step: 0.05 },
  { key: 'position_x', label: 'Position x', min: -1, max: 1, step: 0.02 },
  { key: 'position_y', label: 'Position y', min: -1, max: 1, step: 0.02 },
  { key: 'rotation_x', label: 'Tilt (x)', min: -0.6, max: 0.6, step: 0.02 },
  { key: 'rotation_y', label: 'Turn (y)', min: -0.6, max: 0.6, step: 0.02 },
  { key: 'rotation_z', label: 'Roll (z)', min: -0.6, max: 0.6, step: 0.02 },
  { key: 'amplitude', label: 'Movement', min: 0.05, max: 1, step: 0.05 },
];

/** `#RRGGBBAA` → `#RRGGBB` and alpha 0–255. */
function splitColor(c: string): [string, number] {
  return [c.slice(0, 7), parseInt(c.slice(7, 9), 16)];
}

/** The settings panel. */
export function SettingsPanel({ settings: s, catalog, agent = null, onChange, onClose }: Props) {
  // Opening the panel takes the keyboard focus into it.
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => close.current?.focus(), []);
  const [pictureError, setPictureError] = useState<string | null>(null);
  const set = (change: Partial<Settings>) => onChange({ ...s, ...change });
  const turn = (change: Partial<Settings['turn']>) => set({ turn: { ...s.turn, ...change } });
  const avatar = (change: Partial<Settings['avatar']>) => set({ avatar: { ...s.avatar, ...change } });
  const text = (f: (v: string) => void) => (e: Input) => f(e.currentTarget.value);
  const num = (f: (v: number) => void) => (e: Input) => {
    const v = Number(e.currentTarget.value);
    if (Number.isFinite(v)) f(v);
  };
  const check = (f: (v: boolean) => void) => (e: Input) => f((e.currentTarget as HTMLInputElement).checked);
  // A picture file becomes a data: URL for the field `apply` sets.
  const picture = (apply: (url: string) => void, keepAlpha = false) => (e: Input) => {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    pictureUrl(file, keepAlpha).then(
      (url) => {
        setPictureError(null);
        apply(url);
      },
      (err: Error) => setPictureError(err.message),
    );
  };
  const character = catalog?.characters.find((c) => c.name === s.avatar.character);
  const [rgb, alpha] = splitColor(s.avatar.background);
  const hex2 = (n: number) => Math.round(n).toString(16).padStart(2, '0').toUpperCase();

  return (
    <aside class="settings" aria-label="Settings">
      <header>
        <h2>Settings</h2>
        <button type="button" ref={close} onClick={onClose} aria-label="Close settings">✕</button>
      </header>
      <fieldset>
        <legend>Connection</legend>
        <label>Endpoint<input type="url" placeholder="this server" value={s.endpoint} onChange={text((endpoint) => set({ endpoint }))} /></label>
        <label>API key<input type="password" autoComplete="off" value={s.apiKey} placeholder={catalog?.auth ? 'required by this server' : 'not required'} onChange={text((apiKey) => set({ apiKey }))} /></label>
        <label title="Your backend's URL that answers a POST with a one-session client secret ({value}); the page then needs no key">Session token URL<input type="url" placeholder="none: use the API key" value={s.tokenUrl} onChange={text((tokenUrl) => set({ tokenUrl }))} /></label>
        <label>Model<input value={s.model} onChange={text((model) => set({ model }))} /></label>
        {agent ? (
          <>
            {/* Empty means the agent's own instructions (kept as the default text, which is not sent). */}
            <label>Instructions<textarea rows={3} value={customInstructions(s) ? s.instructions : ''} placeholder={`the ${agent.name} agent's own`}
              onChange={text((v) => set({ instructions: v.trim() ? v : DEFAULTS.instructions }))} /></label>
            <label class="row"><input type="checkbox" checked={s.browserToolsWithAgent} onChange={check((browserToolsWithAgent) => set({ browserToolsWithAgent }))} />Also offer the browser's tools (local time)</label>
            <p class="hint">This server runs the {agent.name} agent: its instructions and tools are used unless you change them here (back to the agent's at the next Connect).</p>
          </>
        ) : (
          <>
            <label>Instructions<textarea rows={3} value={s.instructions} onChange={text((instructions) => set({ instructions }))} /></label>
            <label class="row"><input type="checkbox" checked={s.browserTools} onChange={check((browserTools) => set({ browserTools }))} />Offer the browser's tools (local time)</label>
          </>
        )}
      </fieldset>
      <fieldset>
        <legend>Voice</legend>
        <label>Voice<input list="voices" value={s.voice} onChange={text((voice) => set({ voice }))} /></label>
        <datalist id="voices">{(catalog?.voices ?? []).map((v) => <option key={v} value={v} />)}</datalist>
        <label>Rate {s.rate.toFixed(2)}<input type="range" min={0.5} max={1.5} step={0.05} value={s.rate} onInput={num((rate) => set({ rate }))} /></label>
        <label>Pitch {s.pitch > 0 ? '+' : ''}{s.pitch} %<input type="range" min={-50} max={50} step={5} value={s.pitch} onInput={num((pitch) => set({ pitch }))} /></label>
      </fieldset>
      <fieldset>
        <legend>Listening</legend>
        <label>Input language<select value={s.language} onChange={text((language) => set({ language }))}>
          <option value="">detect</option>
          {['en', 'de', 'es', 'fr', 'it', 'ja', 'nl', 'pt', 'zh'].map((l) => <option key={l} value={l}>{l}</option>)}
        </select></label>
        <label>Microphone<select value={s.micMode} onChange={text((v) => set({ micMode: v as Settings['micMode'] }))}>
          <option value="hands-free">hands-free (the server hears when you stop)</option>
          <option value="push-to-talk">push-to-talk (hold Space or the button)</option>
        </select></label>
        <label>Turn detection<select value={s.turn.type} onChange={text((v) => turn({ type: v as Settings['turn']['type'] }))} disabled={s.micMode === 'push-to-talk'}>
          <option value="semantic_vad">semantic (hears when a sentence is finished)</option>
          <option value="server_vad">server VAD (silence only)</option>
          <option value="azure_semantic_vad">Azure semantic VAD</option>
        </select></label>
        {s.turn.type === 'semantic_vad' ? (
          <label>Eagerness<select value={s.turn.eagerness} onChange={text((v) => turn({ eagerness: v as Settings['turn']['eagerness'] }))} disabled={s.micMode === 'push-to-talk'}>
            <option value="auto">auto</option>
            <option value="high">high (answers soonest)</option>
            <option value="medium">medium</option>
            <option value="low">low (waits longest)</option>
          </select></label>
        ) : null}
        <label>Threshold {s.turn.threshold.toFixed(2)}<input type="range" min={0.05} max={0.95} step={0.05} value={s.turn.threshold} onInput={num((threshold) => turn({ threshold }))} /></label>
        <label>Silence (ms)<input type="number" min={100} max={5000} step={50} value={s.turn.silenceMs} onChange={num((silenceMs) => turn({ silenceMs }))} /></label>
        <label>Prefix padding (ms)<input type="number" min={0} max={2000} step={50} value={s.turn.prefixMs} onChange={num((prefixMs) => turn({ prefixMs }))} /></label>
        <label class="row"><input type="checkbox" checked={s.turn.interrupt} onChange={check((interrupt) => turn({ interrupt }))} />Speaking interrupts the assistant</label>
        <label class="row"><input type="checkbox" checked={s.turn.ignoreFillers} onChange={check((ignoreFillers) => turn({ ignoreFillers }))} disabled={!s.turn.interrupt} />"Mm-hmm" and coughs do not interrupt (its words decide)</label>
        <label>Audio chunk (ms)<input type="number" min={20} max={100} step={10} value={s.chunkMs} onChange={num((chunkMs) => set({ chunkMs }))} /></label>
      </fieldset>
      <fieldset>
        <legend>Avatar</legend>
        <label class="row"><input type="checkbox" checked={s.avatar.enabled} onChange={check((enabled) => avatar({ enabled }))} />Show the avatar</label>
        <label>Video<select value={s.avatar.output} onChange={text((v) => avatar({ output: v as Settings['avatar']['output'] }))}>
          <option value="webrtc">WebRTC (lowest latency)</option>
          <option value="websocket">WebSocket video (works behind firewalls)</option>
          <option value="canvas">drawn by the page (animation events)</option>
        </select></label>
        <label>Kind<select value={s.avatar.kind} onChange={text((v) => avatar({ kind: v as Settings['avatar']['kind'] }))}>
          <option value="character">character</option>
          <option value="photo">photo avatar</option>
        </select></label>
        {s.avatar.kind === 'character' ? (
          <>
            <label>Character<select value={s.avatar.character} onChange={text((c) => avatar({ character: c, style: catalog?.characters.find((x) => x.name === c)?.styles[0] ?? '' }))}>
              {!character && <option value={s.avatar.character}>{s.avatar.character}</option>}
              {(catalog?.characters ?? []).map((c) => <option key={c.name} value={c.name}>{c.name} — {c.description}</option>)}
            </select></label>
            <label>Style<select value={s.avatar.style} onChange={text((style) => avatar({ style }))}>
              {!character?.styles.includes(s.avatar.style) && <option value={s.avatar.style}>{s.avatar.style}</option>}
              {(character?.styles ?? []).map((st) => <option key={st} value={st}>{st}</option>)}
            </select></label>
          </>
        ) : (
          <>
            <label>Portrait (installed name or image URL)<input list="portraits" value={s.avatar.portrait.startsWith('data:') ? '(a chosen photo)' : s.avatar.portrait} onChange={text((portrait) => avatar({ portrait }))} /></label>
            <label>…or a photo from this device<input type="file" accept="image/png,image/jpeg,image/webp" onChange={picture((portrait) => avatar({ portrait }))} /></label>
            <datalist id="portraits">{(catalog?.portraits ?? []).map((p) => <option key={p} value={p} />)}</datalist>
            {SCENE.map((f) => (
              <label key={f.key}>{f.label} {s.avatar.scene[f.key].toFixed(2)}
                <input type="range" min={f.min} max={f.max} step={f.step} value={s.avatar.scene[f.key]}
                  onInput={num((v) => avatar({ scene: { ...s.avatar.scene, [f.key]: v } }))} />
              </label>
            ))}
          </>
        )}
        <label>Background colour<input type="color" value={rgb} onInput={text((c) => avatar({ background: c.toUpperCase() + hex2(alpha) }))} /></label>
        <label>Background opacity {Math.round((alpha / 255) * 100)} %<input type="range" min={0} max={255} step={1} value={alpha} onInput={num((a) => avatar({ background: rgb.toUpperCase() + hex2(a) }))} /></label>
        <label>Background image URL<input type="url" value={s.avatar.imageUrl.startsWith('data:') ? '(a chosen picture)' : s.avatar.imageUrl} placeholder="none" onChange={text((imageUrl) => avatar({ imageUrl }))} /></label>
        <label>…or a picture from this device<input type="file" accept="image/png,image/jpeg,image/webp" onChange={picture((imageUrl) => avatar({ imageUrl }))} /></label>
        {s.avatar.imageUrl && <button type="button" onClick={() => avatar({ imageUrl: '' })}>Remove the background picture</button>}
        {pictureError && <p class="error" role="alert">{pictureError}</p>}
        <label>Size<select value={s.avatar.resolution} onChange={text((v) => avatar({ resolution: v as Settings['avatar']['resolution'] }))}>
          {Object.entries(RESOLUTIONS).map(([k, r]) => <option key={k} value={k}>{r.label}</option>)}
        </select></label>
      </fieldset>
      <fieldset>
        <legend>Animation events</legend>
        <label class="row"><input type="checkbox" checked={s.animation.visemes} onChange={check((visemes) => set({ animation: { ...s.animation, visemes } }))} />Visemes</label>
        <label class="row"><input type="checkbox" checked={s.animation.blendshapes} onChange={check((blendshapes) => set({ animation: { ...s.animation, blendshapes } }))} />Blendshapes</label>
      </fieldset>
      <p class="hint">Changes apply to the conversation at once where the protocol allows it; the endpoint, key, microphone and video mode at the next Connect.</p>
    </aside>
  );
}
