"""Translation quality on FLORES: BLEU and chrF of every installed translation model.

The models are the service's own: with no `--models`, every translation model the model
cache holds (services/translation/discovery.py, as `parlons serve` finds them), or the
`[translation] models` of the configuration; `--models` names catalog names or model
directories instead. They are loaded by the translation service's own module
(`TranslationModule.load`: same layouts, device, precision, threads, micro-batcher) and
every sentence goes through `TranslationEngine.translate` with the service's beam size,
so the scores are those of what users get (sentence splitting, protected spans and all).

Data: the first 200 sentences of the FLORES-101 devtest split, multi-way parallel, in
French, English, Ukrainian, Arabic, Spanish, German, Russian, Turkish, Romanian and
Persian (benchmarks/data/flores/, origin and licence in its README.md). Every pair that a
model serves directly among these languages, with French or English on one side, is
scored; a pair with French that no model serves directly but the service reaches
through English (`uk > en > fr` with two OPUS-MT models) is scored as that route.

Scores: sacreBLEU corpus BLEU (13a tokenisation) and chrF (chrF2, character 6-grams), the
settings of the OPUS-MT leaderboard and of Mozilla's evaluation, beside the figures those
publish for the same model and pair (benchmarks/data/flores/published.json: only figures
with a source; "not published" otherwise). The published figures are on the whole devtest
(1012 sentences) with their own decoding settings; ours are on the first 200 sentences:
compare them loosely.

Models with random weights (the tests' models) give scores that mean nothing, and the
benchmark says so for each such model: a test model is recognised by its files (a
`parlons.json` with `"random_weights": true` or `"test": true`, or a SentencePiece
vocabulary of a few hundred pieces where real models have tens of thousands), and any
model by its behaviour: a model that translates scores far better against the right
references than against the references of other sentences; one whose output does not
depend on its input (random weights, a broken conversion) scores the same against both.

Usage: python benchmarks/bench_mt_quality.py [--models opus-mt-fr-en,opus-mt-en-fr]
       [--pairs fr-en,en-fr | --hubs fr] [--limit 200] [--beam-size 4] [--device cuda] [--json out.json]
A multilingual model serves 36 of these pairs: on a CPU, narrow with --hubs fr (the 20
pairs with French) or --pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sacrebleu.metrics import BLEU, CHRF  # noqa: E402

from common import machine  # noqa: E402
from parlons.models.manager import ModelManager  # noqa: E402
from parlons.services.common.config import load_config  # noqa: E402
from parlons.errors import ParlonsError  # noqa: E402
from parlons.services.translation import languages  # noqa: E402
from parlons.services.translation.discovery import model_sources  # noqa: E402
from parlons.services.translation.engine import TranslationEngine  # noqa: E402
from parlons.services.translation.layouts import METADATA_FILE  # noqa: E402
from parlons.services.translation.model import TranslationModel  # noqa: E402
from parlons.services.translation.servicer import TranslationModule  # noqa: E402

FLORES = HERE / "data" / "flores"
PUBLISHED = FLORES / "published.json"
#: A SentencePiece model with fewer pieces than this is not a real translation model's
#: (OPUS-MT: 30-60k, M2M100: 128k, NLLB-200: 256k); the tests' models have ~160.
MIN_REAL_VOCABULARY = 2000
#: chrF against the right references minus chrF against those of other sentences: a
#: model that translates gains tens of points; output that ignores the source, ~0.
MIN_SOURCE_DEPENDENCE = 5.0
RANDOM_WEIGHTS = "scores of a model with random weights mean nothing"


@dataclass(frozen=True)
class Scores:
    bleu: float
    chrf: float


def score(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """Corpus BLEU and chrF (0-100) of hypotheses against one reference each."""
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    hyps, refs = list(hypotheses), [list(references)]
    return Scores(BLEU().corpus_score(hyps, refs).score, CHRF().corpus_score(hyps, refs).score)


def signatures() -> str:
    bleu, chrf = BLEU(), CHRF()
    bleu.corpus_score(["a b c d"], [["a b c d"]])
    chrf.corpus_score(["a b c d"], [["a b c d"]])
    return f"BLEU {bleu.get_signature()}; chrF {chrf.get_signature()}"


def misaligned_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """chrF against the reference of the next sentence: what output unrelated to its
    source scores in the same language and domain."""
    shifted = list(references[1:]) + list(references[:1])
    return CHRF().corpus_score(list(hypotheses), [shifted]).score


# --- data -----------------------------------------------------------------------------


def load_flores(limit: int | None = None, directory: Path = FLORES) -> dict[str, list[str]]:
    """{language: sentences}, line i of every language being the same sentence."""
    data = {path.name.split(".")[1]: [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            for path in sorted(directory.glob("devtest.*.txt"))}
    counts = {len(lines) for lines in data.values()}
    if len(counts) != 1:
        raise SystemExit(f"{directory}: the languages do not have the same number of sentences: "
                         f"{ {lang: len(lines) for lang, lines in data.items()} }")
    return {lang: lines[:limit] for lang, lines in data.items()}


@dataclass(frozen=True)
class Published:
    bleu: float | None
    chrf: float | None
    source: str
    detail: str

    def cell(self, ref: int) -> str:
        bleu = f"{self.bleu:.1f}" if self.bleu is not None else "-"
        chrf = f"{self.chrf:.1f}" if self.chrf is not None else "-"
        return f"{bleu} / {chrf} [{ref}]"


def load_published(path: Path = PUBLISHED) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], list[Published]]]:
    """(source key -> its name, title and url; (model, pair) -> figures) from published.json."""
    data = json.loads(path.read_text(encoding="utf-8"))
    figures: dict[tuple[str, str], list[Published]] = {}
    for f in data["figures"]:
        detail = f"{f['path']} @ {f['commit'][:12]}" + (f" ({f['note']})" if f.get("note") else "")
        figures.setdefault((f["model"], f["pair"]), []).append(
            Published(f.get("bleu"), f.get("chrf"), f["source"], detail))
    return data["sources"], figures


# --- models ---------------------------------------------------------------------------


def random_weights_reason(model: TranslationModel) -> str | None:
    """Why this model's files say it is a test model with random weights, or None."""
    layout = model.layout
    for directory in (layout.model_dir, layout.model_dir.parent):
        meta_path = directory / METADATA_FILE
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {}
            if isinstance(meta, dict) and (meta.get("random_weights") or meta.get("test")):
                return f"{meta_path.name} marks it as a test model"
    pieces = min(layout.source_sp.get_piece_size(), layout.target_sp.get_piece_size())
    if pieces < MIN_REAL_VOCABULARY:
        return (f"a SentencePiece vocabulary of {pieces} pieces, where real translation models have "
                f"tens of thousands: a test model")
    return None


def serves(model: TranslationModel, source: str, target: str) -> bool:
    return (source != target and languages.closest(source, model.source_languages) is not None
            and languages.closest(target, model.target_languages) is not None)


def candidate_pairs(langs: Sequence[str], hubs: Sequence[str], only: Sequence[str]) -> list[tuple[str, str]]:
    """Ordered pairs of the data languages with a hub language (fr, en) on one side, or
    exactly the `only` pairs; French pairs first."""
    if only:
        split = [p.split("-") for p in only]
        if any(len(p) != 2 or p[0] == p[1] or not set(p) <= set(langs) for p in split):
            raise SystemExit(f"--pairs {','.join(only)}: give source-target pairs of {', '.join(langs)}")
        return [(a, b) for a, b in split]
    pairs = [(a, b) for a in langs for b in langs if a != b and (a in hubs or b in hubs)]
    return sorted(pairs, key=lambda p: (0 if "fr" in p else 1, p))


# --- the run --------------------------------------------------------------------------


@dataclass
class Result:
    model: str
    pair: str
    sentences: int
    bleu: float
    chrf: float
    chrf_misaligned: float
    sentences_per_s: float
    published: list[Published] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def meaningless(self) -> bool:
        return bool(self.warnings)


async def measure(engine: TranslationEngine, model_name: str, label: str, source: str, target: str,
                  data: dict[str, list[str]], beam: int, test_reasons: dict[str, str | None],
                  published: dict[tuple[str, str], list[Published]]) -> Result:
    sources, references = data[source], data[target]
    await engine.translate(sources[:1], target, source, model=model_name, beam_size=beam)  # warm-up
    started = time.perf_counter()
    out = await engine.translate(sources, target, source, model=model_name, beam_size=beam)
    wall = time.perf_counter() - started
    hypotheses = [t.text for t in out]
    scores = score(hypotheses, references)
    misaligned = misaligned_chrf(hypotheses, references)
    warnings = [f"MEANINGLESS: {name}: {RANDOM_WEIGHTS} ({reason})"
                for name in label.split(">") if (reason := test_reasons.get(name))]
    if len(references) > 1 and scores.chrf - misaligned < MIN_SOURCE_DEPENDENCE:
        warnings.append(
            f"MEANINGLESS: {label} {source}-{target}: the output does not depend on the source (chrF "
            f"{scores.chrf:.1f} against the right references, {misaligned:.1f} against those of other "
            "sentences): random weights or a broken conversion; these scores mean nothing")
    return Result(label, f"{source}-{target}", len(sources), scores.bleu, scores.chrf, misaligned,
                  len(sources) / wall if wall > 0 else float("inf"),
                  published.get((label, f"{source}-{target}"), []), warnings)


def table(results: Sequence[Result]) -> tuple[str, list[Published]]:
    cited: list[Published] = []
    lines = ["| model | pair | sentences | BLEU | chrF | published BLEU / chrF | sentences/s | check |",
             "|---|---|---:|---:|---:|---|---:|---|"]
    for r in results:
        cells = []
        for p in r.published:
            if p not in cited:
                cited.append(p)
            cells.append(p.cell(cited.index(p) + 1))
        lines.append(f"| {r.model} | {r.pair} | {r.sentences} | {r.bleu:.1f} | {r.chrf:.1f} | "
                     f"{'; '.join(cells) or 'not published'} | {r.sentences_per_s:.1f} | "
                     f"{'MEANINGLESS' if r.meaningless else 'ok'} |")
    return "\n".join(lines), cited


async def run(args: argparse.Namespace) -> list[Result]:
    data = load_flores(args.limit)
    langs = list(data)
    pairs = candidate_pairs(langs, args.hubs, args.pairs)
    config = load_config(args.config)
    settings = config.translation
    if args.models:
        settings.models = list(args.models)
    settings.detect_language = False  # the benchmark names the source language
    if args.device:
        settings.device = args.device
    if args.compute_type:
        settings.compute_type = args.compute_type
    beam = args.beam_size or settings.beam_size
    sources, refused = model_sources(settings.models, ModelManager())
    print(f"machine: {machine()}")
    print(f"models: {', '.join(s.name for s in sources) or 'none'}"
          + ("" if settings.models else " (every translation model of the model cache)"), flush=True)
    for item in refused:
        print(f"refused: {item.name}: {item.reason}", flush=True)
    module = TranslationModule(settings, max_message_mb=config.server.max_message_mb)
    await module.load()
    engine = module.ready_engine()
    results: list[Result] = []
    try:
        if not engine.models:
            print("no translation model could be loaded: nothing to score (`parlons models pull opus-mt-fr-en`)")
            return results
        reasons = {m.name: random_weights_reason(m) for m in engine.models}
        sources_cited, published = load_published()
        devices = sorted({f"{m.device} {m.compute_type}" for m in engine.models})
        print(f"FLORES-101 devtest, first {len(data['en'])} sentences; beam {beam}; {', '.join(devices)}; "
              f"{signatures()}", flush=True)
        jobs: list[tuple[str, str, str, str]] = []  # (model to force, label, source, target)
        for model in engine.models:
            jobs += [(model.name, model.name, s, t) for s, t in pairs if serves(model, s, t)]
        for s, t in pairs:
            if any(serves(m, s, t) for m in engine.models):
                continue
            try:
                route = engine.registry.route(s, t)
            except ParlonsError:
                continue
            if route.pivot:
                jobs.append(("", route.model_name, s, t))
        for model_name, label, s, t in jobs:
            result = await measure(engine, model_name, label, s, t, data, beam, reasons, published)
            results.append(result)
            print(f"{label} {result.pair}: BLEU {result.bleu:.1f}, chrF {result.chrf:.1f} "
                  f"(misaligned {result.chrf_misaligned:.1f}), {result.sentences_per_s:.1f} sentences/s"
                  + (" MEANINGLESS" if result.meaningless else ""), flush=True)
        if not jobs:
            print(f"no model serves a pair of {', '.join(langs)} with {' or '.join(args.hubs)}: nothing to score")
            return results
        text, cited = table(results)
        print("\n" + text)
        if cited:
            print(f"\npublished figures: whole devtest (1012 sentences), each publisher's decoding; ours: the "
                  f"first {len(data['en'])} sentences, beam {beam}")
            for i, p in enumerate(cited, 1):
                print(f"[{i}] {sources_cited.get(p.source, {}).get('name', p.source)}: {p.detail}")
            for key in dict.fromkeys(p.source for p in cited):
                about = sources_cited.get(key, {})
                print(f"{about.get('name', key)}: {about.get('title', '')} ({about.get('url', '')})")
        warnings = list(dict.fromkeys(w for r in results for w in r.warnings))
        if warnings:
            print()
            for w in warnings:
                print(w)
        if args.json:
            Path(args.json).write_text(json.dumps(
                [{**asdict(r), "meaningless": r.meaningless} for r in results], ensure_ascii=False, indent=1))
        return results
    finally:
        await module.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    def names(text: str) -> list[str]:
        return [n.strip() for n in text.split(",") if n.strip()]

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=names, default=[],
                        help="catalog names or model directories (default: every installed translation model)")
    parser.add_argument("--pairs", type=names, default=[], help="source-target pairs only, e.g. fr-en,en-uk")
    parser.add_argument("--hubs", type=names, default=["fr", "en"],
                        help="score the pairs with one of these languages on one side (default fr,en)")
    parser.add_argument("--limit", type=int, default=200, help="sentences per pair (at most 200)")
    parser.add_argument("--beam-size", type=int, default=0, help="default: the service's [translation] beam_size")
    parser.add_argument("--device", default="", help="auto, cpu or cuda (default: the service's setting)")
    parser.add_argument("--compute-type", default="", help="default: the service's setting")
    parser.add_argument("--config", default=None, help="a parlons TOML configuration")
    parser.add_argument("--json", default="", help="write the results here as JSON")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
