import { describe, expect, it } from 'vitest';
import { Player, type PlaybackContext } from '../src/audio/player';

/** An AudioContext stand-in whose clock the test moves. */
class FakeContext implements PlaybackContext {
  currentTime = 10;
  destination = {} as AudioNode;
  started: { at: number; length: number; stopped: boolean }[] = [];
  createBuffer(_channels: number, length: number) {
    return { length, copyToChannel() {} } as unknown as AudioBuffer;
  }
  createBufferSource() {
    const ctx = this;
    const record = { at: 0, length: 0, stopped: false };
    const source = {
      buffer: null as AudioBuffer | null,
      connect() {},
      disconnect() {},
      start(at: number) {
        record.at = at;
        record.length = source.buffer!.length;
        ctx.started.push(record);
      },
      stop() {
        record.stopped = true;
      },
    };
    return source as unknown as AudioBufferSourceNode;
  }
}

const chunk = (ms: number) => new Int16Array((24000 * ms) / 1000);

describe('playback', () => {
  it('schedules chunks back to back behind the jitter buffer', () => {
    const ctx = new FakeContext();
    const player = new Player(ctx, ctx.destination, 60);
    player.enqueue('a', chunk(100));
    player.enqueue('a', chunk(100));
    expect(ctx.started.map((s) => s.at)).toEqual([10.06, 10.16]);
    expect(player.playing).toBe(true);
  });

  it('knows how much of an item was heard', () => {
    const ctx = new FakeContext();
    const player = new Player(ctx, ctx.destination, 60);
    player.enqueue('a', chunk(100));
    player.enqueue('a', chunk(100));
    expect(player.playedMs('a')).toBe(0);
    ctx.currentTime = 10.06 + 0.15;
    expect(player.playedMs('a')).toBe(150);
    expect(player.current()).toBe('a');
  });

  it('after running dry, starts the next chunk a jitter buffer from now', () => {
    const ctx = new FakeContext();
    const player = new Player(ctx, ctx.destination, 60);
    player.enqueue('a', chunk(40));
    ctx.currentTime = 11;
    expect(player.playing).toBe(false);
    player.enqueue('b', chunk(40));
    expect(ctx.started[1].at).toBeCloseTo(11.06, 6);
    expect(player.playedMs('a')).toBe(40);
  });

  it('between chunks, the item about to be heard is the current one, not an older one', () => {
    const ctx = new FakeContext();
    const player = new Player(ctx, ctx.destination, 60);
    player.enqueue('old', chunk(40));
    ctx.currentTime = 12;
    player.enqueue('new', chunk(200));
    ctx.currentTime = 12.03; // inside the new item's jitter-buffer lead
    expect(player.current()).toBe('new');
    expect(player.flush()).toEqual({ itemId: 'new', playedMs: 0 });
  });

  it('a flush silences everything and says where the item stopped', () => {
    const ctx = new FakeContext();
    const player = new Player(ctx, ctx.destination, 60);
    const seen: boolean[] = [];
    player.onPlaying = (p) => seen.push(p);
    for (let i = 0; i < 5; i++) player.enqueue('item_1', chunk(100));
    ctx.currentTime = 10.06 + 0.234;
    expect(player.flush()).toEqual({ itemId: 'item_1', playedMs: 234 });
    expect(ctx.started.every((s) => s.stopped)).toBe(true);
    expect(player.playing).toBe(false);
    expect(seen).toEqual([true, false]);
    expect(player.flush()).toBeNull();
  });

  it('a reply that ran dry between its phrases is stopped where it was heard to, if named as arriving', () => {
    const ctx = new FakeContext();
    const player = new Player(ctx, ctx.destination, 60);
    player.enqueue('reply', chunk(300));
    player.enqueue('reply', chunk(200));
    ctx.currentTime = 11; // both chunks played; the next phrase is still being generated
    expect(player.playing).toBe(false);
    expect(player.flush('unheard')).toBeNull();
    player.enqueue('reply', chunk(100));
    ctx.currentTime = 12;
    expect(player.flush('reply')).toEqual({ itemId: 'reply', playedMs: 600 });
    expect(player.flush('reply')).toBeNull();
  });
});
