"""Train a small spaCy NER component (the 11 personal-data types) on the annotated
French counter dialogues, to be used BESIDE the rule recognisers (union of spans).

    python scripts/train_counter_ner.py --out /tmp/counter_ner [--epochs 12]
        [--train tests/data/anonymization_fr_dev.txt ...] [--checkpoints 6,9,12]
        [--threads 1] [--seed 0]

The component has its own CNN tok2vec (hash embeddings of NORM, PREFIX, SUFFIX, SHAPE)
plus fr_core_news_md's static vectors (read from the model manager's directory, never
copied): what is written under --out is the config and the `ner` weights only
(`vocab/` is left out); `load_counter_ner` rebuilds the pipeline with the md vectors.

Each annotated line is one training document (read with
parlons.services.anonymization.evaluation.read_corpus). Gold spans are snapped to
token boundaries (alignment "expand").

Never pass tests/data/holdout/* to --train: those files are kept for the final,
single measurement.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "tests" / "data"
TUNING = [DATA / f"anonymization_fr_{n}.txt"
          for n in ("dev", "test", "holdout1", "holdout2", "holdout3", "holdout5", "holdout7")]
LABELS = ("PERSON", "NIR", "IBAN", "PHONE", "EMAIL", "ADDRESS", "DATE_OF_BIRTH", "CAF_NUMBER",
          "TAX_NUMBER", "ID_DOCUMENT", "LICENSE_PLATE")
RECOGNIZER = "counter_ner"

NER_CONFIG = {
    "model": {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": 64,
        "maxout_pieces": 2,
        "use_upper": True,
        "nO": None,
        "tok2vec": {
            "@architectures": "spacy.Tok2Vec.v2",
            "embed": {
                "@architectures": "spacy.MultiHashEmbed.v2",
                "width": 96,
                "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                "rows": [5000, 1000, 2500, 2500],
                "include_static_vectors": True,
            },
            "encode": {
                "@architectures": "spacy.MaxoutWindowEncoder.v2",
                "width": 96,
                "depth": 4,
                "window_size": 1,
                "maxout_pieces": 3,
            },
        },
    },
}


def md_dir() -> Path:
    from parlons.models.manager import ModelManager

    return Path(ModelManager().resolve("spacy-fr-core-news-md", kind="ner"))


def blank_with_vectors(vectors_from: Path | None = None):
    import spacy

    from spacy.vocab import Vocab

    vocab = Vocab().from_disk((vectors_from or md_dir()) / "vocab")
    return spacy.blank("fr", vocab=vocab)


def make_examples(nlp, paths: Sequence[Path]):
    from spacy.training import Example

    from parlons.services.anonymization.evaluation import read_corpus

    examples, dropped = [], 0
    for line in read_corpus(paths):
        doc = nlp.make_doc(line.text)
        spans = []
        for g in line.entities:
            span = doc.char_span(g.start, g.end, label=g.entity_type, alignment_mode="expand")
            if span is None:
                dropped += 1
                continue
            if spans and span.start < spans[-1].end:  # overlapping after expansion
                dropped += 1
                continue
            spans.append(span)
        pred = nlp.make_doc(line.text)
        gold = nlp.make_doc(line.text)
        gold.ents = spans
        examples.append(Example(pred, gold))
    return examples, dropped


def train(paths: Sequence[Path], out: Path | None, epochs: int, seed: int = 0,
          checkpoints: Sequence[int] = (), on_checkpoint: Callable | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Train on `paths`; call on_checkpoint(epoch, nlp) after each epoch in checkpoints."""
    from spacy.util import compounding, fix_random_seed, minibatch

    fix_random_seed(seed)
    random.seed(seed)
    nlp = blank_with_vectors()
    ner = nlp.add_pipe("ner", config=NER_CONFIG)
    for label in LABELS:
        ner.add_label(label)
    examples, dropped = make_examples(nlp, paths)
    log(f"{len(examples)} lines, {sum(len(e.reference.ents) for e in examples)} entities "
        f"({dropped} dropped at alignment)")
    t0 = time.perf_counter()
    optimizer = nlp.initialize(lambda: examples)
    for epoch in range(1, epochs + 1):
        random.shuffle(examples)
        losses: dict[str, float] = {}
        for batch in minibatch(examples, size=compounding(4.0, 32.0, 1.001)):
            nlp.update(batch, drop=0.2, sgd=optimizer, losses=losses)
        log(f"epoch {epoch}: loss {losses.get('ner', 0):.1f} ({time.perf_counter() - t0:.0f} s)")
        if epoch in checkpoints and on_checkpoint is not None:
            with nlp.use_params(optimizer.averages):
                on_checkpoint(epoch, nlp)
    seconds = time.perf_counter() - t0
    if out is not None:
        with nlp.use_params(optimizer.averages):
            save(nlp, out)
        (out / "training.json").write_text(json.dumps(
            {"files": [p.name for p in paths], "epochs": epochs, "seed": seed,
             "seconds": round(seconds, 1)}, indent=1))
    return {"seconds": seconds, "nlp": nlp}


def save(nlp, out: Path) -> None:
    """The config and the ner weights; the vectors stay in fr_core_news_md."""
    out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out, exclude=["vocab", "tokenizer"])


def load_counter_ner(path: Path, vectors_from: Path | None = None):
    nlp = blank_with_vectors(vectors_from)
    nlp.add_pipe("ner", config=NER_CONFIG)
    nlp.get_pipe("ner").from_disk(path / "ner", exclude=["vocab"])
    return nlp


def predict(nlp, texts: Sequence[str], batch_size: int = 256):
    """texts -> findings per text, in the engine's Finding shape."""
    from parlons.services.anonymization.entities import Finding

    return [[Finding(e.start_char, e.end_char, e.label_, 0.8, RECOGNIZER) for e in doc.ents]
            for doc in nlp.pipe(texts, batch_size=batch_size)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs="*", type=Path, default=TUNING)
    ap.add_argument("--out", type=Path, default=Path("/tmp/counter_ner"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch/blas threads (0: leave)")
    args = ap.parse_args()
    if any("holdout/" in str(p) for p in args.train):
        sys.exit("tests/data/holdout/* are never trained on")
    if args.threads:
        import os

        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    res = train(args.train, args.out, args.epochs, args.seed)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"trained in {res['seconds']:.0f} s; {args.out}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
