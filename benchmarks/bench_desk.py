"""The desk in a real browser: end of speech to translated text on screen, and the page's CPU.

    python benchmarks/bench_desk.py                  # both modes, 3 passes of the dialogue each
    python benchmarks/bench_desk.py --modes two --loops 2

Debian's Chromium (Playwright, system browser) opens `parlons desk`'s page on the
embedded gateway (transcription `base`, the test translation models, diarisation for
the shared microphone). Chromium's fake capture plays the desk dialogue of
bench_gateway.py (visitor: turns of sample.wav in English; agent: French sentences,
espeak-ng; 1.2 s apart) in a loop, as one shared microphone (both parties mixed) or as
two microphones (one two-channel input: left the agent, right the visitor). Side by
side in the same run (`grpc-shared`, `grpc-two`): the same audio sent at real-time pace
straight to LiveConversation by a gRPC client, the same latency measured at the client,
so the page's and the desk bridge's share of the latency shows.

Measured in the page: the time each audio frame left on the WebSocket and the time
each final's translation reached the screen (the animation frame after it entered the
page). The end of a turn is the frame carrying its last sample, found by aligning what
the page sent with the file (cross-correlation): so the latency is from the end of the
speaker's words to the translation on screen, with the 0.5 s of silence that ends an
utterance included. A turn is right when every final covering it went to its speaker.
The page's CPU: user + system time of Chromium's processes (browser, renderer, audio,
GPU) over the run, in % of one core.

Translation uses small generated models (tests/translation_models.py): their output is
meaningless, their cost small; a real OPUS-MT model adds its own time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_gateway import paced, desk_audio  # noqa: E402
from common import machine, percentile  # noqa: E402
from desk_helpers import DeskThread, free_port  # noqa: E402
from parlons.serve import build_modules  # noqa: E402
from parlons.services.common.config import ParlonsConfig  # noqa: E402
from parlons.services.common.server import BackgroundServer  # noqa: E402

RATE = 16000
FRAME = 1600  # the page's frames: 100 ms per channel
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Injected before the page's own script: a WebSocket that notes when each audio frame
# left (and keeps the first 20 s of them, to align with the file), and when each final's
# translation came in and reached the screen.
PROBE = """
(() => {
  const probe = window.__probe = { sent: [], audio: [], kept: 0, arrived: {}, shown: {} };
  const Native = window.WebSocket;
  const key = (u) => `${u.party}:${u.index}:${u.start}`;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const u = JSON.parse(event.data);
        if (u.type === "utterance" && u.final && !(key(u) in probe.arrived)) probe.arrived[key(u)] = performance.now();
      });
    }
    send(data) {
      if (data instanceof ArrayBuffer) {
        probe.sent.push(performance.now());
        if (probe.kept < 20 * 16000 * 4) { probe.audio.push(Array.from(new Int16Array(data))); probe.kept += data.byteLength; }
      } else if (JSON.parse(data).type === "start" && probe.sent.length === 0) {
        probe.started = performance.now();
      }
      super.send(data);
    }
  };
  new MutationObserver(() => {
    if (!window.parlonsDesk) return;
    for (const u of window.parlonsDesk.state.utterances.values()) {
      if (!u.final || !(u.translation || u.translation_error) || key(u) in probe.shown) continue;
      probe.shown[key(u)] = -1;
      requestAnimationFrame(() => { probe.shown[key(u)] = performance.now(); });
    }
  }).observe(document, { subtree: true, childList: true });
})();
"""


@dataclass
class Turn:
    party: str
    start_s: float  # in the stream (what the page sent)
    end_s: float
    ends_at_ms: float  # page clock: when the frame with its last sample left


def _gateway(model: str, workdir: Path, diarize: bool) -> BackgroundServer:
    from translation_models import build_bilingual_model

    config = ParlonsConfig()
    config.server.port = free_port()
    config.transcription.model = model
    config.gateway.rest_enabled = False
    config.gateway.auth = "none"
    config.translation.models = [str(build_bilingual_model(workdir / "fr-en", "fr", "en")),
                                 str(build_bilingual_model(workdir / "en-fr", "en", "fr", seed=5))]
    services = ["transcription", "translation"] + (["diarization"] if diarize else []) + ["gateway"]
    return BackgroundServer(config.server, build_modules(config, services)).start(timeout_s=900)


def _cpu_ticks(marker: str) -> dict[str, int]:
    """User + system clock ticks of the Chromium launched with `marker` in its command line
    and of all its descendants, by process type."""
    parents: dict[int, int] = {}
    info: dict[int, tuple[str, int]] = {}
    root = None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Chromium rewrites its children's titles: one string, arguments joined by spaces.
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        kind = match.group(1) if (match := re.search(r"--type=(\S+)", cmdline)) else "browser"
        info[pid] = (kind, int(fields[11]) + int(fields[12]))
        if kind == "browser" and marker in cmdline and "chrom" in cmdline.split(" ", 1)[0]:
            root = pid
    ticks: dict[str, int] = {}
    for pid, (kind, used) in info.items():
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if root is not None and ancestor == root:
            ticks[kind] = ticks.get(kind, 0) + used
    return ticks


def _offset(sent: np.ndarray, reference: np.ndarray) -> int:
    """Where in the (looped) file the page's first sample was: cross-correlation."""
    looped = np.concatenate([reference, reference])
    n = 1 << int(np.ceil(np.log2(len(looped) + len(sent))))
    spectrum = np.fft.rfft(looped, n) * np.conj(np.fft.rfft(sent, n))
    return int(np.argmax(np.fft.irfft(spectrum, n)[: len(reference)]))


def _stream_turns(turns: list[tuple[int, float, float]], loops: int, length: int, offset: int,
                  sent_times: list[float]) -> list[Turn]:
    """The dialogue's turns in the stream, `offset` samples into the looped file."""
    stream: list[Turn] = []
    for loop in range(loops + 1):
        for channel, start_s, end_s in turns:
            start = round(start_s * RATE) + loop * length - offset
            end = round(end_s * RATE) + loop * length - offset
            if start < 0 or end // FRAME >= len(sent_times):
                continue
            stream.append(Turn("agent" if channel == 0 else "visitor", start / RATE, end / RATE,
                               sent_times[end // FRAME]))
    return stream


def run_grpc(mode: str, model: str, loops: int, workdir: Path) -> dict[str, object]:
    """The same dialogue straight to LiveConversation at real-time pace, as the page's."""
    from parlons.clients.sdk import GatewayClient
    from parlons.clients.desk.bridge import DeskStart, utterance_message
    from parlons.clients.sdk import open_channel

    audio, seconds, turns = desk_audio(workdir)
    two = mode == "grpc-two"
    samples = audio.T if two else audio.sum(axis=0)
    pcm = (np.clip(np.tile(samples, (loops, 1) if two else loops), -1, 1) * 32767).astype("<i2").tobytes()
    chunk = 2 * FRAME * (2 if two else 1)
    config = DeskStart("fr", "en", 2 if two else 1).config()
    gateway = _gateway(model, workdir, diarize=not two)
    channel = open_channel(gateway.address)
    started = [0.0]
    shown: dict[str, float] = {}
    finals = []
    try:
        client = GatewayClient(channel)
        for response in client.live_conversation(paced(pcm, chunk, started), config, timeout_s=loops * seconds + 300):
            now = time.monotonic()
            for u in response.utterances:
                if u.is_final:
                    message = utterance_message(u)
                    finals.append(message)
                    shown[f"{u.party}:{u.utterance_index}:{message['start']}"] = 1000 * (now - started[0])
    finally:
        channel.close()
        gateway.stop()
    sent_times = [100.0 * i for i in range(len(pcm) // chunk + 1)]
    stream = _stream_turns(turns, loops - 1, round(seconds * RATE), 0, sent_times)
    probe = {"shown": shown, "arrived": shown}
    return _score(stream, finals, probe, 1.0, {}, {}, 0)


def run_mode(mode: str, model: str, loops: int, workdir: Path) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    if mode.startswith("grpc"):
        return run_grpc(mode, model, loops, workdir)
    audio, seconds, turns = desk_audio(workdir)
    two = mode == "two"
    wav = workdir / f"desk-{mode}.wav"
    import soundfile

    samples = audio.T if two else audio.sum(axis=0)
    soundfile.write(wav, np.clip(samples, -1, 1), RATE, subtype="PCM_16")
    reference = audio.sum(axis=0)
    gateway = _gateway(model, workdir, diarize=not two)
    desk = DeskThread(gateway.address)
    flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
            page = browser.new_page()
            page.add_init_script(PROBE)
            page.goto(desk.url)
            page.select_option("#visitor-language", "en")
            if two:
                page.select_option("#microphones", "2")
                page.wait_for_function("() => document.querySelector('#visitor-device').options.length > 0")
                page.select_option("#visitor-device", page.eval_on_selector("#agent-device", "s => s.value"))
            before = _cpu_ticks(str(wav))
            wall = time.monotonic()
            page.click("#start")
            page.wait_for_function("() => window.__probe.sent.length > 0", timeout=60_000)
            time.sleep(loops * seconds)
            page.click("#start")  # Arrêter: the last finals come, then the call ends
            time.sleep(12)
            elapsed = time.monotonic() - wall
            after = _cpu_ticks(str(wav))
            probe = page.evaluate("() => window.__probe")
            finals = page.evaluate("() => [...window.parlonsDesk.state.utterances.values()].filter(u => u.final)")
            browser.close()
    finally:
        desk.stop()
        gateway.stop()

    frames = np.array(probe["audio"], dtype=np.float32).reshape(len(probe["audio"]), -1)
    sent = (frames.reshape(-1, 2).sum(axis=1) if two else frames.reshape(-1)) / 32768
    offset = _offset(sent[: 8 * RATE], reference)
    stream = _stream_turns(turns, loops, len(reference), offset, probe["sent"])
    return _score(stream, finals, probe, elapsed, before, after, offset)


def _score(stream: list[Turn], finals: list[dict], probe: dict, elapsed: float,  # type: ignore[type-arg]
           before: dict[str, int], after: dict[str, int], offset: int) -> dict[str, object]:
    key = lambda u: f"{u['party']}:{u['index']}:{u['start']}"  # noqa: E731
    latencies, arrivals, right, missed = [], [], 0, 0
    for turn in stream:
        covering = [u for u in finals if min(u["end"], turn.end_s) - max(u["start"], turn.start_s) > 0.2]
        shown = [probe["shown"].get(key(u), -1) for u in covering]
        if not covering or min(shown) < 0:
            missed += 1
            continue
        last = max(covering, key=lambda u: u["end"])
        latencies.append((probe["shown"][key(last)] - turn.ends_at_ms) / 1000)
        arrivals.append((probe["shown"][key(last)] - probe["arrived"][key(last)]) / 1000)
        right += all(u["party"] == turn.party for u in covering)
    tick = os.sysconf("SC_CLK_TCK")
    cpu = {kind: 100 * (after.get(kind, 0) - before.get(kind, 0)) / tick / elapsed for kind in after}  # Chromium
    return {"turns": len(stream), "missed": missed, "right": right, "latencies": latencies,
            "render": arrivals, "cpu": cpu, "offset_s": offset / RATE}


def report(mode: str, result: dict[str, object]) -> None:
    latencies: list[float] = result["latencies"]  # type: ignore[assignment]
    render: list[float] = result["render"]  # type: ignore[assignment]
    cpu: dict[str, float] = result["cpu"]  # type: ignore[assignment]
    label = {"shared": "page, one shared microphone", "two": "page, two microphones (one two-channel input)",
             "grpc-shared": "gRPC client, one shared microphone",
             "grpc-two": "gRPC client, two microphones"}[mode]
    print(f"\n{label}: {result['turns']} turns, {result['missed']} without a translation on screen, "
          f"{result['right']}/{result['turns'] - result['missed']} on the right side")  # type: ignore[operator]
    if latencies:
        where = "received by the client" if mode.startswith("grpc") else "on screen"
        print(f"  end of speech -> translation {where}: p50 {statistics.median(latencies):.2f} s, "
              f"p95 {percentile(latencies, 95):.2f} s, min {min(latencies):.2f} s, max {max(latencies):.2f} s")
        if not mode.startswith("grpc"):
            print(f"  of which in the page (message in -> on screen): p50 {1000 * statistics.median(render):.0f} ms, "
                  f"max {1000 * max(render):.0f} ms")
    if not cpu:
        return
    parts = ", ".join(f"{kind} {share:.1f}%" for kind, share in sorted(cpu.items(), key=lambda kv: -kv[1]))
    print(f"  Chromium CPU: {sum(cpu.values()):.1f}% of one core ({parts})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base")
    modes = ["shared", "grpc-shared", "two", "grpc-two"]
    parser.add_argument("--modes", nargs="+", choices=modes, default=modes)
    parser.add_argument("--loops", type=int, default=3, help="passes of the dialogue per mode")
    args = parser.parse_args()
    if CHROMIUM is None:
        print("Debian's chromium is needed (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    print(f"desk benchmark, {time.strftime('%Y-%m-%d')}, {machine()}, model {args.model}, "
          f"{args.loops} passes of the dialogue per mode")
    workdir = Path(tempfile.mkdtemp(prefix="parlons-bench-desk-"))
    for mode in args.modes:
        report(mode, run_mode(mode, args.model, args.loops, workdir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
