"""Driver over the `openai` Python package's realtime connection (works for 1.x and 3.x)."""
from __future__ import annotations

import contextlib

from scenarios import ConnectionDriver


class OpenAIDriver(ConnectionDriver):
    def __init__(self, conn, dialect: str, validator, label: str):
        super().__init__()
        self.conn = conn
        self.dialect = dialect
        self.validator = validator
        self.label = label

    async def _recv_raw(self):
        return await self.conn.recv_bytes()

    def _check(self, raw, ev):
        problems = self.validator(raw, ev)
        try:  # what the application would get from the SDK
            self.conn.parse_event(raw)
        except Exception as e:  # noqa: BLE001
            problems.append(f"SDK parse_event raised {type(e).__name__}: {e}")
        return problems

    async def session_update(self, session):
        await self.conn.session.update(session=session)

    async def user_text(self, text):
        await self.conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        )

    async def function_output(self, call_id, output):
        await self.conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call_id, "output": output}
        )



@contextlib.asynccontextmanager
async def open_driver(manager, dialect, validator, label):
    async with manager as conn:
        d = OpenAIDriver(conn, dialect, validator, label)
        async with d.checked():
            yield d
