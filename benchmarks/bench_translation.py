"""Translation throughput and latency: micro-batching vs one call per request vs raw CTranslate2.

A Marian-sized random model (6+6 layers, d_model 512, 8 heads, FFN 2048, 32k vocabulary,
int8 on CPU) is built once (random weights: the cost of a real OPUS-MT model, gibberish
output). A random model never decides to stop, so every mode decodes the same fixed
number of target tokens per sentence (`--decode-tokens`, about the source length): a
real model stops each sentence at its own end, which this keeps equal across modes.
Then:

* closed loop: N concurrent clients, each sending single sentences back to back;
  - micro-batched: the real engine (TranslationEngine -> MicroBatcher -> translate_batch);
  - per request: one `translate_batch([sentence])` per request in a thread pool (a naive
    server), same translator settings;
  - raw CTranslate2: the same sentences in `translate_batch` calls of `--clients`
    sentences each, back to back (batching with zero overhead: the ceiling);
* open loop: the same clients sending at a fixed total rate (a reception desk: people
  speak, then listen), latency percentiles for both server styles;
* documents: DOCX pages per second through TranslationEngine.translate_document.

Usage: python benchmarks/bench_translation.py [--clients 64] [--quick]
Prints a table and side-by-side ratios (copied into docs/translation.md).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import ctranslate2  # noqa: E402

import translation_models as tm  # noqa: E402
from parlons.services.translation.engine import TranslationEngine  # noqa: E402
from parlons.services.translation.layouts import load_layout  # noqa: E402
from parlons.services.translation.model import RuntimeOptions, TranslationModel  # noqa: E402

SENTENCES = [
    "Bonjour, je voudrais renouveler mon titre de séjour.",
    "Merci de présenter une pièce d'identité et un justificatif de domicile.",
    "La caisse d'allocations familiales vous répondra sous quinze jours.",
    "Votre dossier est en cours d'instruction à la préfecture.",
    "Pouvez-vous revenir demain matin avec votre passeport ?",
    "Il manque une photo d'identité récente dans votre demande.",
    "Vous pouvez aussi faire cette démarche en ligne sur le site officiel.",
    "Je ne comprends pas le courrier que j'ai reçu la semaine dernière.",
    "Le guichet ferme à midi, mais vous pouvez prendre rendez-vous.",
    "Avez-vous déjà un numéro de dossier ou une convocation ?",
    "Signez ici, puis gardez bien le récépissé de dépôt.",
    "Nous allons vérifier vos droits avec le service compétent.",
    "Votre enfant doit être présent lors du rendez-vous.",
    "Hello, I would like to renew my residence permit.",
    "La demande de logement social se fait auprès de la mairie.",
    "Attendez votre tour, un agent va vous appeler.",
]


def build_marian_sized(directory: Path) -> Path:
    """6+6 layers, d=512, 8 heads, FFN 2048, 32k vocabulary, int8 weights (cached)."""
    if (directory / "model.bin").exists():
        return directory
    # BPE with 800 pieces on these sentences: ~1.35 pieces per word, as OPUS-MT's vocabularies give.
    sp_bytes = tm.train_sentencepiece(800, corpus=tm.CORPUS + SENTENCES, model_type="bpe")
    vocab = tm.sentencepiece_vocabulary(sp_bytes)
    vocab += [f"\u2581w{i}" for i in range(32_000 - len(vocab))]
    tm.build_transformer(directory, vocab, layers=6, d_model=512, heads=8, ffn=2048,
                         quantization="int8", seed=11)
    (directory / "source.spm").write_bytes(sp_bytes)
    (directory / "target.spm").write_bytes(sp_bytes)
    (directory / "parlons.json").write_text(
        '{"layout": "marian", "source_languages": ["fr"], "target_languages": ["en"]}')
    return directory


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, latencies: list[float], wall: float) -> dict[str, float | str]:
    return {"mode": name, "sentences": len(latencies), "wall_s": wall,
            "throughput": len(latencies) / wall if wall else 0.0,
            "p50_ms": 1000 * pct(latencies, 0.5), "p95_ms": 1000 * pct(latencies, 0.95),
            "mean_ms": 1000 * statistics.fmean(latencies)}


async def closed_loop_batched(engine: TranslationEngine, clients: int, per_client: int) -> dict[str, float | str]:
    latencies: list[float] = []

    async def client(c: int) -> None:
        for r in range(per_client):
            sentence = SENTENCES[(c * per_client + r) % len(SENTENCES)]
            started = time.perf_counter()
            await engine.translate([sentence], "en", "fr")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return summary("micro-batched", latencies, time.perf_counter() - started)


DECODE_TOKENS = 16


def per_request_call(translator: ctranslate2.Translator, tokens: list[str], beam: int) -> list[str]:
    result = translator.translate_batch([tokens], beam_size=beam, max_decoding_length=DECODE_TOKENS)
    return result[0].hypotheses[0]


async def closed_loop_per_request(translator: ctranslate2.Translator, model: TranslationModel, clients: int,
                                  per_client: int, beam: int) -> dict[str, float | str]:
    pool = ThreadPoolExecutor(max_workers=clients)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []

    async def client(c: int) -> None:
        for r in range(per_client):
            sentence = SENTENCES[(c * per_client + r) % len(SENTENCES)]
            started = time.perf_counter()
            tokens = model.layout.source_tokens(sentence, "fr", "en")
            await loop.run_in_executor(pool, per_request_call, translator, tokens, beam)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    pool.shutdown()
    return summary("one call per request", latencies, time.perf_counter() - started)


def raw_ctranslate2(translator: ctranslate2.Translator, model: TranslationModel, count: int, beam: int,
                    max_batch_tokens: int, per_call: int) -> dict[str, float | str]:
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(count)]
    tokens = [model.layout.source_tokens(s, "fr", "en") for s in sentences]
    started = time.perf_counter()
    for start in range(0, count, per_call):
        translator.translate_batch(tokens[start:start + per_call], beam_size=beam, max_batch_size=max_batch_tokens,
                                   batch_type="tokens", max_decoding_length=DECODE_TOKENS)
    wall = time.perf_counter() - started
    return {"mode": f"raw CTranslate2 ({per_call} per call)", "sentences": count, "wall_s": wall,
            "throughput": count / wall, "p50_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan")}


async def open_loop(send, rate: float, duration_s: float, seed: int = 0) -> list[float]:  # type: ignore[no-untyped-def]
    """Poisson arrivals at `rate` sentences/s in total; latency of each."""
    rng = random.Random(seed)
    latencies: list[float] = []
    tasks = []

    async def one(sentence: str) -> None:
        started = time.perf_counter()
        await send(sentence)
        latencies.append(time.perf_counter() - started)

    end = time.perf_counter() + duration_s
    i = 0
    while time.perf_counter() < end:
        tasks.append(asyncio.create_task(one(SENTENCES[i % len(SENTENCES)])))
        i += 1
        await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*tasks)
    return latencies


def unique_sentences() -> list[str]:
    """Every first half of a sentence with every second half: no two alike, so the
    engine's de-duplication of repeated sentences does not flatter the document figure."""
    halves = [s.rstrip(".?!").split(" ") for s in SENTENCES]
    heads = [" ".join(h[: len(h) // 2]) for h in halves]
    tails = [" ".join(h[len(h) // 2:]) for h in halves]
    return [f"{a} {b}." for a in heads for b in tails]


def make_docx_pages(pages: int) -> bytes:
    import docx

    document = docx.Document()
    pool = unique_sentences()
    random.Random(3).shuffle(pool)
    used = 0
    for page in range(pages):
        document.add_heading(f"Section {page + 1}", level=2)
        words_per_page = 0
        while words_per_page < 250:
            text = " ".join(pool[(used + k) % len(pool)] for k in range(3))
            used += 3
            document.add_paragraph(text)
            words_per_page += len(text.split())
        if page < pages - 1:
            document.add_page_break()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def table(rows: list[dict[str, float | str]]) -> str:
    lines = ["| mode | sentences | wall s | sentences/s | p50 ms | p95 ms |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['sentences']} | {r['wall_s']:.2f} | {r['throughput']:.1f} | "
                     f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "parlons-bench-marian")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--per-client", type=int, default=4, help="sentences per client, micro-batched run")
    parser.add_argument("--per-client-naive", type=int, default=1, help="sentences per client, per-request run")
    parser.add_argument("--beam-size", type=int, default=2)
    parser.add_argument("--wait-ms", type=float, default=5.0)
    parser.add_argument("--max-batch-tokens", type=int, default=4096)
    parser.add_argument("--inter-threads", type=int, default=1,
                        help="CTranslate2 inter_threads: batches run at once (model replicas)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CTranslate2 intra_threads per batch (0 = cores / inter-threads)")
    parser.add_argument("--open-rate", type=float, default=4.0, help="open loop: sentences/s in total")
    parser.add_argument("--open-seconds", type=float, default=20.0)
    parser.add_argument("--docx-pages", type=int, default=10)
    parser.add_argument("--decode-tokens", type=int, default=16,
                        help="target tokens decoded per sentence, in every mode")
    parser.add_argument("--repeats", type=int, default=3, help="closed-loop runs per mode (median kept)")
    parser.add_argument("--quick", action="store_true", help="small run to check the script works")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.per_client, args.open_seconds, args.docx_pages, args.repeats = 8, 2, 3.0, 2, 1
    globals()["DECODE_TOKENS"] = args.decode_tokens

    threads = args.threads or max(1, (os.cpu_count() or 1) // args.inter_threads)
    model_dir = build_marian_sized(args.model_dir)
    runtime = RuntimeOptions(device="cpu", compute_type="int8", intra_threads=threads,
                             inter_threads=args.inter_threads,
                             batch_wait_ms=args.wait_ms, max_batch_tokens=args.max_batch_tokens,
                             decoding_ratio=0.0, decoding_extra=args.decode_tokens)
    model = TranslationModel(load_layout(model_dir), runtime)
    engine = TranslationEngine([model], detect=False, default_beam_size=args.beam_size)
    translator = model.translator  # the same weights and threads for every mode

    tokens = [len(model.layout.source_tokens(s, "fr", "en")) for s in SENTENCES]
    print(f"model: 6+6 layers, d=512, 32k vocab, int8, cpu: {args.inter_threads} replica(s) x {threads} thread(s); beam {args.beam_size}; "
          f"{statistics.fmean(tokens):.1f} source tokens per sentence on average", flush=True)
    await engine.translate([SENTENCES[0]], "en", "fr")  # warm-up

    # The machine is shared: run the modes interleaved, several times, keep the median run.
    runs: dict[str, list[dict[str, float | str]]] = {"batched": [], "naive": [], "raw": []}
    for repeat in range(args.repeats):
        runs["batched"].append(await closed_loop_batched(engine, args.clients, args.per_client))
        runs["naive"].append(await closed_loop_per_request(translator, model, args.clients, args.per_client_naive,
                                                           args.beam_size))
        runs["raw"].append(await asyncio.to_thread(raw_ctranslate2, translator, model, args.clients * args.per_client,
                                                   args.beam_size, args.max_batch_tokens, args.clients))
        print(f"run {repeat + 1}: " + ", ".join(f"{k} {v[-1]['throughput']:.1f}/s" for k, v in runs.items()), flush=True)

    def median(rows: list[dict[str, float | str]]) -> dict[str, float | str]:
        return sorted(rows, key=lambda r: float(r["throughput"]))[len(rows) // 2]

    batched, naive, raw = median(runs["batched"]), median(runs["naive"]), median(runs["raw"])
    print(f"\nclosed loop, {args.clients} concurrent clients, single sentences (median of {args.repeats} runs):\n")
    print(table([batched, naive, raw]))
    sizes = model.batcher.stats.sizes
    print(f"\nmicro-batching: {float(batched['throughput']) / float(naive['throughput']):.1f}x the per-request throughput, "
          f"{float(batched['throughput']) / float(raw['throughput']):.0%} of raw CTranslate2; "
          f"mean batch {statistics.fmean(sizes):.1f} sentences, largest {max(sizes)}")

    pool = ThreadPoolExecutor(max_workers=args.clients)
    loop = asyncio.get_running_loop()

    async def send_batched(sentence: str) -> None:
        await engine.translate([sentence], "en", "fr")

    async def send_naive(sentence: str) -> None:
        toks = model.layout.source_tokens(sentence, "fr", "en")
        await loop.run_in_executor(pool, per_request_call, translator, toks, args.beam_size)

    print(f"\nopen loop, {args.open_rate:g} sentences/s in total for {args.open_seconds:g} s "
          f"(median p95 of {args.repeats} interleaved runs):\n")
    print("| mode | sentences | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|")
    open_runs: dict[str, list[list[float]]] = {"micro-batched": [], "one call per request": []}
    for repeat in range(args.repeats):
        for name, send in (("micro-batched", send_batched), ("one call per request", send_naive)):
            open_runs[name].append(await open_loop(send, args.open_rate, args.open_seconds, seed=repeat))
    for name, runs_of_mode in open_runs.items():
        lat = sorted(runs_of_mode, key=lambda r: pct(r, 0.95))[len(runs_of_mode) // 2]
        print(f"| {name} | {len(lat)} | {1000 * pct(lat, 0.5):.0f} | {1000 * pct(lat, 0.95):.0f} | "
              f"{1000 * max(lat):.0f} |", flush=True)
    pool.shutdown()

    docx_bytes = make_docx_pages(args.docx_pages)
    started = time.perf_counter()
    result = await engine.translate_document(docx_bytes, "en", "fr", file_name="bench.docx")
    wall = time.perf_counter() - started
    print(f"\nDOCX: {args.docx_pages} pages (~250 words each, {result.segments} segments, "
          f"{result.characters} characters) in {wall:.1f} s = {args.docx_pages / wall:.2f} pages/s")
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
