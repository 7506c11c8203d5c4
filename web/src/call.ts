// One conversation with the server: the socket, the microphone, playback, the avatar (WebRTC
// with a peer prepared ahead, the WebSocket's MP4 stream, or the page's own drawing), barge-in,
// typed messages, the browser's tools, and the start-up moments the latency panel shows.
import { RealtimeClient, connectError, type LogLine } from './client';
import type { ServerEvent } from './conversation';
import { base64ToPcm16, pcm16ToBase64, RATE } from './audio/framing';
import { openMic, micError, type Mic } from './audio/mic';
import { Player, type Stopped } from './audio/player';
import { AvatarPeer } from './avatar/webrtc';
import { MsePlayer } from './avatar/mse';
import { CanvasAvatar } from './avatar/canvas';
import type { Transparency } from './avatar/compositor';
import { avatarConfig, httpBase, longestTurnWaitMs, realtimeUrl, sessionConfig, sessionCredential, type Credential, type OutputMode, type Settings } from './settings';

/** The moments of the start-up, client clock (ms). */
export interface Startup {
  click?: number;
  socketOpen?: number;
  sessionUpdated?: number;
  answer?: number;
  firstFrame?: number;
}

/** What the page shows of the call. */
export interface CallView {
  status: 'idle' | 'connecting' | 'connected';
  /** How the avatar reaches the page now (`null`: no avatar). */
  video: OutputMode | null;
  /** The microphone was opened (it may be muted now). */
  mic: boolean;
  /** Push-to-talk key held. */
  talking: boolean;
  /** The microphone is muted (the device is released). */
  muted: boolean;
  /** The avatar is speaking (its video's speaking edges). */
  avatarSpeaking: boolean;
  /** The assistant's audio is playing. */
  playing: boolean;
  /** How the video's background is to be made transparent (`null`: it is opaque). */
  transparency: Transparency | null;
  startup: Startup;
}

/** What the page hands the call. */
export interface CallHooks {
  /** The view changed. */
  onView(view: CallView): void;
  /** A server event (or one of the call's own `client.*` events) at client time `at`. */
  onEvent(ev: ServerEvent, at: number): void;
  /** A line for the event log. */
  onLog(line: LogLine): void;
  /** The microphone's loudness, 0–1. */
  onLevel(level: number): void;
}

/** The ICE servers a prepared peer uses; the server lists them in `/api/catalog`. */
let prepared: AvatarPeer | null = null;

/**
 * Prepares the WebRTC peer for the next Connect (made, offered, candidates gathered). Chromium
 * offers its real host candidates only once the page may use the microphone, so this is called
 * when that permission is known to be granted and again when the microphone opens.
 */
export function preparePeer(iceServers: RTCIceServer[]): AvatarPeer {
  const key = JSON.stringify(iceServers);
  if (!prepared || prepared.iceKey !== key || prepared.pc.signalingState === 'closed') {
    prepared?.close();
    prepared = new AvatarPeer(iceServers);
  }
  return prepared;
}

function takePeer(iceServers: RTCIceServer[]): AvatarPeer {
  const peer = preparePeer(iceServers);
  prepared = null;
  return peer;
}

/** The view of a call that has ended (its start-up moments stay for the latency panel). */
const ENDED: Partial<CallView> = {
  status: 'idle', video: null, mic: false, talking: false, muted: false, avatarSpeaking: false, playing: false, transparency: null,
};

/** The silence sent when the microphone is muted (at least; longer than the turn detection's wait). */
const MUTE_SILENCE_MS = 1000;

/** How long a WebRTC avatar may take to show its first frame before the WebSocket takes over. */
const WEBRTC_DEADLINE_MS = 6000;

/** One conversation. */
export class Call {
  private client: RealtimeClient | null = null;
  private ctx: AudioContext | null = null;
  private mic: Mic | null = null;
  private player: Player | null = null;
  private peer: AvatarPeer | null = null;
  private mse: MsePlayer | null = null;
  private drawn: CanvasAvatar | null = null;
  private view: CallView = { status: 'idle', video: null, mic: false, talking: false, muted: false, avatarSpeaking: false, playing: false, transparency: null, startup: {} };
  private configured = false;
  /** Set by `disconnect` and failures: a `connect` still under way stops at its next step. */
  private closed = false;
  /** Counts microphone opens, so that an open overtaken by a mute or another open is closed. */
  private micOpens = 0;
  private responseActive = false;
  private assistantItem: string | null = null;
  /** The reply message whose audio is still arriving (`null` once it is all here, or none). */
  private arrivingItem: string | null = null;
  private speakingSince: number | null = null;
  private awaitingFrame = false;
  private toolOutputsSent = false;
  private deadline: ReturnType<typeof setTimeout> | null = null;
  private frameLoop = 0;
  /** How far each item's word timings reach, ms (a truncation never goes past it). */
  private audioKnownMs = new Map<string, number>();

  constructor(
    private settings: Settings,
    private readonly origin: string,
    private readonly iceServers: RTCIceServer[],
    private readonly hooks: CallHooks,
    private readonly video: HTMLVideoElement,
    private readonly canvas: HTMLCanvasElement,
    /** The server runs an agent: its session stays, only the user's changes are sent. */
    private readonly agent = false,
  ) {}

  /** Connects: microphone, socket, session, avatar. Failures become notices, never throws. */
  async connect(): Promise<void> {
    const click = performance.now();
    this.update({ status: 'connecting', startup: { click } });
    // The device's own rate: every browser can connect the microphone to it (the Framer makes
    // 24 kHz), and 24 kHz buffers play in it resampled.
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    void this.ctx.resume();
    this.player = new Player(this.ctx);
    this.player.onPlaying = (playing) => this.update({ playing });
    const avatar = this.settings.avatar.enabled ? this.settings.avatar.output : null;
    // The microphone and the socket open side by side; audio is sent once the session is set up.
    const mic = this.openMicrophone();
    let credential: Credential;
    try {
      credential = await sessionCredential(this.settings, this.origin);
    } catch (e) {
      await mic;
      if (!this.closed) this.fail((e as Error).message);
      return;
    }
    const url = realtimeUrl(this.settings, this.origin, credential?.kind === 'key' ? credential.value : null);
    let client: RealtimeClient;
    try {
      client = await RealtimeClient.open(url, credential?.kind === 'secret' ? credential.value : null);
    } catch {
      await mic;
      if (this.closed) return;
      const base = httpBase(this.settings, this.origin);
      const health = await fetch(`${base}/health`).then((r) => (r.ok ? r.json() : null)).catch(() => null);
      if (!this.closed) this.fail(connectError(base, health, this.settings.apiKey !== ''));
      return;
    }
    if (this.closed) {
      client.close();
      return;
    }
    this.client = client;
    this.update({ startup: { ...this.view.startup, socketOpen: performance.now() } });
    this.client.onLog = (line) => this.hooks.onLog(line);
    this.client.onEvent = (ev) => this.handle(ev);
    this.client.onClose = (code, reason) => {
      this.fail(`The connection to the server closed${reason ? `: ${reason}` : ''} (code ${code}).`);
    };
    this.update({ video: avatar });
    if (avatar === 'websocket') this.startMse();
    if (avatar === 'canvas') this.startCanvas();
    if (avatar === 'webrtc') {
      // A peer made before the microphone was allowed would offer only mDNS names: wait for it.
      await mic;
      if (this.client && !this.closed) this.startWebRtc();
    }
  }

  /** Ends the conversation and frees the devices. */
  disconnect(): void {
    this.client?.close();
    this.teardown();
    this.update(ENDED);
  }

  /** Applies changed settings to the live session (voice, instructions, turns, avatar scene …). */
  reconfigure(settings: Settings): void {
    this.settings = settings;
    if (!this.client || !this.configured) return;
    this.client.send({ type: 'session.update', session: sessionConfig(settings, this.view.video ?? 'webrtc', this.agent) });
  }

  /** Sends a typed message and asks for a reply. */
  sendText(text: string): void {
    if (!this.client || !text.trim()) return;
    this.interrupt(true);
    this.client.send({
      type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: text.trim() }] },
    });
    this.hooks.onEvent({ type: 'client.turn_sent' }, performance.now());
    this.client.send({ type: 'response.create' });
  }

  /** Push-to-talk: pressed (the assistant stops, a new turn starts) or released (the turn is sent). */
  setTalking(down: boolean): void {
    if (!this.client || down === this.view.talking) return;
    this.update({ talking: down });
    if (down) {
      this.interrupt(true);
      this.client.send({ type: 'input_audio_buffer.clear' });
    } else {
      this.client.send({ type: 'input_audio_buffer.commit' });
      this.hooks.onEvent({ type: 'client.turn_sent' }, performance.now());
      this.client.send({ type: 'response.create' });
    }
  }

  /** What the WebRTC avatar has delivered: the audio's total energy and the video frames decoded. */
  async mediaStats(): Promise<{ audioEnergy: number; videoFrames: number } | null> {
    if (!this.peer) return null;
    const out = { audioEnergy: 0, videoFrames: 0 };
    (await this.peer.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioEnergy = s.totalAudioEnergy ?? 0;
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.videoFrames = s.framesDecoded ?? 0;
    });
    return out;
  }

  /** The assistant item being heard and how far into it, ms (for word highlights). */
  heard(): { itemId: string; ms: number } | null {
    const item = this.player?.current();
    if (item) return { itemId: item, ms: this.player!.playedMs(item) };
    if (this.assistantItem && this.speakingSince !== null) {
      return { itemId: this.assistantItem, ms: performance.now() - this.speakingSince };
    }
    return null;
  }

  private update(change: Partial<CallView>): void {
    this.view = { ...this.view, ...change };
    this.hooks.onView(this.view);
  }

  private emit(ev: ServerEvent): void {
    this.hooks.onEvent(ev, performance.now());
  }

  private notice(text: string): void {
    this.emit({ type: 'client.notice', text });
  }

  private fail(text: string): void {
    this.notice(text);
    this.teardown();
    this.update(ENDED);
  }

  private teardown(): void {
    this.closed = true;
    if (this.deadline) clearTimeout(this.deadline);
    if (this.frameLoop && 'cancelVideoFrameCallback' in this.video) this.video.cancelVideoFrameCallback(this.frameLoop);
    this.client = null;
    this.configured = false;
    this.mic?.close();
    this.mic = null;
    this.player?.flush();
    this.player = null;
    void this.ctx?.close();
    this.ctx = null;
    this.peer?.close();
    this.peer = null;
    this.mse?.close();
    this.mse = null;
    this.drawn?.close();
    this.drawn = null;
    this.video.srcObject = null;
  }

  /**
   * Mutes the microphone, releasing the device (the browser's recording indicator goes off; a
   * moment of silence is sent so that a turn in progress ends), or opens it again.
   */
  async setMuted(muted: boolean): Promise<void> {
    if (muted === this.view.muted || !this.ctx) return;
    this.update({ muted });
    if (muted) {
      this.micOpens++; // an open still under way is not wanted any more
      this.mic?.close();
      this.mic = null;
      this.hooks.onLevel(0);
      this.sendAudio(new Int16Array((RATE * Math.max(MUTE_SILENCE_MS, longestTurnWaitMs(this.settings.turn) + 200)) / 1000));
    } else {
      await this.openMicrophone();
    }
  }

  private openMicrophone(): Promise<void> {
    const token = ++this.micOpens;
    return openMic(this.ctx!, this.settings.chunkMs, (pcm) => this.sendAudio(pcm), (l) => this.hooks.onLevel(l)).then(
      (m) => {
        // Disconnected, muted, or opened again meanwhile: this one is not wanted.
        if (!this.ctx || this.view.muted || token !== this.micOpens) return m.close();
        this.mic?.close();
        this.mic = m;
        this.update({ mic: true });
      },
      (e) => {
        if (token === this.micOpens && !this.closed) this.notice(micError(e));
      },
    );
  }

  private sendAudio(pcm: Int16Array): void {
    if (!this.client || !this.configured) return;
    if (this.settings.micMode === 'push-to-talk' && !this.view.talking) return;
    this.client.send({ type: 'input_audio_buffer.append', audio: pcm16ToBase64(pcm) });
  }

  /**
   * Stops the assistant: silences playback and tells the server how much of the item was heard
   * (the player's position, or for video the time since the avatar began speaking, at most the
   * audio the word timings cover). `cancel`: also stop the response (the server does so itself
   * when its turn detection hears the user).
   */
  private interrupt(cancel: boolean): void {
    const stopped = this.player?.flush(this.arrivingItem) ?? this.videoHeard();
    if (stopped && this.client) {
      this.client.send({ type: 'conversation.item.truncate', item_id: stopped.itemId, content_index: 0, audio_end_ms: stopped.playedMs });
    }
    if (cancel && this.responseActive && this.client) this.client.send({ type: 'response.cancel' });
    this.speakingSince = null;
  }

  /** Whether some of a reply whose audio is still arriving was heard (it may have run dry). */
  private heardArriving(): boolean {
    return this.arrivingItem !== null && (this.player?.playedMs(this.arrivingItem) ?? 0) > 0;
  }

  private videoHeard(): Stopped | null {
    if (!this.assistantItem || this.speakingSince === null) return null;
    const known = this.audioKnownMs.get(this.assistantItem) ?? 0;
    return { itemId: this.assistantItem, playedMs: Math.floor(Math.min(performance.now() - this.speakingSince, known)) };
  }

  private handle(ev: ServerEvent): void {
    const at = performance.now();
    // The page sees the event before what the call does about it (a tool's answer, a notice).
    this.hooks.onEvent(ev, at);
    switch (ev.type) {
      case 'session.created':
        this.client!.send({ type: 'session.update', session: sessionConfig(this.settings, this.view.video ?? 'webrtc', this.agent) });
        break;
      case 'session.updated':
        if ((ev.session?.avatar?.transparency ?? null) !== null || this.view.transparency !== null) {
          this.update({ transparency: ev.session?.avatar?.transparency ?? null });
        }
        if (!this.configured) {
          this.configured = true;
          this.update({ status: 'connected', startup: { ...this.view.startup, sessionUpdated: at } });
          if (this.view.video === 'webrtc' && this.peer) void this.offer(this.peer);
        }
        break;
      case 'session.avatar.connecting':
        if (this.peer && typeof ev.server_sdp === 'string') {
          this.update({ startup: { ...this.view.startup, answer: at } });
          this.peer.accept(ev.server_sdp).catch((e) => this.fallBack(`the server's answer was not accepted (${e})`));
        }
        break;
      case 'response.created':
        this.responseActive = true;
        this.arrivingItem = null;
        this.toolOutputsSent = false;
        break;
      case 'response.output_item.added':
        if (ev.item?.type === 'message') {
          this.assistantItem = ev.item.id;
          this.arrivingItem = ev.item.id;
        }
        break;
      case 'response.audio.done':
      case 'response.output_audio.done':
        if (ev.item_id === this.arrivingItem) this.arrivingItem = null;
        break;
      case 'response.audio.delta':
      case 'response.output_audio.delta':
        if (!this.player?.playing) this.awaitingFrame = true;
        this.player?.enqueue(ev.item_id, base64ToPcm16(ev.delta ?? ''));
        break;
      case 'response.video.delta':
        this.mse?.append(ev.delta ?? '');
        break;
      case 'response.audio_timestamp.delta': {
        const end = (ev.audio_offset_ms ?? 0) + (ev.audio_duration_ms ?? 0);
        this.audioKnownMs.set(ev.item_id, Math.max(end, this.audioKnownMs.get(ev.item_id) ?? 0));
        break;
      }
      case 'response.animation_viseme.delta':
        this.drawn?.add(ev.item_id, { offsetMs: ev.audio_offset_ms ?? 0, id: ev.viseme_id ?? 0 });
        break;
      case 'session.avatar.switch_to_speaking':
        this.speaking(at);
        break;
      case 'session.avatar.switch_to_idle':
        this.idle();
        break;
      case 'input_audio_buffer.speech_started':
        if (this.settings.turn.interrupt && (this.player?.playing || this.speakingSince !== null || this.heardArriving())) {
          this.interrupt(false);
        }
        break;
      case 'response.function_call_arguments.done':
        this.callTool(ev);
        break;
      case 'response.done':
        this.responseActive = false;
        this.arrivingItem = null;
        if (this.toolOutputsSent) this.client?.send({ type: 'response.create' });
        this.toolOutputsSent = false;
        break;
      case 'error': {
        const param = String(ev.error?.param ?? '');
        if (!this.configured) {
          // The server refused the settings as a whole: nothing would work; say so and stop.
          this.fail('The server refused these settings (the error above says which); change them and connect again.');
        } else if (this.view.video === 'webrtc' && (param.startsWith('session.avatar') || param === 'client_sdp') && !this.view.startup.firstFrame) {
          this.fallBack(ev.error?.message ?? 'the avatar could not start');
        }
        break;
      }
    }
  }

  private speaking(at: number): void {
    this.speakingSince = at;
    this.update({ avatarSpeaking: true });
    this.awaitingFrame = true;
    this.hooks.onEvent({ type: 'client.avatar_speaking' }, at);
  }

  private idle(): void {
    this.speakingSince = null;
    this.update({ avatarSpeaking: false });
  }

  private callTool(ev: ServerEvent): void {
    if (ev.name !== 'get_local_time' || !this.client) return;
    const now = new Date();
    const output = JSON.stringify({
      local_time: now.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'short' }),
      time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    });
    this.client.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: ev.call_id, output } });
    this.toolOutputsSent = true;
    this.emit({ type: 'client.tool_output', call_id: ev.call_id, output });
  }

  /** Watches the <video>'s frames: the start-up's first frame and each turn's first frame after its first audio. */
  private watchFrames(): void {
    if (!('requestVideoFrameCallback' in this.video)) return;
    if (this.frameLoop) this.video.cancelVideoFrameCallback(this.frameLoop);
    const onFrame = () => {
      const at = performance.now();
      if (this.view.startup.firstFrame === undefined) {
        this.update({ startup: { ...this.view.startup, firstFrame: at } });
        if (this.deadline) clearTimeout(this.deadline);
      }
      if (this.awaitingFrame) {
        this.awaitingFrame = false;
        this.hooks.onEvent({ type: 'client.avatar_frame' }, at);
      }
      this.frameLoop = this.video.requestVideoFrameCallback(onFrame);
    };
    this.frameLoop = this.video.requestVideoFrameCallback(onFrame);
  }

  private startWebRtc(): void {
    const peer = takePeer(this.iceServers);
    this.peer = peer;
    peer.onSpeaking = (s) => (s === 'speaking' ? this.speaking(performance.now()) : this.idle());
    peer.onFailed = (why) => this.fallBack(why);
    this.video.srcObject = peer.stream;
    this.video.muted = false;
    void this.video.play().catch(() => {});
    this.watchFrames();
    this.deadline = setTimeout(() => this.fallBack(`no video arrived within ${WEBRTC_DEADLINE_MS / 1000} s`), WEBRTC_DEADLINE_MS);
    if (this.configured) void this.offer(peer);
  }

  private async offer(peer: AvatarPeer): Promise<void> {
    const sdp = await peer.offer;
    if (this.peer === peer) this.client?.send({ type: 'session.avatar.connect', client_sdp: sdp });
  }

  private startMse(): void {
    try {
      this.mse = new MsePlayer(this.video);
    } catch (e) {
      this.notice(`The avatar video cannot be played in this browser: ${e instanceof Error ? e.message : e}`);
      return;
    }
    this.mse.onError = (why) => this.notice(`The avatar video stopped: ${why}.`);
    this.video.muted = false;
    void this.video.play().catch(() => {});
    this.watchFrames();
  }

  private startCanvas(): void {
    this.drawn = new CanvasAvatar(this.canvas, () => this.heard());
  }

  /** WebRTC did not work: carry on with the video over the WebSocket. */
  private fallBack(why: string): void {
    if (this.view.video !== 'webrtc' || !this.client) return;
    if (this.deadline) clearTimeout(this.deadline);
    this.peer?.close();
    this.peer = null;
    this.notice(`The avatar's WebRTC video did not work (${why}); it comes over the WebSocket instead.`);
    this.update({ video: 'websocket' });
    this.startMse();
    this.client.send({ type: 'session.update', session: { avatar: avatarConfig(this.settings, 'websocket') } });
  }
}
