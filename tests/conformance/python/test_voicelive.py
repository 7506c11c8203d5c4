"""PyPI `azure-ai-voicelive` (asyncio client) against brazen's Voice Live endpoint.

Runs every scenario twice: with an `AzureKeyCredential` (api-key header) and with an
`AsyncTokenCredential` (Authorization: Bearer). Client events go through the SDK's typed helpers
(`conn.session.update(session=RequestSession(...))`, `conn.conversation.item.create(...)`, ...).
Each raw server frame is parsed exactly as `VoiceLiveConnection.recv()` does
(`ServerEvent._deserialize`) and checked against the fields the Voice Live SDKs dereference.
"""
import base64
import contextlib
import json
import time

import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.ai.voicelive.aio import connect
from azure.ai.voicelive.models import (
    AudioEchoCancellation,
    AudioInputTranscriptionOptions,
    AudioNoiseReduction,
    AzureSemanticVad,
    AzureStandardVoice,
    FunctionCallOutputItem,
    FunctionTool,
    InputAudioFormat,
    InputTextContentPart,
    Modality,
    OutputAudioFormat,
    RequestSession,
    ServerEvent,
    ServerEventType,
    ServerVad,
    UserMessageItem,
)

import scenarios
from brazen_server import API_KEY
from scenarios import ConnectionDriver

KNOWN_TYPES = {t.value for t in ServerEventType}
MODEL = "gpt-4o-realtime-preview"


class StaticTokenCredential:
    """A proper AsyncTokenCredential (the SDK checks isinstance against the protocol)."""

    def __init__(self, token: str):
        self.token = token
        self.scopes_seen = []

    async def get_token(self, *scopes, **kwargs):
        self.scopes_seen.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass


# Fields the Voice Live SDKs dereference without a null check (from @azure/ai-voicelive's
# deserializers) plus the beta-protocol required fields of the common events.
REQUIRED = {
    "error": ["error"],
    "session.created": ["session"],
    "session.updated": ["session"],
    "response.created": ["response"],
    "response.done": ["response"],
    "response.output_item.added": ["response_id", "output_index", "item"],
    "response.output_item.done": ["response_id", "output_index", "item"],
    "response.content_part.added": ["response_id", "item_id", "output_index", "content_index", "part"],
    "response.content_part.done": ["response_id", "item_id", "output_index", "content_index", "part"],
    "response.audio.delta": ["response_id", "item_id", "output_index", "content_index", "delta"],
    "response.audio.done": ["response_id", "item_id", "output_index", "content_index"],
    "response.audio_transcript.delta": ["response_id", "item_id", "output_index", "content_index", "delta"],
    "response.audio_transcript.done": ["response_id", "item_id", "output_index", "content_index", "transcript"],
    "response.text.delta": ["response_id", "item_id", "output_index", "content_index", "delta"],
    "response.text.done": ["response_id", "item_id", "output_index", "content_index", "text"],
    "response.function_call_arguments.delta": ["response_id", "item_id", "output_index", "call_id", "delta"],
    "response.function_call_arguments.done": ["response_id", "item_id", "output_index", "call_id", "arguments"],
    "conversation.item.created": ["item"],
    "conversation.item.truncated": ["item_id", "content_index", "audio_end_ms"],
    "conversation.item.input_audio_transcription.completed": ["item_id", "content_index", "transcript"],
    "conversation.item.input_audio_transcription.failed": ["item_id", "content_index", "error"],
    "input_audio_buffer.committed": ["item_id"],
    "input_audio_buffer.speech_started": ["item_id", "audio_start_ms"],
    "input_audio_buffer.speech_stopped": ["item_id", "audio_end_ms"],
}
CONTENT_TYPES = {"input_text", "input_audio", "input_image", "text", "audio"}


def _check_item(item, where):
    out = []
    if not isinstance(item, dict):
        return [f"{where} is not an object"]
    if item.get("type") == "message":
        if not isinstance(item.get("content"), list):
            out.append(f"{where}.content must be an array for message items (@azure/ai-voicelive maps it unguarded)")
        else:
            for i, c in enumerate(item["content"]):
                if c.get("type") not in CONTENT_TYPES:
                    out.append(f"{where}.content[{i}].type {c.get('type')!r} not a Voice Live content type {sorted(CONTENT_TYPES)}")
    if item.get("type") not in ("message", "function_call", "function_call_output", "mcp_list_tools", "mcp_call",
                                "mcp_approval_request", "mcp_approval_response"):
        out.append(f"{where}.type {item.get('type')!r} unknown")
    return out


def check_voicelive_event(raw, ev):
    t = ev["type"]
    out = []
    if t not in KNOWN_TYPES:
        out.append(f"type {t!r} is not a ServerEventType of azure-ai-voicelive (the JS SDK drops it)")
    if not isinstance(ev.get("event_id"), str):
        out.append("event_id missing or not a string")
    for f in REQUIRED.get(t, []):
        if f not in ev or ev[f] is None:
            out.append(f"required field `{f}` missing")
    for f in ("output_index", "content_index", "audio_start_ms", "audio_end_ms"):
        if f in ev and not (isinstance(ev[f], int) and not isinstance(ev[f], bool)):
            out.append(f"`{f}` must be an integer, got {ev[f]!r}")
    if "item" in ev and ev["item"] is not None:
        out += _check_item(ev["item"], "item")
    if t in ("response.created", "response.done") and isinstance(ev.get("response"), dict):
        r = ev["response"]
        for i, it in enumerate(r.get("output") or []):
            out += _check_item(it, f"response.output[{i}]")
        u = r.get("usage")
        if u:
            itd = u.get("input_token_details")
            if not isinstance(itd, dict):
                out.append("response.usage.input_token_details must be an object when usage is present")
            elif not isinstance(itd.get("cached_tokens_details"), dict):
                out.append("response.usage.input_token_details.cached_tokens_details must be an object when usage is present")
            if not isinstance(u.get("output_token_details"), dict):
                out.append("response.usage.output_token_details must be an object when usage is present")
    if t.startswith("response.content_part") and isinstance(ev.get("part"), dict):
        if ev["part"].get("type") not in ("text", "audio"):
            out.append(f"part.type {ev['part'].get('type')!r} should be 'text' or 'audio'")
    if t == "error" and isinstance(ev.get("error"), dict):
        if not ev["error"].get("message") or not ev["error"].get("type"):
            out.append("error.type and error.message are required")
    if t == "response.audio.delta":
        try:
            base64.b64decode(ev.get("delta", ""), validate=True)
        except Exception:  # noqa: BLE001
            out.append("delta is not valid base64 (the SDK decodes it to bytes)")
    # What the application gets from the SDK's recv():
    try:
        typed = ServerEvent._deserialize(json.loads(raw), [])  # noqa: SLF001
        if t in KNOWN_TYPES and typed.type != t:
            out.append(f"SDK deserialized it as {typed.type!r}")
        if t == "response.audio.delta" and not isinstance(typed.delta, (bytes, bytearray)):
            out.append("SDK did not give decoded bytes for response.audio.delta.delta")
    except Exception as e:  # noqa: BLE001
        out.append(f"SDK ServerEvent._deserialize raised {type(e).__name__}: {e}")
    return out


def to_request_session(cfg: dict) -> RequestSession:
    kw = {}
    if "instructions" in cfg:
        kw["instructions"] = cfg["instructions"]
    if "modalities" in cfg:
        kw["modalities"] = [Modality(m) for m in cfg["modalities"]]
    if "input_audio_format" in cfg:
        kw["input_audio_format"] = InputAudioFormat(cfg["input_audio_format"])
    if "output_audio_format" in cfg:
        kw["output_audio_format"] = OutputAudioFormat(cfg["output_audio_format"])
    if "input_audio_transcription" in cfg:
        kw["input_audio_transcription"] = AudioInputTranscriptionOptions(model=cfg["input_audio_transcription"]["model"])
    if cfg.get("turn_detection"):
        td = cfg["turn_detection"]
        kw["turn_detection"] = ServerVad(
            threshold=td["threshold"], prefix_padding_ms=td["prefix_padding_ms"], silence_duration_ms=td["silence_duration_ms"]
        )
    if cfg.get("tools"):
        kw["tools"] = [FunctionTool(name=t["name"], description=t["description"], parameters=t["parameters"]) for t in cfg["tools"]]
        kw["tool_choice"] = cfg.get("tool_choice", "auto")
    return RequestSession(**kw)


class VoiceLiveDriver(ConnectionDriver):
    dialect = "voicelive"

    def __init__(self, conn, label):
        super().__init__()
        self.conn = conn
        self.label = label

    async def _recv_raw(self):
        return await self.conn.recv_bytes()

    def _check(self, raw, ev):
        return check_voicelive_event(raw, ev)

    async def session_update(self, session):
        await self.conn.session.update(session=to_request_session(session))

    async def session_update_typed(self, session: RequestSession):
        await self.conn.session.update(session=session)

    async def user_text(self, text):
        await self.conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text=text)]))

    async def function_output(self, call_id, output):
        await self.conn.conversation.item.create(item=FunctionCallOutputItem(call_id=call_id, output=output))



@contextlib.asynccontextmanager
async def open_driver(server, auth):
    cred = AzureKeyCredential(API_KEY) if auth == "api-key" else StaticTokenCredential(API_KEY)
    async with connect(endpoint=server.base_url, credential=cred, model=MODEL) as conn:
        d = VoiceLiveDriver(conn, f"azure-ai-voicelive/{auth}")
        async with d.checked():
            yield d
    if auth == "bearer":
        assert cred.scopes_seen, "token credential was never asked for a token"


@pytest.mark.parametrize("scenario", [s for s in scenarios.SCENARIOS if s != "text_only"] + ["text_only"])
@pytest.mark.parametrize("auth", ["api-key", "bearer"])
async def test_voicelive(server, auth, scenario):
    async with open_driver(server, auth) as d:
        await scenarios.SCENARIOS[scenario](d)


@pytest.mark.parametrize("auth", ["api-key"])
async def test_voicelive_session_extras(server, auth):
    """A typical Voice Live session.update (Azure voice, azure_semantic_vad, noise suppression, echo
    cancellation, explicit nulls from `RequestSession(avatar=None, ...)`) is accepted, then a turn works."""
    async with open_driver(server, auth) as d:
        await scenarios.expect_session_created(d)
        session = RequestSession(
            modalities=[Modality.TEXT, Modality.AUDIO],
            instructions="Voice Live extras.",
            voice=AzureStandardVoice(name="en-US-AvaMultilingualNeural"),
            turn_detection=AzureSemanticVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500),
            input_audio_noise_reduction=AudioNoiseReduction(type="azure_deep_noise_suppression"),
            input_audio_echo_cancellation=AudioEchoCancellation(),
            input_audio_transcription=AudioInputTranscriptionOptions(model="azure-speech"),
            avatar=None,
            tools=None,
        )
        await d.session_update_typed(session)
        ev, _ = await d.wait_for("session.updated")
        s = ev["session"]
        assert s.get("instructions") == "Voice Live extras."
        voice = s.get("voice")
        assert isinstance(voice, dict) and voice.get("name") == "en-US-AvaMultilingualNeural", voice
        assert (s.get("turn_detection") or {}).get("type") == "azure_semantic_vad", s.get("turn_detection")
        await scenarios.text_turn(d, "hello voice live")


async def test_voicelive_wrong_key_rejected(server):
    with pytest.raises(Exception) as exc:
        async with connect(endpoint=server.base_url, credential=AzureKeyCredential("wrong-key"), model=MODEL) as conn:
            await conn.recv()
    assert "401" in str(exc.value), f"expected an HTTP 401 rejection, got {exc.value!r}"


async def test_voicelive_path_prefix_kept(server):
    """An endpoint with a path prefix connects to <prefix>/voice-live/realtime."""
    async with connect(endpoint=server.base_url + "/some/prefix", credential=AzureKeyCredential(API_KEY), model=MODEL) as conn:
        d = VoiceLiveDriver(conn, "azure-ai-voicelive/prefix")
        async with d.checked():
            await scenarios.expect_session_created(d)
