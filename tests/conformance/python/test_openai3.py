"""PyPI `openai` 3.x against brazen: GA `client.realtime`, beta `client.beta.realtime`, and the Azure variants.

Every server event is validated strictly against this package's own pydantic types
(GA types for GA connections, beta types for beta connections).
"""
import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

import scenarios
from brazen_server import API_KEY
from openai_driver import open_driver
from strict_openai import beta_validator, ga_validator

assert openai.__version__.startswith("3."), openai.__version__

AZURE_API_VERSION = "2025-04-01-preview"


def variants(server):
    http, ws = server.base_url, server.ws_base
    return {
        # GA: base_url http -> ws, path /v1/realtime?model=..., Authorization: Bearer
        "ga": lambda: (AsyncOpenAI(api_key=API_KEY, base_url=f"{http}/v1").realtime.connect(model="gpt-realtime"), "ga"),
        # beta: OpenAI-Beta: realtime=v1 (3.x forces wss from base_url, so websocket_base_url)
        "beta": lambda: (
            AsyncOpenAI(api_key=API_KEY, base_url=f"{http}/v1", websocket_base_url=f"{ws}/v1").beta.realtime.connect(
                model="gpt-4o-realtime-preview"
            ),
            "beta",
        ),
        # Azure GA: /openai/realtime?api-version=..&deployment=.., api-key header
        "azure-ga": lambda: (
            AsyncAzureOpenAI(
                azure_endpoint=http, api_key=API_KEY, api_version=AZURE_API_VERSION, websocket_base_url=f"{ws}/openai"
            ).realtime.connect(model="gpt-realtime"),
            "ga",
        ),
        "azure-beta": lambda: (
            AsyncAzureOpenAI(
                azure_endpoint=http, api_key=API_KEY, api_version=AZURE_API_VERSION, websocket_base_url=f"{ws}/openai"
            ).beta.realtime.connect(model="gpt-4o-realtime-preview"),
            "beta",
        ),
    }


@pytest.mark.parametrize("scenario", list(scenarios.SCENARIOS))
@pytest.mark.parametrize("variant", ["ga", "beta", "azure-ga", "azure-beta"])
async def test_openai3(server, variant, scenario):
    manager, dialect = variants(server)[variant]()
    validator = ga_validator() if dialect == "ga" else beta_validator()
    async with open_driver(manager, dialect, validator, f"openai{openai.__version__}/{variant}") as d:
        await scenarios.SCENARIOS[scenario](d)


async def test_openai3_wrong_key_rejected(server):
    client = AsyncOpenAI(api_key="wrong-key", base_url=f"{server.base_url}/v1")
    with pytest.raises(Exception) as exc:
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()
    assert "401" in str(exc.value), f"expected an HTTP 401 rejection, got {exc.value!r}"


async def test_openai3_client_secret_starts_one_session(server):
    """`client.realtime.client_secrets.create` mints a secret with the server's key; a client
    holding only the secret starts a session configured as minted, once."""
    from openai.types.realtime import ClientSecretCreateResponse

    backend = AsyncOpenAI(api_key=API_KEY, base_url=f"{server.base_url}/v1")
    raw = await backend.realtime.client_secrets.with_raw_response.create(
        expires_after={"anchor": "created_at", "seconds": 120},
        session={"type": "realtime", "instructions": "Answer like a ship's captain."},
    )
    body = raw.http_response.json()
    # The answer is what the SDK's own type says (validated, not just constructed).
    minted = ClientSecretCreateResponse.model_validate(body)
    assert minted.value.startswith("ek_"), body
    assert minted.session.instructions == "Answer like a ship's captain.", body

    browser = AsyncOpenAI(api_key=minted.value, base_url=f"{server.base_url}/v1")
    async with browser.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created", created
        assert created.session.instructions == "Answer like a ship's captain."
        assert created.session.id == minted.session.id
    with pytest.raises(Exception) as exc:
        async with browser.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()
    assert "401" in str(exc.value), f"a secret starts one session: {exc.value!r}"
