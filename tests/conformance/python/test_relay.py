"""PyPI `azure-ai-voicelive`, unmodified, through `brazen serve --relay` (brazen as the secure
proxy in front of Voice Live), against a stand-in Voice Live and a stand-in Entra ID token
endpoint written in this file from the published formats (the real services cannot be reached
from the test machine). The stand-in accepts a bearer token only while it is fresh (2.5 s; it says
302 s, so brazen — which renews 5 minutes before expiry — takes a new one after 2 s): the first
SDK session runs on after its token has expired, and a second session opened then gets a fresh
one. The SDK holds only brazen's key.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web
from azure.core.credentials import AzureKeyCredential
from azure.ai.voicelive.aio import connect
from azure.ai.voicelive.models import InputTextContentPart, Modality, RequestSession, UserMessageItem

from brazen_server import API_KEY, BrazenServer

VALID_FOR = 2.5


class StandIn:
    """The token endpoint and the Voice Live socket, with what they saw."""

    def __init__(self):
        self.issued: dict[str, float] = {}
        self.token_requests = 0
        self.sessions: list[dict] = []

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests += 1
        ok = (request.match_info["tenant"] == "tenant-1" and form.get("grant_type") == "client_credentials"
              and form.get("client_id") == "app-1" and form.get("client_secret") == "s3cret"
              and "cognitiveservices.azure.com" in str(form.get("scope")))
        if not ok:
            return web.json_response({"error": "invalid_client"}, status=401)
        value = f"tok-{len(self.issued) + 1}"
        self.issued[value] = time.monotonic()
        return web.json_response({"token_type": "Bearer", "expires_in": 302, "access_token": value})

    async def voice_live(self, request: web.Request) -> web.StreamResponse:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        issued = self.issued.get(bearer)
        if issued is None or time.monotonic() - issued > VALID_FOR:
            return web.Response(status=401, text="token missing or expired")
        record = {"token": bearer, "query": dict(request.query), "events": []}
        self.sessions.append(record)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = {"id": f"sess_{len(self.sessions)}", "object": "realtime.session", "model": request.query.get("model"),
                   "modalities": ["text", "audio"], "instructions": "", "voice": {"name": "en-US-AvaNeural", "type": "azure-standard"}}
        n = 0

        async def send(event: dict):
            nonlocal n
            n += 1
            await ws.send_str(json.dumps({"event_id": f"event_{n}", **event}))

        await send({"type": "session.created", "session": session})
        async for msg in ws:
            event = json.loads(msg.data)
            record["events"].append(event["type"])
            if event["type"] == "session.update":
                session.update({k: v for k, v in event.get("session", {}).items() if v is not None})
                await send({"type": "session.updated", "session": session})
            elif event["type"] == "conversation.item.create":
                item = {**event["item"], "id": "item_1", "object": "realtime.item", "status": "completed"}
                await send({"type": "conversation.item.created", "previous_item_id": None, "item": item})
            elif event["type"] == "response.create":
                response = {"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}
                await send({"type": "response.created", "response": response})
                await send({"type": "response.done", "response": {**response, "status": "completed"}})
        return ws


@pytest.fixture(scope="module")
def stand_in():
    state = StandIn()
    app = web.Application()
    app.router.add_post("/{tenant}/oauth2/v2.0/token", state.token)
    app.router.add_get("/voice-live/realtime", state.voice_live)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    import threading
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)


@pytest.fixture(scope="module")
def server(stand_in, request):
    _, url = stand_in
    env = {"AZURE_TENANT_ID": "tenant-1", "AZURE_CLIENT_ID": "app-1", "AZURE_CLIENT_SECRET": "s3cret",
           "AZURE_AUTHORITY_HOST": url, "AZURE_VOICELIVE_API_KEY": ""}
    srv = BrazenServer("relay", keys=(API_KEY,), extra_args=["--relay", url], env=env).start()
    request.module._brazen_server = srv
    yield srv
    srv.stop()


async def until(conn, kind: str) -> dict:
    while True:
        event = await asyncio.wait_for(conn.recv(), 10)
        if event.type == kind:
            return event


async def turn(conn, text: str):
    await conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text=text)]))
    await conn.response.create()
    done = await until(conn, "response.done")
    assert done.response.status == "completed"


async def test_the_sdk_through_the_relay_outlives_its_token_and_a_new_session_gets_a_fresh_one(server, stand_in):
    state, _ = stand_in
    async with connect(endpoint=server.base_url, credential=AzureKeyCredential(API_KEY), model="gpt-4o") as first:
        await until(first, "session.created")
        await first.session.update(session=RequestSession(modalities=[Modality.TEXT], instructions="Be brief."))
        updated = await until(first, "session.updated")
        assert updated.session.instructions == "Be brief."
        await turn(first, "Hello")
        await asyncio.sleep(VALID_FOR + 0.5)  # the first token has expired upstream
        await turn(first, "Still there?")  # the session it opened goes on
        async with connect(endpoint=server.base_url, credential=AzureKeyCredential(API_KEY), model="gpt-4o") as second:
            await until(second, "session.created")
            await turn(second, "A new session")
        await turn(first, "And the first one still works")
    assert state.token_requests == 2, "one token, then one refresh"
    assert [s["token"] for s in state.sessions] == ["tok-1", "tok-2"]
    assert all(s["query"].get("model") == "gpt-4o" and "api-version" in s["query"] for s in state.sessions)
    assert all(API_KEY not in json.dumps(s) for s in state.sessions), "brazen's key never travels upstream"
    assert state.sessions[0]["events"].count("response.create") == 3


async def test_a_wrong_key_never_reaches_voice_live(server, stand_in):
    state, _ = stand_in
    before = len(state.sessions)
    with pytest.raises(Exception):
        async with connect(endpoint=server.base_url, credential=AzureKeyCredential("wrong-key"), model="gpt-4o") as conn:
            await conn.recv()
    assert len(state.sessions) == before
