"""Anonymisation: recall and precision per entity type on the annotated French counter
dialogues, parlons beside Presidio's own French setup out of the box, in one run; speed
in characters per second; memory of the loaded NER model.

    python benchmarks/bench_anonymization.py [--corpus FILE ...] [--runs 3] [--show-misses]
                                             [--conversation-runs 3] [--skip-conversation]

Corpus, each file reported apart: tests/data/anonymization_fr_dev.txt (the rules were
written on it), then test, holdout1, holdout2, holdout3, holdout5 and holdout7, each
written blind, measured once untouched, then its classes of error fixed; in
tests/data/training/ (blind files, then training data of the learned recogniser): holdout8,
holdout9, holdout10 (the rules measured on them), holdout11 and holdout14 (the union chosen
and the rules fixed on them), holdout12, 13, 15, 16 and 17 (measured once each, then the
look-alike cues fixed on their false alarms), holdout18 and 19 (the same, a day later); and
tests/data/holdout/anonymization_fr_holdout{4,6,20,21,22}.txt, written blind: holdout4 and
holdout6 never tuned on, holdout20, 21 and 22 measured once (docs/anonymization.md). Or your own annotated files
(markup `[[TYPE|text]]`, parlons.services.anonymization.evaluation). Matching is by the
characters that would leak (evaluation.py): a gold entity is found when masked spans
cover 90 % of its letters and digits, whatever their type; a masked span is right when
half of its letters and digits are personal data.

Added latency on TranscribeConversation: the embedded gateway (transcription base,
diarisation, anonymisation) in this process; each recording transcribed with and without
`anonymization`, interleaved (A, B, A, B...), median wall of each and the service's own
anonymisation time (AnonymizationSummary.duration_s) as a share of the call. Recordings:
sample.wav (30 s, a two-person call) and a French counter request made with espeak-ng.

Presidio out of the box for French: `AnalyzerEngine` over spaCy fr_core_news_md (the same
weights, loaded from the model manager's directory) with the registry's predefined
recognisers for "fr" and every entity type it returns. A second Presidio row keeps only
its personal-data types (PERSON, EMAIL_ADDRESS, PHONE_NUMBER, IBAN_CODE, CREDIT_CARD, ...),
dropping LOCATION, ORGANIZATION, DATE_TIME and NRP, which are not personal data by
themselves. Presidio's e-mail and URL recognisers call tldextract, whose default fetches
the public suffix list from the network: it is pointed at its bundled snapshot here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, median

DATA = ROOT / "tests" / "data"
CORPORA = {"dev (tuned on)": DATA / "anonymization_fr_dev.txt",
           "test (held out, then its misses fixed)": DATA / "anonymization_fr_test.txt",
           "holdout1 (held out, then its misses fixed)": DATA / "anonymization_fr_holdout1.txt",
           "holdout2 (held out, then its misses fixed)": DATA / "anonymization_fr_holdout2.txt",
           "holdout3 (held out, then its misses fixed)": DATA / "anonymization_fr_holdout3.txt",
           "holdout5 (a tuning set, then its misses fixed)": DATA / "anonymization_fr_holdout5.txt",
           "holdout7 (held out, then its misses fixed)": DATA / "anonymization_fr_holdout7.txt",
           "holdout4 (held out, never tuned on)": DATA / "holdout" / "anonymization_fr_holdout4.txt",
           "holdout6 (held out, never tuned on)": DATA / "holdout" / "anonymization_fr_holdout6.txt",
           "holdout8 (blind, then learned recogniser training)": DATA / "training" / "anonymization_fr_holdout8.txt",
           "holdout9 (blind, then learned recogniser training)": DATA / "training" / "anonymization_fr_holdout9.txt",
           "holdout10 (blind, then learned recogniser training)": DATA / "training" / "anonymization_fr_holdout10.txt",
           "holdout11 (blind; the union was chosen and the rules fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout11.txt",
           "holdout12 (blind, measured once; then look-alike cues fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout12.txt",
           "holdout13 (blind, measured once; then look-alike cues fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout13.txt",
           "holdout14 (blind tuning file: number look-alikes; training)":
               DATA / "training" / "anonymization_fr_holdout14.txt",
           "holdout15 (blind, measured once; then look-alike cues fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout15.txt",
           "holdout16 (blind, measured once; then look-alike cues fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout16.txt",
           "holdout17 (blind, measured once; then look-alike cues fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout17.txt",
           "holdout18 (blind, measured once; then the rules fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout18.txt",
           "holdout19 (blind, measured once; then the rules fixed on it; training)":
               DATA / "training" / "anonymization_fr_holdout19.txt",
           "holdout20 (blind, measured once)": DATA / "holdout" / "anonymization_fr_holdout20.txt",
           "holdout21 (blind, measured once)": DATA / "holdout" / "anonymization_fr_holdout21.txt",
           "holdout22 (blind, measured once)": DATA / "holdout" / "anonymization_fr_holdout22.txt"}
TYPES = ("PERSON", "NIR", "IBAN", "PHONE", "EMAIL", "ADDRESS", "DATE_OF_BIRTH", "CAF_NUMBER", "TAX_NUMBER",
         "ID_DOCUMENT", "LICENSE_PLATE")
PRESIDIO_NOT_PERSONAL = {"LOCATION", "ORGANIZATION", "DATE_TIME", "NRP", "URL"}


def presidio_analyzer() -> Any:
    """Presidio's analyzer as its docs set it up for another language than English."""
    import tldextract

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    tldextract.tldextract.TLD_EXTRACTOR = offline
    tldextract.extract = offline  # type: ignore[assignment]  # presidio calls tldextract.extract(...)

    from parlons.models.manager import ModelManager
    from parlons.services.anonymization.presidio_import import import_presidio_analyzer

    import_presidio_analyzer()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    path = ModelManager().resolve("spacy-fr-core-news-md", kind="ner")
    nlp_engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "fr", "model_name": str(path)}]}).create_engine()
    registry = RecognizerRegistry(supported_languages=["fr"])
    registry.load_predefined_recognizers(languages=["fr"], nlp_engine=nlp_engine)
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["fr"])


def presidio_findings(analyzer: Any, texts: list[str], personal_only: bool) -> list[list[Any]]:
    from parlons.services.anonymization.engine import resolve_overlaps
    from parlons.services.anonymization.entities import Finding

    out = []
    for text in texts:
        results = analyzer.analyze(text=text, language="fr")
        found = [Finding(r.start, r.end, r.entity_type, float(r.score), "presidio") for r in results
                 if r.score >= 0.5 and not (personal_only and r.entity_type in PRESIDIO_NOT_PERSONAL)]
        out.append(resolve_overlaps(found))
    return out


def ner_memory_mib() -> tuple[float, float]:
    """RSS of a fresh process before and after loading the engine (NER model, Presidio,
    gazetteer), in MiB."""
    code = (
        "import os\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
        "import parlons.services.anonymization.engine as e\n"
        "before = rss()\n"
        "from parlons.models.manager import ModelManager\n"
        "engine = e.AnonymizationEngine(learned_model=ModelManager().cache_dir / 'counter-ner-fr')\n"
        "engine.anonymize(['Madame Benali, 06 12 34 56 78'])\n"
        "print(before, rss())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def conversation_latency(runs: int) -> None:
    """TranscribeConversation with and without anonymisation, side by side."""
    import subprocess as sp
    import tempfile

    from common import AUDIO

    from parlons.clients.sdk import GatewayClient, open_channel
    from parlons.serve import build_modules
    from parlons.services.common.config import ParlonsConfig
    from parlons.services.common.server import BackgroundServer
    from parlons.v1 import anonymization_pb2, transcription_pb2

    speech = Path(tempfile.mkdtemp()) / "accueil.wav"
    sp.run(["espeak-ng", "-v", "fr+f2", "-s", "150", "-w", str(speech),
            "Bonjour. Je m'appelle Fatima Benali. Mon numéro de téléphone est le 06 12 34 56 78. J'habite au "
            "12 rue des Lilas à Lyon et je suis née le 3 mars 1985."], check=True)
    config = ParlonsConfig()
    config.server.port = 0
    config.transcription.model = "base"
    config.gateway.rest_enabled = False
    server = BackgroundServer(config.server, build_modules(
        config, ["transcription", "diarization", "anonymization", "gateway"])).start(timeout_s=900)
    try:
        client = GatewayClient(open_channel(server.address))
        options = transcription_pb2.TranscriptionOptions(language="fr")
        print("\nadded latency on TranscribeConversation (embedded gateway, whisper base, CPU)")
        for path in (AUDIO / "sample.wav", speech):
            data = path.read_bytes()
            client.transcribe_conversation(data, options)  # warm-up
            plain: list[float] = []
            masked: list[float] = []
            own: list[float] = []
            spans = 0
            for _ in range(runs):
                t0 = time.perf_counter()
                client.transcribe_conversation(data, options)
                plain.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                result = client.transcribe_conversation(data, options,
                                                        anonymization=anonymization_pb2.AnonymizationOptions())
                masked.append(time.perf_counter() - t0)
                own.append(result.proto.anonymization.duration_s)
                spans = result.proto.anonymization.spans
            added = median(masked) - median(plain)
            print(f"  {path.name}: without {median(plain):.2f} s ({min(plain):.2f}-{max(plain):.2f}), with "
                  f"{median(masked):.2f} s ({min(masked):.2f}-{max(masked):.2f}); difference {added:+.2f} s "
                  f"({added / median(plain) * 100:+.1f} %, noise included); anonymisation itself "
                  f"{median(own) * 1000:.0f} ms = {median(own) / median(masked) * 100:.2f} % of the call; "
                  f"{spans} spans masked")
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="*", help="annotated files (default: the project's dev and test sets)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per system (median, spread)")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--conversation-runs", type=int, default=3, help="TranscribeConversation runs per mode")
    parser.add_argument("--skip-conversation", action="store_true", help="corpus figures only")
    args = parser.parse_args()

    from parlons.services.anonymization.engine import AnonymizationEngine
    from parlons.services.anonymization.evaluation import evaluate, read_corpus

    corpora = {Path(c).name: Path(c) for c in args.corpus} if args.corpus else {
        name: path for name, path in CORPORA.items() if path.exists()}
    print(f"anonymisation benchmark, {time.strftime('%Y-%m-%d')}, {machine()}, load average "
          f"{os.getloadavg()[0]:.1f}")
    from parlons.models.manager import ModelManager
    from parlons.services.anonymization.learned import MODEL_NAME

    learned_model = ModelManager().cache_dir / MODEL_NAME
    if not (learned_model / "ner" / "model").is_file():
        sys.exit("the learned recogniser is not installed: python scripts/train_counter_ner.py")
    started = time.perf_counter()
    engine = AnonymizationEngine(learned_model=learned_model)
    rules_only = AnonymizationEngine()
    print(f"parlons engines loaded in {time.perf_counter() - started:.1f} s (as shipped, with the learned "
          f"recogniser {learned_model}; and rules and NER only)")
    started = time.perf_counter()
    presidio = presidio_analyzer()
    print(f"presidio analyzer loaded in {time.perf_counter() - started:.1f} s; recognisers for fr: "
          + ", ".join(sorted({r.name for r in presidio.registry.recognizers if r.supported_language == 'fr'})))
    systems = {
        "parlons": lambda texts: engine.anonymize(texts).findings,
        "parlons (rules and NER only)": lambda texts: rules_only.anonymize(texts).findings,
        "presidio (all types)": lambda texts: presidio_findings(presidio, texts, personal_only=False),
        "presidio (personal types)": lambda texts: presidio_findings(presidio, texts, personal_only=True),
    }
    for label, path in corpora.items():
        lines = read_corpus([path])
        texts = [line.text for line in lines]
        chars = sum(len(t) for t in texts)
        gold = sum(len(line.entities) for line in lines)
        print(f"\n== {label}: {path.name}, {len(lines)} lines, {gold} entities, {chars} characters")
        results = {name: evaluate(lines, fn) for name, fn in systems.items()}
        header = "".join(f"{name:>28s}" for name in systems)
        print(f"  {'type':14s} {'gold':>5s}{header}   (recall / precision)")
        for kind in TYPES + ("overall",):
            cells = []
            for name in systems:
                ev = results[name]
                score = ev.overall if kind == "overall" else ev.per_type.get(kind)
                if score is None:
                    cells.append(f"{'-':>28s}")
                    continue
                precision = f"{score.precision:.3f}" if kind == "overall" or name.startswith("parlons") else "  -  "
                cells.append(f"{f'{score.recall:.3f} / {precision}':>28s}")
            own = results["parlons"].overall if kind == "overall" else results["parlons"].per_type.get(kind)
            gold_n = own.gold if own is not None else 0
            print(f"  {kind:14s} {gold_n:5d}{''.join(cells)}")
        for name in systems:
            ev = results[name]
            off_types = {k: s.predicted for k, s in ev.per_type.items() if k not in TYPES and s.predicted}
            if off_types:
                wrong = {k: s.predicted - s.right for k, s in ev.per_type.items() if k not in TYPES and s.predicted}
                print(f"  {name}: spans of its own types (predicted / not personal data): "
                      + ", ".join(f"{k} {v}/{wrong[k]}" for k, v in sorted(off_types.items())))
        timings: dict[str, list[float]] = {name: [] for name in systems if name != "presidio (personal types)"}
        for _ in range(args.runs):
            for name in timings:
                t0 = time.perf_counter()
                systems[name](texts)
                timings[name].append(time.perf_counter() - t0)
        speed = {name: chars / median(v) for name, v in timings.items()}
        spread = {name: (chars / max(v), chars / min(v)) for name, v in timings.items()}
        print("  speed, characters per second (median of "
              f"{args.runs}; min-max): " + "; ".join(
                  f"{n} {speed[n]:,.0f} ({spread[n][0]:,.0f}-{spread[n][1]:,.0f})" for n in speed)
              + f"; parlons / presidio {speed['parlons'] / speed['presidio (all types)']:.2f}x")
        if args.show_misses:
            for kind, score in sorted(results["parlons"].per_type.items()):
                for miss in score.missed:
                    print(f"    MISS {kind}: {miss}")
                for alarm in score.false_alarms:
                    print(f"    FALSE ALARM {kind}: {alarm}")
    if not args.skip_conversation:
        conversation_latency(args.conversation_runs)
    before, after = ner_memory_mib()
    print(f"\nmemory: a fresh process at {before:.0f} MiB grows to {after:.0f} MiB with the engine loaded "
          f"(+{after - before:.0f} MiB: spaCy fr_core_news_md, Presidio, the name gazetteer, the learned "
          "recogniser)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
