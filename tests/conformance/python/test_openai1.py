"""PyPI `openai<2` (1.x) against brazen: `client.beta.realtime` (+ Azure), and GA `client.realtime` where present.

Every server event is validated strictly against this package's own pydantic types.
"""
import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

import scenarios
from brazen_server import API_KEY
from openai_driver import open_driver
from strict_openai import beta_validator, ga_validator

assert openai.__version__.startswith("1."), openai.__version__

AZURE_API_VERSION = "2025-04-01-preview"


def variants(server):
    http, ws = server.base_url, server.ws_base
    return {
        # 1.x always uses wss from base_url, so websocket_base_url is needed for ws://
        "beta": lambda: (
            AsyncOpenAI(api_key=API_KEY, base_url=f"{http}/v1", websocket_base_url=f"{ws}/v1").beta.realtime.connect(
                model="gpt-4o-realtime-preview"
            ),
            "beta",
        ),
        "azure-beta": lambda: (
            AsyncAzureOpenAI(
                azure_endpoint=http, api_key=API_KEY, api_version=AZURE_API_VERSION, websocket_base_url=f"{ws}/openai"
            ).beta.realtime.connect(model="gpt-4o-realtime-preview"),
            "beta",
        ),
        "ga": lambda: (
            AsyncOpenAI(api_key=API_KEY, base_url=f"{http}/v1", websocket_base_url=f"{ws}/v1").realtime.connect(
                model="gpt-realtime"
            ),
            "ga",
        ),
    }


@pytest.mark.parametrize("scenario", list(scenarios.SCENARIOS))
@pytest.mark.parametrize("variant", ["beta", "azure-beta", "ga"])
async def test_openai1(server, variant, scenario):
    manager, dialect = variants(server)[variant]()
    validator = ga_validator() if dialect == "ga" else beta_validator()
    async with open_driver(manager, dialect, validator, f"openai{openai.__version__}/{variant}") as d:
        await scenarios.SCENARIOS[scenario](d)
