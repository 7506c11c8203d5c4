"""The retail sample's backend contract (SEED_APPS.md §2), message for message, as its React page
speaks it: REST (`POST /sessions`, `/text`, `/commit-audio`, `/avatar-offer`), the page socket
`/ws/sessions/{id}` (float32 microphone chunks up; `session_ready`, the session.updated `event`
with ICE servers, transcripts, `assistant_audio_delta`, `function_call_completed` down), the
sample's error shapes and CORS for a frontend on another origin.

The server runs the built-in retail agent with the stand-in engines and no API key (as a
developer runs the sample against it on their machine).
"""
from __future__ import annotations

import array
import asyncio
import base64
import json
import re
import sys

import aiohttp
import pytest

from audio import RATE, silence, speech_pcm16
from brazen_server import BrazenServer

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PAGE_ORIGIN = "http://localhost:5173"


@pytest.fixture(scope="module")
def server(request):
    srv = BrazenServer("retail-sample", keys=()).start()
    request.module._brazen_server = srv
    yield srv
    srv.stop()


async def new_session(http: aiohttp.ClientSession, base: str, **kwargs) -> str:
    async with http.post(f"{base}/sessions", **kwargs) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert UUID.match(body["session_id"]), body
    return body["session_id"]


async def receive(ws, kind: str, seen: list, timeout: float = 20.0) -> dict:
    """The next page message of type `kind`; every message read is appended to `seen`."""
    async def loop():
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r}"
            data = json.loads(msg.data)
            seen.append(data)
            if data["type"] == kind:
                return data

    return await asyncio.wait_for(loop(), timeout)


def float32_chunks(pcm16: bytes, samples_per_chunk: int = 2048):
    """The page's microphone chunks: LE float32 at 24 kHz, 2048 samples each, base64."""
    ints = array.array("h")
    ints.frombytes(pcm16)
    if sys.byteorder == "big":
        ints.byteswap()
    for i in range(0, len(ints), samples_per_chunk):
        floats = array.array("f", (s / 32768.0 for s in ints[i : i + samples_per_chunk]))
        if sys.byteorder == "big":
            floats.byteswap()
        yield {"type": "audio_chunk", "data": base64.b64encode(floats.tobytes()).decode(), "encoding": "float32"}


async def test_sessions_are_created_in_every_body_shape_and_unknown_ids_get_404(server):
    async with aiohttp.ClientSession() as http:
        first = await new_session(http, server.base_url)
        second = await new_session(http, server.base_url, json={"avatar_enabled": True})
        third = await new_session(http, server.base_url, data=b"")
        assert len({first, second, third}) == 3
        async with http.post(f"{server.base_url}/sessions", data=b"{not json") as r:
            assert r.status == 422
            assert "detail" in await r.json()
        for path in ("text", "commit-audio", "avatar-offer"):
            async with http.post(f"{server.base_url}/sessions/no-such-session/{path}", json={"text": "hi", "sdp": "v=0"}) as r:
                assert r.status == 404, path
                assert await r.json() == {"detail": "Session not found"}
        async with http.post(f"{server.base_url}/sessions/{first}/text", json={"words": "hi"}) as r:
            assert r.status == 422
        async with http.post(f"{server.base_url}/sessions/{first}/commit-audio") as r:
            assert r.status == 200
            assert await r.json() == {"status": "committed"}


async def test_an_unknown_session_socket_is_accepted_then_closed_with_4404(server):
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{server.ws_base}/ws/sessions/nope") as ws:
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 4404


async def test_ready_then_ice_servers_then_a_typed_question_is_answered_in_words_and_sound(server):
    async with aiohttp.ClientSession() as http:
        sid = await new_session(http, server.base_url)
        async with http.ws_connect(f"{server.ws_base}/ws/sessions/{sid}") as ws:
            seen: list = []
            ready = await receive(ws, "session_ready", seen)
            assert seen == [ready] and ready["session_id"] == sid, "session_ready comes first"
            event = await receive(ws, "event", seen)
            assert event["payload"]["type"] == "session.updated", "the ICE servers follow at once"
            ice = event["payload"]["session"]["avatar"]["ice_servers"]
            assert ice and all("urls" in s or isinstance(s, str) for s in ice), ice
            async with http.post(f"{server.base_url}/sessions/{sid}/text", json={"text": "hello from the page"}) as r:
                assert r.status == 200
                assert await r.json() == {"status": "queued"}
            done = await receive(ws, "assistant_transcript_done", seen, timeout=30)
            assert "hello from the page" in done["transcript"], done
            deltas = "".join(m["delta"] for m in seen if m["type"] == "assistant_transcript_delta")
            assert deltas.strip() == done["transcript"].strip()
            assert all(m.get("item_id") == done["item_id"] for m in seen if m["type"] == "assistant_transcript_delta")
            await receive(ws, "response_status", seen, timeout=30)
            audio = b"".join(base64.b64decode(m["delta"]) for m in seen if m["type"] == "assistant_audio_delta")
            assert len(audio) > 0 and len(audio) % 2 == 0, "PCM16 audio, sent on the socket (no avatar peer)"
            # Raw Voice Live events reach the page wrapped as `event`.
            kinds = {m["payload"]["type"] for m in seen if m["type"] == "event"}
            assert "response.created" in kinds, kinds


async def test_float32_microphone_chunks_go_through_the_vad_and_are_answered(server):
    async with aiohttp.ClientSession() as http:
        sid = await new_session(http, server.base_url)
        async with http.ws_connect(f"{server.ws_base}/ws/sessions/{sid}") as ws:
            seen: list = []
            await receive(ws, "session_ready", seen)
            speech = silence(300) + speech_pcm16("Do you have any winter coats?") + silence(1500)
            for chunk in float32_chunks(speech):
                await ws.send_str(json.dumps(chunk))
                await asyncio.sleep(0.02)
            await receive(ws, "speech_started", seen, timeout=30)
            await receive(ws, "speech_stopped", seen, timeout=30)
            user = await receive(ws, "user_transcript_completed", seen, timeout=30)
            assert user["transcript"] and user["item_id"], user
            await receive(ws, "assistant_transcript_done", seen, timeout=60)
            assert any(m["type"] == "assistant_audio_delta" for m in seen)


async def test_bad_page_messages_get_error_messages_and_the_socket_stays_open(server):
    async with aiohttp.ClientSession() as http:
        sid = await new_session(http, server.base_url)
        async with http.ws_connect(f"{server.ws_base}/ws/sessions/{sid}") as ws:
            seen: list = []
            await receive(ws, "session_ready", seen)
            await ws.send_str(json.dumps({"type": "audio_chunk", "data": base64.b64encode(b"\x00" * 6).decode(), "encoding": "float32"}))
            error = await receive(ws, "error", seen)
            assert "4-byte" in error["payload"]["message"], error
            await ws.send_str("not json")
            error = await receive(ws, "error", seen)
            assert "JSON" in error["payload"]["message"]
            await ws.send_str(json.dumps({"type": "user_text", "text": "still here?"}))
            done = await receive(ws, "assistant_transcript_done", seen, timeout=30)
            assert "still here" in done["transcript"]


async def test_a_bad_avatar_offer_is_refused_with_a_reason(server):
    async with aiohttp.ClientSession() as http:
        sid = await new_session(http, server.base_url)
        async with http.post(f"{server.base_url}/sessions/{sid}/avatar-offer", json={"sdp": "hello"}) as r:
            assert r.status == 400, await r.text()
            assert "v=0" in (await r.json())["detail"]
        async with http.post(f"{server.base_url}/sessions/{sid}/avatar-offer", json={}) as r:
            assert r.status == 422


async def test_cors_admits_a_local_dev_page_and_refuses_other_sites(server):
    async with aiohttp.ClientSession() as http:
        preflight = {"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        async with http.options(f"{server.base_url}/sessions", headers=preflight) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
        async with http.post(f"{server.base_url}/sessions", headers={"Origin": PAGE_ORIGIN}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
        async with http.post(f"{server.base_url}/sessions", headers={"Origin": "https://evil.example"}) as r:
            assert r.status == 403
            assert "allowed_origins" in (await r.json())["detail"]
