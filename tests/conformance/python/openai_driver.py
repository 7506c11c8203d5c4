"""Driver over the `openai` Python package's realtime connection (works for 1.x and 3.x)."""
from __future__ import annotations

import base64
import contextlib

from scenarios import Driver


class OpenAIDriver(Driver):
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

    async def response_create(self):
        await self.conn.response.create()

    async def response_cancel(self):
        await self.conn.response.cancel()

    async def truncate(self, item_id, content_index, audio_end_ms):
        await self.conn.conversation.item.truncate(item_id=item_id, content_index=content_index, audio_end_ms=audio_end_ms)

    async def append_audio(self, pcm):
        await self.conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())

    async def function_output(self, call_id, output):
        await self.conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call_id, "output": output}
        )

    async def send_raw(self, event):
        await self.conn.send(event)


@contextlib.asynccontextmanager
async def open_driver(manager, dialect, validator, label):
    async with manager as conn:
        d = OpenAIDriver(conn, dialect, validator, label)
        async with d.checked():
            yield d
