"""Shared-microphone attribution by voice prints (services/gateway/voices.py), measured.

Two-party dialogues are built from real speech: the solo turns (no one else talking) of
each speaker of the AMI excerpts in ../shared/data/meetings (by meetings.rttm), long
turns cut into utterances of 0.8-3.5 s, strung into dialogues of 14 utterances where
the turn passes to the other party 65 % of the time. Settings were chosen on the
dialogues of the `trn*` speakers; the `dev*` speakers (other people, other meetings)
and the 13 turns of sample.wav (a phone call, from sample.stm) are reported apart.
"Right" means the party the attribution gives is the speaker's (the first voice heard is
the first party; with enrolment, the enrolled voice is the first party, enrolled with
an utterance of that speaker that the dialogue does not contain).

Side by side, on the same embeddings: voice prints, and turn taking alone (what a shared
microphone gets without the diarisation service). Then the cost per final: embedding
the utterance (what the desk does now) against diarising the last 30 s (what it did
before), on this machine, same run.

    python benchmarks/bench_voices.py --dialogues 6
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np

from common import AUDIO, DATA, machine
from parlons.services.common.audio import DecodedAudio, decode_audio
from parlons.services.gateway.voices import VoicePrints

MEETINGS = DATA / "meetings"
SCORED_S = 30.0  # meetings.rttm is scored on 0-30 s


@dataclass(frozen=True)
class Utterance:
    speaker: str
    seconds: float
    vector: np.ndarray | None


def rttm_turns(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    turns: dict[str, list[tuple[float, float, str]]] = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        start = float(fields[3])
        turns.setdefault(fields[1], []).append((start, min(start + float(fields[4]), SCORED_S), fields[7]))
    return turns


def solo_turns(turns: list[tuple[float, float, str]]) -> list[tuple[str, float, float]]:
    """Each speaker's stretches with no one else talking (10-ms grid), pauses under
    0.3 s bridged, 0.3 s or longer."""
    names = sorted({n for *_, n in turns})
    grid = np.zeros((len(names), int(SCORED_S * 100)), dtype=bool)
    for start, end, name in turns:
        grid[names.index(name), int(start * 100) : int(end * 100)] = True
    solo = grid & (grid.sum(axis=0) == 1)
    out: list[tuple[str, float, float]] = []
    for k, name in enumerate(names):
        edges = np.diff(np.concatenate([[0], solo[k].astype(int), [0]]))
        merged: list[list[int]] = []
        for a, b in zip(np.where(edges == 1)[0], np.where(edges == -1)[0]):
            if merged and a - merged[-1][1] < 30 and not grid[:, merged[-1][1] : a].any():
                merged[-1][1] = b
            else:
                merged.append([a, b])
        out += [(name, a / 100, b / 100) for a, b in merged if b - a >= 30]
    return out


def meeting_utterances(engine, rng: random.Random) -> dict[str, tuple[str, list[Utterance]]]:  # type: ignore[no-untyped-def]
    """speaker -> (set, utterances): solo turns cut to 0.8-3.5 s and embedded."""
    speakers: dict[str, tuple[str, list[Utterance]]] = {}
    for uri, turns in sorted(rttm_turns(MEETINGS / "meetings.rttm").items()):
        audio = decode_audio((MEETINGS / f"{uri}.flac").read_bytes())
        spans: list[tuple[str, float, float]] = []
        for name, start, end in solo_turns(turns):
            at = start
            while end - at >= 0.3:
                length = end - at if end - at < 4.0 else rng.uniform(0.8, 3.5)
                spans.append((name, at, min(at + length, end)))
                at += length
        vectors = engine.embed_voices(audio, [(a, b) for _, a, b in spans])
        for (name, a, b), vector in zip(spans, vectors):
            group = "dev" if uri.startswith("dev") else "trn"
            entry = speakers.setdefault(name, (group, []))
            entry[1].append(Utterance(name, b - a, None if np.isnan(vector).any() else vector))
    return {name: entry for name, entry in speakers.items() if len(entry[1]) >= 4}


def dialogues(speakers: dict[str, tuple[str, list[Utterance]]], group: str, per_pair: int, seed: int):  # type: ignore[no-untyped-def]
    """(utterances with their true party 0/1, enrolment utterance of party 0 or None)."""
    rng = random.Random(seed)
    names = [n for n, (g, _) in speakers.items() if g == group]
    out = []
    for a, b in itertools.permutations(names, 2):
        for _ in range(per_pair):
            pool_a, pool_b = speakers[a][1][:], speakers[b][1][:]
            rng.shuffle(pool_a)
            rng.shuffle(pool_b)
            enrolment = next((u for u in pool_a if u.seconds >= 2.0 and u.vector is not None), None)
            if enrolment is not None:
                pool_a.remove(enrolment)
            sequence, who, taken = [], 0, [0, 0]
            for turn in range(14):
                if turn and rng.random() < 0.65:
                    who = 1 - who
                pool = pool_a if who == 0 else pool_b
                sequence.append((who, pool[taken[who] % len(pool)]))
                taken[who] += 1
            out.append((sequence, enrolment))
    return out


def score(cases, method: str, enrolled: bool) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """Share of utterances right over all dialogues, the worst dialogue's share, count."""
    right = total = 0
    worst = 1.0
    count = 0
    for sequence, enrolment in cases:
        if enrolled and enrolment is None:
            continue
        prints = VoicePrints()
        if enrolled:
            prints.enrol(0, enrolment.vector)
        last: int | None = None
        good = 0
        for truth, utterance in sequence:
            if method == "turn taking":
                party = 0 if last is None else 1 - last
            else:
                party = prints.attribute(utterance.vector, utterance.seconds, last).party
                prints.learn(party, utterance.vector, utterance.seconds)
            good += party == truth
            last = party
        right += good
        total += len(sequence)
        worst = min(worst, good / len(sequence))
        count += 1
    return (right / total if total else float("nan")), worst, count


def sample_dialogue(engine):  # type: ignore[no-untyped-def]
    from speech import stm_turns

    turns = stm_turns(AUDIO / "sample.stm")
    audio = decode_audio((AUDIO / "sample.wav").read_bytes())
    vectors = engine.embed_voices(audio, [(s, e) for _, s, e, _ in turns])
    first = turns[0][0]
    return [([(0 if name == first else 1, Utterance(name, e - s, v)) for (name, s, e, _), v in zip(turns, vectors)], None)]


def costs(engine, runs: int) -> None:  # type: ignore[no-untyped-def]
    """Per final: embed the utterance (now) vs diarise the last 30 s (before)."""
    from speech import stm_turns

    audio = decode_audio((AUDIO / "sample.wav").read_bytes())
    turns = [(s, e) for _, s, e, _ in stm_turns(AUDIO / "sample.stm")]
    embed_ms_per_s, diarise_s = [], []
    for _ in range(runs):
        for start, end in turns:
            started = time.perf_counter()
            engine.embed_voices(audio, [(start, end)])
            embed_ms_per_s.append(1000 * (time.perf_counter() - started) / (end - start))
        started = time.perf_counter()
        engine.diarize(DecodedAudio.from_array(audio.mono()[: int(30 * 16000)]), min_speakers=1, max_speakers=2)
        diarise_s.append(time.perf_counter() - started)
    per_turn = statistics.median(embed_ms_per_s)
    mean_turn = statistics.mean(e - s for s, e in turns)
    print(f"\ncost per final ({runs} runs, {engine.config.threads} thread(s) per request):")
    print(f"  embed the utterance: median {per_turn:.0f} ms per second of speech "
          f"({per_turn * mean_turn / 1000:.2f} s for the mean turn of {mean_turn:.1f} s)")
    print(f"  diarise the last 30 s (before): median {statistics.median(diarise_s):.2f} s "
          f"(spread {min(diarise_s):.2f}-{max(diarise_s):.2f})")
    print(f"  ratio: {statistics.median(diarise_s) / (per_turn * mean_turn / 1000):.0f}x less work per final")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=6, help="dialogues per ordered speaker pair")
    parser.add_argument("--cost-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from parlons.services.diarization.engine import DiarizationEngine

    engine = DiarizationEngine()
    print(f"voice attribution, {machine()}, embedding {engine.embedding_model}")
    speakers = meeting_utterances(engine, random.Random(args.seed))
    for group in ("trn", "dev"):
        names = [f"{n} ({len(u)})" for n, (g, u) in speakers.items() if g == group]
        print(f"  {group} speakers (utterances): {', '.join(names)}")
    sets = {
        "trn (chosen on)": dialogues(speakers, "trn", args.dialogues, args.seed + 1),
        "dev": dialogues(speakers, "dev", max(args.dialogues, 10), args.seed + 2),
        "sample.wav, 13 turns": sample_dialogue(engine),
    }
    print(f"\n{'set':22s} {'method':12s} {'enrolled':8s} {'right':>6s} {'worst':>6s} {'dialogues':>9s}")
    for name, cases in sets.items():
        for method in ("voice prints", "turn taking"):
            for enrolled in (False, True):
                if enrolled and (method == "turn taking" or cases[0][1] is None and len(cases) == 1):
                    continue
                share, worst, count = score(cases, method, enrolled)
                print(f"{name:22s} {method:12s} {'yes' if enrolled else 'no':8s} {share:6.1%} {worst:6.1%} {count:9d}")
    costs(engine, args.cost_runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
