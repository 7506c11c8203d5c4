"""Client-independent conformance scenarios, run through a per-SDK `Driver`.

Each SDK test module wraps its unmodified client in a Driver subclass (how to send each client
event with that SDK's own API, how to read the raw server frames, how to validate them strictly)
and runs every scenario below against a `brazen serve` process.

Only the standard library is imported here so that every venv (openai 3.x, openai 1.x,
azure-ai-voicelive) can share it.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import time

import audio

# Event names per dialect (GA = OpenAI Realtime GA; beta = OpenAI beta / Voice Live).
NAMES = {
    "ga": dict(
        item_added="conversation.item.added",
        audio_delta="response.output_audio.delta",
        audio_done="response.output_audio.done",
        transcript_delta="response.output_audio_transcript.delta",
        transcript_done="response.output_audio_transcript.done",
        text_delta="response.output_text.delta",
        text_done="response.output_text.done",
        out_audio="output_audio",
        out_text="output_text",
    ),
    "beta": dict(
        item_added="conversation.item.created",
        audio_delta="response.audio.delta",
        audio_done="response.audio.done",
        transcript_delta="response.audio_transcript.delta",
        transcript_done="response.audio_transcript.done",
        text_delta="response.text.delta",
        text_done="response.text.done",
        out_audio="audio",
        out_text="text",
    ),
}
NAMES["voicelive"] = NAMES["beta"]

# Reply timing of the echo engine: 40 ms of audio per character of reply text.
MS_PER_CHAR = 40
WAIT = float(os.environ.get("BRAZEN_CONF_WAIT_S", "20"))
# How fast audio is streamed: seconds to sleep after each 100 ms chunk (0.1 = real time).
CHUNK_SLEEP = float(os.environ.get("BRAZEN_CONF_CHUNK_SLEEP_S", "0.02"))

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Look up the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

BAD_EVENT_ID = "evt_conformance_bad_1"


class Violations(AssertionError):
    pass


class Driver:
    """Base class. Subclasses implement the SDK-specific parts."""

    dialect = "ga"
    label = "?"

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.violations: list[str] = []
        self._t0 = time.monotonic()

    # ---- to implement -------------------------------------------------
    async def _recv_raw(self) -> bytes | str:
        raise NotImplementedError

    def _check(self, raw: bytes | str, ev: dict) -> list[str]:
        """Strict validation of one raw server event; returns a list of violations."""
        return []

    async def session_update(self, session: dict) -> None:
        raise NotImplementedError

    async def user_text(self, text: str) -> None:
        raise NotImplementedError

    async def response_create(self) -> None:
        raise NotImplementedError

    async def response_cancel(self) -> None:
        raise NotImplementedError

    async def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        raise NotImplementedError

    async def append_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def function_output(self, call_id: str, output: str) -> None:
        raise NotImplementedError

    async def send_raw(self, event: dict) -> None:
        raise NotImplementedError

    # ---- shared ---------------------------------------------------------
    @property
    def n(self) -> dict:
        return NAMES[self.dialect]

    def violation(self, msg: str) -> None:
        self.violations.append(msg)

    async def next_event(self, timeout: float = WAIT) -> dict:
        raw = await asyncio.wait_for(self._recv_raw(), timeout)
        try:
            ev = json.loads(raw)
        except ValueError as e:
            self.violation(f"non-JSON frame: {raw[:200]!r} ({e})")
            return {"type": "<non-json>"}
        if not isinstance(ev, dict) or not isinstance(ev.get("type"), str):
            self.violation(f"frame without a string `type`: {str(raw)[:200]}")
            return {"type": "<no-type>"}
        for v in self._check(raw, ev):
            self.violation(f"{ev.get('type')}: {v}\n    raw: {_short(raw)}")
        self.events.append(ev)
        return ev

    async def wait_for(self, want, timeout: float = WAIT, allow_error: bool = False) -> tuple[dict, list[dict]]:
        """Read events until `want` (type name or predicate) matches; returns (event, events read)."""
        pred = (lambda e: e.get("type") == want) if isinstance(want, str) else want
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"[{self.label}] timed out after {timeout}s waiting for {want!r}; got: "
                    + ", ".join(e.get("type", "?") for e in seen[-40:])
                )
            try:
                ev = await self.next_event(left)
            except asyncio.TimeoutError:
                continue
            seen.append(ev)
            if ev.get("type") == "error" and not allow_error and not pred(ev):
                raise AssertionError(f"[{self.label}] unexpected error event: {json.dumps(ev)}")
            if pred(ev):
                return ev, seen

    async def drain(self, quiet_s: float = 0.3) -> list[dict]:
        """Read whatever arrives until the connection is quiet for `quiet_s`."""
        out = []
        while True:
            try:
                out.append(await self.next_event(quiet_s))
            except asyncio.TimeoutError:
                return out

    @contextlib.asynccontextmanager
    async def checked(self):
        """Fail on schema violations too; a scenario failure also reports the violations seen."""
        try:
            yield self
        except BaseException as e:
            if self.violations:
                raise AssertionError(f"{e}\n(also: {self._violation_text()})") from e
            raise
        self.assert_clean()

    def _violation_text(self) -> str:
        uniq = list(dict.fromkeys(self.violations))
        return f"{len(uniq)} schema violation(s) in server events:\n  - " + "\n  - ".join(uniq[:40])

    def assert_clean(self) -> None:
        if self.violations:
            raise Violations(f"[{self.label}] {self._violation_text()}")


def _short(raw, n: int = 400) -> str:
    s = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    s = re.sub(r'"(delta|audio)":"[A-Za-z0-9+/=]{40,}"', r'"\1":"<base64>"', s)
    return s if len(s) <= n else s[:n] + "…"


# ---------------------------------------------------------------------------
# Session configuration in each dialect's own shape
# ---------------------------------------------------------------------------

def session_config(dialect: str, *, instructions=None, transcription=False, vad=None, tools=None, text_only=False) -> dict:
    vad_cfg = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
    if dialect == "ga":
        s: dict = {"type": "realtime"}
        if instructions is not None:
            s["instructions"] = instructions
        if text_only:
            s["output_modalities"] = ["text"]
        inp: dict = {"format": {"type": "audio/pcm", "rate": 24000}}
        if transcription:
            inp["transcription"] = {"model": "whisper-1"}
        if vad is not None:
            inp["turn_detection"] = vad_cfg if vad else None
        s["audio"] = {"input": inp, "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}}
        if tools:
            s["tools"] = [{"type": "function", **t} for t in tools]
            s["tool_choice"] = "auto"
        return s
    s = {"input_audio_format": "pcm16", "output_audio_format": "pcm16"}
    if instructions is not None:
        s["instructions"] = instructions
    s["modalities"] = ["text"] if text_only else ["text", "audio"]
    if transcription:
        s["input_audio_transcription"] = {"model": "whisper-1"}
    if vad is not None:
        s["turn_detection"] = vad_cfg if vad else None
    if tools:
        s["tools"] = [{"type": "function", **t} for t in tools]
        s["tool_choice"] = "auto"
    return s


# ---------------------------------------------------------------------------
# Helpers over collected events
# ---------------------------------------------------------------------------

def of_type(events, t):
    return [e for e in events if e.get("type") == t]


def concat(events, t, field="delta"):
    return "".join(e.get(field, "") for e in of_type(events, t))


def audio_bytes(events, t) -> int:
    return sum(len(base64.b64decode(e.get("delta", ""))) for e in of_type(events, t))


async def expect_session_created(d: Driver) -> dict:
    ev = await d.next_event()
    assert ev.get("type") == "session.created", f"[{d.label}] first server event must be session.created, got {ev.get('type')}"
    s = ev.get("session") or {}
    if d.dialect == "ga":
        assert s.get("type") == "realtime", f"GA session.created.session.type must be 'realtime': {s}"
        td = ((s.get("audio") or {}).get("input") or {}).get("turn_detection")
        fmt = ((s.get("audio") or {}).get("input") or {}).get("format")
        assert fmt in (None, {"type": "audio/pcm", "rate": 24000}), f"default input format: {fmt}"
    else:
        td = s.get("turn_detection")
        mods = s.get("modalities")
        assert mods is None or set(mods) == {"text", "audio"}, f"default modalities: {mods}"
        assert s.get("input_audio_format") in (None, "pcm16"), s.get("input_audio_format")
    # The protocol's default is server_vad; brazen's built-in agent (which the conformance
    # server runs) starts sessions with semantic_vad (docs/turn-taking.md).
    assert td and td.get("type") in ("server_vad", "semantic_vad"), f"default turn_detection: {td}"
    assert td.get("threshold") in (None, 0.5) and td.get("prefix_padding_ms") in (None, 300) and td.get(
        "silence_duration_ms"
    ) in (None, 500), f"default VAD params: {td}"
    assert not s.get("tools"), f"no tools by default: {s.get('tools')}"
    return ev


async def run_response(d: Driver, *, allow_error=False) -> tuple[dict, list[dict]]:
    """Wait for response.created ... response.done; returns (response.done event, all events seen)."""
    done, seen = await d.wait_for("response.done", allow_error=allow_error)
    return done, seen


def check_response_stream(d: Driver, seen: list[dict], done: dict) -> None:
    """Ordering and id consistency of one response's events."""
    types = [e["type"] for e in seen]
    resp = done.get("response") or {}
    rid = resp.get("id")
    assert "response.created" in types, f"no response.created before response.done: {types}"
    created = of_type(seen, "response.created")[-1]
    assert (created.get("response") or {}).get("id") == rid, "response.created / response.done ids differ"
    assert types.index("response.created") < types.index("response.done")
    added = {}
    for e in seen:
        if e["type"] == "response.output_item.added":
            added[e["item"].get("id")] = e
        if e["type"].startswith("response.") and "response_id" in e:
            assert e["response_id"] == rid, f"{e['type']} has response_id {e['response_id']} != {rid}"
        if "item_id" in e and e["type"].startswith("response.") and e["type"] not in ("response.created", "response.done"):
            assert e["item_id"] in added, f"{e['type']} for item {e['item_id']} before response.output_item.added"


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

async def scenario_session_update(d: Driver) -> None:
    await expect_session_created(d)
    cfg = session_config(d.dialect, instructions="You are the brazen conformance suite.", transcription=True, vad=True)
    await d.session_update(cfg)
    ev, _ = await d.wait_for("session.updated")
    s = ev["session"]
    assert s.get("instructions") == "You are the brazen conformance suite.", s.get("instructions")
    if d.dialect == "ga":
        assert s.get("type") == "realtime"
        inp = (s.get("audio") or {}).get("input") or {}
        assert (inp.get("transcription") or {}).get("model") == "whisper-1", inp
        assert (inp.get("turn_detection") or {}).get("type") == "server_vad", inp
        assert inp.get("format") == {"type": "audio/pcm", "rate": 24000}, inp.get("format")
    else:
        assert (s.get("input_audio_transcription") or {}).get("model") == "whisper-1", s
        assert (s.get("turn_detection") or {}).get("type") == "server_vad", s
        assert s.get("input_audio_format") == "pcm16", s.get("input_audio_format")
    # A second, partial update keeps what the first one set.
    if d.dialect == "ga":
        await d.session_update({"type": "realtime", "instructions": "Second instructions."})
    else:
        await d.session_update({"instructions": "Second instructions."})
    ev, _ = await d.wait_for("session.updated")
    s = ev["session"]
    assert s.get("instructions") == "Second instructions."
    if d.dialect == "ga":
        assert ((s.get("audio") or {}).get("input") or {}).get("transcription", {}).get("model") == "whisper-1", s
    else:
        assert (s.get("input_audio_transcription") or {}).get("model") == "whisper-1", s


async def text_turn(d: Driver, text: str, *, text_only=False) -> tuple[dict, list[dict]]:
    """User text + response.create; checks the whole reply; returns (response.done, events)."""
    n = d.n
    await d.user_text(text)
    item_ev, _ = await d.wait_for(
        lambda e: e["type"] == n["item_added"] and (e.get("item") or {}).get("role") == "user"
    )
    item = item_ev["item"]
    assert item.get("type") == "message" and item.get("id"), item
    content = item.get("content") or []
    assert content and content[0].get("type") == "input_text" and content[0].get("text") == text, content
    await d.response_create()
    done, seen = await run_response(d)
    check_response_stream(d, seen, done)
    expected = f"You said: {text}"
    resp = done["response"]
    assert resp.get("status") == "completed", f"response.done status {resp.get('status')}: {resp}"
    out = resp.get("output") or []
    assert len(out) == 1 and out[0].get("type") == "message" and out[0].get("role") == "assistant", out
    part = (out[0].get("content") or [{}])[0]
    if text_only:
        got = concat(seen, n["text_delta"])
        assert got == expected, f"text deltas {got!r} != {expected!r}"
        assert of_type(seen, n["text_done"])[-1].get("text") == expected
        assert not of_type(seen, n["audio_delta"]), "audio deltas in a text-only response"
        assert part.get("type") == n["out_text"] and part.get("text") == expected, part
    else:
        got = concat(seen, n["transcript_delta"])
        assert got == expected, f"transcript deltas {got!r} != {expected!r}"
        assert of_type(seen, n["transcript_done"])[-1].get("transcript") == expected
        assert of_type(seen, n["audio_done"]), f"no {n['audio_done']}"
        nbytes = audio_bytes(seen, n["audio_delta"])
        want = len(expected) * MS_PER_CHAR * 48  # 24 kHz * 2 bytes = 48 bytes per ms
        assert 0.75 * want <= nbytes <= 1.25 * want, f"audio bytes {nbytes}, expected ~{want} (40 ms/char)"
        assert nbytes % 2 == 0
        assert part.get("type") == n["out_audio"] and part.get("transcript") == expected, part
    return done, seen


async def scenario_text_turn(d: Driver) -> None:
    await expect_session_created(d)
    await text_turn(d, "hello brazen")
    # A second turn on the same connection echoes the newest message.
    await text_turn(d, "second message")


async def scenario_text_only(d: Driver) -> None:
    await expect_session_created(d)
    await d.session_update(session_config(d.dialect, text_only=True))
    await d.wait_for("session.updated")
    await text_turn(d, "text only please", text_only=True)


async def scenario_audio_vad_turn(d: Driver) -> None:
    n = d.n
    await expect_session_created(d)
    await d.session_update(session_config(d.dialect, transcription=True, vad=True))
    await d.wait_for("session.updated")
    pcm = audio.speech_pcm16()
    for chunk in audio.chunks(audio.silence(300) + pcm + audio.silence(1200)):
        await d.append_audio(chunk)
        if CHUNK_SLEEP:
            await asyncio.sleep(CHUNK_SLEEP)
    started, _ = await d.wait_for("input_audio_buffer.speech_started")
    stopped, _ = await d.wait_for("input_audio_buffer.speech_stopped")
    item_id = started["item_id"]
    assert stopped["item_id"] == item_id
    assert isinstance(started["audio_start_ms"], int) and isinstance(stopped["audio_end_ms"], int)
    assert 0 <= started["audio_start_ms"] < stopped["audio_end_ms"]
    speech_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
    total_ms = audio.duration_s(pcm) * 1000
    assert 0.5 * total_ms <= speech_ms <= total_ms + 1500, f"speech {speech_ms} ms vs spoken {total_ms:.0f} ms"
    committed, _ = await d.wait_for("input_audio_buffer.committed")
    assert committed["item_id"] == item_id
    # The rest arrives in an order the server may choose: item, transcription, response.
    pending = {"item", "transcription", "response"}
    transcript = None
    seen_all: list[dict] = []
    while pending:
        ev = await d.next_event()
        seen_all.append(ev)
        t = ev["type"]
        if t == "error":
            raise AssertionError(f"unexpected error: {ev}")
        if t == n["item_added"] and (ev.get("item") or {}).get("id") == item_id:
            it = ev["item"]
            assert it.get("role") == "user" and it.get("type") == "message", it
            c = (it.get("content") or [{}])[0]
            assert c.get("type") == "input_audio", c
            pending.discard("item")
        elif t == "conversation.item.input_audio_transcription.completed":
            assert ev["item_id"] == item_id and ev.get("content_index") == 0, ev
            transcript = ev["transcript"]
            m = re.fullmatch(r"\[speech (\d+\.\d) s\]", transcript)
            assert m, f"echo ASR transcript should be '[speech N.N s]', got {transcript!r}"
            secs = float(m.group(1))
            # The committed item may include the prefix padding (300 ms) and the trailing silence (500 ms).
            assert speech_ms - 600 <= secs * 1000 <= speech_ms + 300 + 500 + 600, (
                f"transcript says {secs}s, VAD said {speech_ms} ms of speech"
            )
            pending.discard("transcription")
        elif t == "response.done":
            pending.discard("response")
            done = ev
    assert transcript is not None
    resp = done["response"]
    assert resp.get("status") == "completed", resp
    said = concat(seen_all, n["transcript_delta"])
    assert said == f"You said: {transcript}", f"reply {said!r} should echo the transcript {transcript!r}"


async def scenario_function_call(d: Driver) -> None:
    n = d.n
    await expect_session_created(d)
    await d.session_update(session_config(d.dialect, tools=[WEATHER_TOOL]))
    ev, _ = await d.wait_for("session.updated")
    tools = ev["session"].get("tools") or []
    assert [t.get("name") for t in tools] == ["get_weather"], tools
    await d.user_text('Please call get_weather with {"city": "Paris"} for me.')
    await d.response_create()
    done, seen = await run_response(d)
    check_response_stream(d, seen, done)
    resp = done["response"]
    assert resp.get("status") == "completed", resp
    out = resp.get("output") or []
    assert len(out) == 1 and out[0].get("type") == "function_call", out
    fc = out[0]
    assert fc.get("name") == "get_weather", fc
    assert json.loads(fc.get("arguments")) == {"city": "Paris"}, fc.get("arguments")
    call_id = fc.get("call_id")
    assert call_id, fc
    args_done = of_type(seen, "response.function_call_arguments.done")
    assert args_done, "no response.function_call_arguments.done"
    assert args_done[-1]["call_id"] == call_id and json.loads(args_done[-1]["arguments"]) == {"city": "Paris"}
    deltas = concat(seen, "response.function_call_arguments.delta")
    assert deltas == args_done[-1]["arguments"], f"argument deltas {deltas!r} != done {args_done[-1]['arguments']!r}"
    item_done = [e for e in of_type(seen, "response.output_item.done") if e["item"].get("type") == "function_call"]
    assert item_done and item_done[-1]["item"].get("status") == "completed", item_done
    # Tool result goes back; the next response reports it.
    await d.function_output(call_id, '{"temperature_c": 21}')
    item_ev, _ = await d.wait_for(
        lambda e: e["type"] == n["item_added"] and (e.get("item") or {}).get("type") == "function_call_output"
    )
    assert item_ev["item"].get("call_id") == call_id and item_ev["item"].get("output") == '{"temperature_c": 21}'
    await d.response_create()
    done, seen = await run_response(d)
    said = concat(seen, n["transcript_delta"]) or concat(seen, n["text_delta"])
    assert said == 'The get_weather tool returned: {"temperature_c": 21}', said


LONG_TEXT = "please keep talking for a long time " * 12


async def scenario_cancel(d: Driver) -> None:
    n = d.n
    await expect_session_created(d)
    await d.user_text(LONG_TEXT)
    await d.wait_for(lambda e: e["type"] == n["item_added"] and (e.get("item") or {}).get("role") == "user")
    # The cancel follows the create at once: the echo engine may produce a whole reply within
    # milliseconds, so waiting for response.created first would race against response.done.
    await d.response_create()
    await d.response_cancel()
    created, _ = await d.wait_for("response.created")
    rid = created["response"]["id"]
    done, seen = await run_response(d)
    resp = done["response"]
    assert resp.get("id") == rid
    assert resp.get("status") == "cancelled", f"after response.cancel, response.done.status = {resp.get('status')!r}"
    sd = resp.get("status_details") or {}
    assert sd.get("type") in (None, "cancelled") and sd.get("reason") in (None, "client_cancelled"), sd
    full = len("You said: " + LONG_TEXT) * MS_PER_CHAR * 48
    assert audio_bytes(seen, n["audio_delta"]) < full, "cancelled response still delivered all of its audio"
    late = [e for e in await d.drain(0.5) if e.get("response_id") == rid]
    assert not late, f"events for the cancelled response after its response.done: {[e['type'] for e in late]}"
    # The connection keeps working.
    await text_turn(d, "after cancel")


async def scenario_truncate(d: Driver) -> None:
    await expect_session_created(d)
    done, _ = await text_turn(d, "truncate me please")
    item_id = done["response"]["output"][0]["id"]
    await d.truncate(item_id, 0, 300)
    ev, _ = await d.wait_for("conversation.item.truncated")
    assert ev["item_id"] == item_id and ev["content_index"] == 0 and ev["audio_end_ms"] == 300, ev


async def scenario_bad_event(d: Driver) -> None:
    await expect_session_created(d)
    await d.send_raw({"type": "conformance.no_such_event", "event_id": BAD_EVENT_ID})
    ev, _ = await d.wait_for("error", allow_error=True)
    err = ev.get("error") or {}
    assert err.get("type") == "invalid_request_error", err
    assert err.get("message"), err
    assert err.get("event_id") == BAD_EVENT_ID, f"error.event_id should echo the client's event_id: {err}"
    # The same connection still completes a normal turn.
    await text_turn(d, "still alive")


SCENARIOS = {
    "session_update": scenario_session_update,
    "text_turn": scenario_text_turn,
    "text_only": scenario_text_only,
    "audio_vad_turn": scenario_audio_vad_turn,
    "function_call": scenario_function_call,
    "cancel": scenario_cancel,
    "truncate": scenario_truncate,
    "bad_event": scenario_bad_event,
}


class ConnectionDriver(Driver):
    """A driver over an SDK connection object (`self.conn`) with the calls both the `openai` and
    `azure-ai-voicelive` packages offer; subclasses add what differs (items, session, checks)."""

    async def response_create(self):
        await self.conn.response.create()

    async def response_cancel(self):
        await self.conn.response.cancel()

    async def truncate(self, item_id, content_index, audio_end_ms):
        await self.conn.conversation.item.truncate(item_id=item_id, content_index=content_index, audio_end_ms=audio_end_ms)

    async def append_audio(self, pcm):
        await self.conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())

    async def send_raw(self, event):
        await self.conn.send(event)
