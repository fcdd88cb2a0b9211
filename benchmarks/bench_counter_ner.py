"""A learned recogniser (scripts/train_counter_ner.py) beside the rules: recall and
precision of rules alone, learned alone and their union, with the project's scorer
(parlons.services.anonymization.evaluation.evaluate).

    # cross-validation on the seven tuning files, leave one file out (one process per fold)
    python benchmarks/bench_counter_ner.py cv-fold --fold holdout1 [--epochs 20 --checkpoints 5,10,15,20]
    python benchmarks/bench_counter_ner.py cv-report        # chooses epochs and types by CV
    # once, at the very end: model trained on all seven, held-out files 4, 6, 8
    python benchmarks/bench_counter_ner.py final --model /tmp/counter_ner

Union: the rules' findings, plus each learned span of an accepted type that holds at
least one letter or digit no rule span covers (a span the rules already mask adds
nothing). Everything chosen (epoch count, accepted types) is chosen on the
cross-validation figures only (`cv-report` writes choice.json); `final` reads it.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import train_counter_ner as tcn  # noqa: E402

from parlons.services.anonymization.entities import Finding  # noqa: E402
from parlons.services.anonymization.evaluation import Evaluation, evaluate, read_corpus  # noqa: E402
from parlons.services.anonymization.learned import LABELS  # noqa: E402
from parlons.services.anonymization.learned import lookalike  # noqa: E402
from parlons.services.anonymization.lexicon import FrenchWords, load_vocabulary_and_lemmatizer  # noqa: E402

WORK = Path("/tmp/counter_ner_work")
FOLDS = [p.stem.removeprefix("anonymization_fr_") for p in tcn.TUNING]
HELD_OUT = [ROOT / "tests" / "data" / "holdout" / f"anonymization_fr_{n}.txt"
            for n in ("holdout4", "holdout6")]
TYPES = LABELS
# A variant declared before any held-out measurement: the two types docs/anonymization.md
# names as the rules' weak spots on new text.
WEAK = ("PERSON", "ADDRESS")


def rules_findings(path: Path) -> tuple[list[list[Finding]], float, int]:
    """The engine's findings on one file (one conversation), cached in WORK."""
    cache = WORK / f"rules_{path.stem}.json"
    if not cache.exists():
        from parlons.services.anonymization.engine import AnonymizationEngine

        texts = [line.text for line in read_corpus([path])]
        eng = AnonymizationEngine()
        eng.anonymize(texts[:3])
        t = time.perf_counter()
        res = eng.anonymize(texts).findings
        dt = time.perf_counter() - t
        cache.write_text(json.dumps({"seconds": dt, "chars": sum(map(len, texts)), "findings": [
            [[f.start, f.end, f.entity_type] for f in fs] for fs in res]}))
    d = json.loads(cache.read_text())
    return ([[Finding(s, e, t, 1.0, "rules") for s, e, t in fs] for fs in d["findings"]],
            d["seconds"], d["chars"])


def to_findings(raw) -> list[list[Finding]]:
    return [[Finding(s, e, t, 0.8, tcn.RECOGNIZER) for s, e, t in fs] for fs in raw]


def union(texts, rules, learned, types=TYPES) -> list[list[Finding]]:
    """Rules' spans, plus learned spans that mask something more. A learned span that
    overlaps rule spans is merged with them into one span of the rules' type (as a
    masker would mask it: one placeholder); one that overlaps none is added as is."""
    out = []
    for text, rs, ls in zip(texts, rules, learned, strict=True):
        covered = {i for f in rs for i in range(f.start, f.end)}
        spans = list(rs)
        for f in ls:
            if f.entity_type not in types or not any(
                    text[i].isalnum() and i not in covered for i in range(f.start, f.end)):
                continue
            hit = [s for s in spans if s.overlaps(f)]
            if not hit:
                spans.append(f)
                continue
            for s in hit:
                spans.remove(s)
            rule = next((s for s in hit if s.recognizer != tcn.RECOGNIZER), hit[0])
            spans.append(Finding(min(f.start, *(s.start for s in hit)), max(f.end, *(s.end for s in hit)),
                                 rule.entity_type, rule.score, rule.recognizer + "+" + tcn.RECOGNIZER))
        out.append(sorted(spans))
    return out


# The dictionary the product's look-alike cues read (set when a trained model is loaded).
_WORDS: FrenchWords | None = None


def load_model(path: Path) -> Any:
    """The trained recogniser's NER pipeline; the md pipeline's dictionary kept for `filtered`."""
    global _WORDS
    recognizer = tcn.load_counter_ner(path)
    _WORDS = recognizer.words
    return recognizer.nlp


def _words() -> FrenchWords:
    """The md pipeline's dictionary, loaded once (also when the model was trained here, by
    the cross-validation commands, rather than loaded)."""
    global _WORDS
    if _WORDS is None:
        _WORDS = FrenchWords(load_vocabulary_and_lemmatizer(tcn.md_dir()))
    return _WORDS


def filtered(texts: list[str], learned: list[list[Finding]]) -> list[list[Finding]]:
    words = _words()
    return [[f for f in fs if not lookalike(text, f, words)] for text, fs in zip(texts, learned, strict=True)]


def score(lines, findings):
    return evaluate(lines, lambda texts: findings)


def row(name, ev) -> str:
    o = ev.overall
    return f"| {name} | {o.gold} | {o.recall:.3f} | {o.precision:.3f} | {o.found} | {o.predicted - o.right} |"


def variants(lines: Any, texts: list[str], rules: list[list[Finding]], learned: list[list[Finding]],
             types: list[str], chosen: list[str] | None = None) -> dict[str, Evaluation]:
    """The five systems the report compares, scored on one file."""
    return {"rules": score(lines, rules), "learned": score(lines, learned),
            "union": score(lines, union(texts, rules, learned)),
            "union (accepted types)": score(lines, union(texts, rules, learned, types)),
            "union (PERSON, ADDRESS)": score(lines, union(texts, rules, learned, WEAK)),
            "union, filtered by look-alike cues": score(lines, union(texts, rules, filtered(texts, learned))),
            **({"union, filtered, chosen types": score(lines, union(texts, rules, filtered(texts, learned), chosen))}
               if chosen is not None else {})}


def print_pooled(per_file: dict[str, list[Evaluation]], what: str) -> None:
    """Each system's figures pooled over the files, overall and per type."""
    pooled = {k: merge(v) for k, v in per_file.items()}
    print(f"\n### Pooled over {what}\n")
    print("| system | gold | recall | precision | found | false alarms |")
    print("|---|---|---|---|---|---|")
    for k, ev in pooled.items():
        print(row(k, ev))
    print("\n### Per type, pooled\n")
    print(per_type_table(pooled))


def per_type_table(evs: dict[str, Evaluation]) -> str:
    names = list(evs)
    head = "| type | gold | " + " | ".join(f"{n} R / P" for n in names) + " |"
    lines = [head, "|" + "---|" * (2 + len(names))]
    for t in TYPES:
        g = next((ev.per_type[t].gold for ev in evs.values() if t in ev.per_type), 0)
        cells = []
        for ev in evs.values():
            s = ev.per_type.get(t)
            cells.append(f"{s.recall:.3f} / {s.precision:.3f}" if s else "- / -")
        lines.append(f"| {t} | {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge(evs):
    """Pool several Evaluations (sum the counts)."""
    from parlons.services.anonymization.evaluation import Evaluation, TypeScore

    per: dict[str, TypeScore] = {}
    for ev in evs:
        for t, s in ev.per_type.items():
            m = per.setdefault(t, TypeScore())
            m.gold += s.gold
            m.found += s.found
            m.typed += s.typed
            m.predicted += s.predicted
            m.right += s.right
            m.missed += s.missed
            m.false_alarms += s.false_alarms
    return Evaluation(per, sum(e.lines for e in evs), sum(e.chars for e in evs))


def cmd_cv_fold(args) -> None:
    held = next(p for p in tcn.TUNING if p.stem.endswith("_" + args.fold))
    train = [p for p in tcn.TUNING if p != held]
    texts = [line.text for line in read_corpus([held])]
    out = WORK / "cv"
    out.mkdir(parents=True, exist_ok=True)

    def on_checkpoint(epoch, nlp):
        t = time.perf_counter()
        pred = tcn.predict(nlp, texts)
        dt = time.perf_counter() - t
        (out / f"{args.fold}_e{epoch}.json").write_text(json.dumps({
            "seconds": dt, "chars": sum(map(len, texts)),
            "findings": [[[f.start, f.end, f.entity_type] for f in fs] for fs in pred]}))

    res = tcn.train(train, None, args.epochs, args.seed, checkpoints=args.checkpoints,
                    on_checkpoint=on_checkpoint, log=lambda m: print(f"[{args.fold}] {m}", flush=True))
    (out / f"{args.fold}_train.json").write_text(json.dumps({"seconds": res["seconds"], "epochs": args.epochs}))


def f1(ev) -> float:
    o = ev.overall
    return 2 * o.recall * o.precision / (o.recall + o.precision) if o.recall + o.precision else 0.0


def cmd_cv_report(args) -> None:
    data = {}
    for fold, path in zip(FOLDS, tcn.TUNING):
        lines = read_corpus([path])
        texts = [line.text for line in lines]
        rules, _, _ = rules_findings(path)
        data[fold] = (lines, texts, rules)
    epochs = sorted({int(p.stem.split("_e")[1]) for p in (WORK / "cv").glob("*_e*.json")})
    epochs = [e for e in epochs if all((WORK / "cv" / f"{f}_e{e}.json").exists() for f in FOLDS)]
    print("## Cross-validation (leave one tuning file out), pooled over the seven files\n")
    print("| epochs | learned R / P | union (all types) R / P | union F1 |")
    print("|---|---|---|---|")
    best: tuple[float, int] | None = None
    for e in epochs:
        lev, uev = [], []
        for fold in FOLDS:
            lines, texts, rules = data[fold]
            learned = to_findings(json.loads((WORK / "cv" / f"{fold}_e{e}.json").read_text())["findings"])
            lev.append(score(lines, learned))
            uev.append(score(lines, union(texts, rules, learned)))
        L, U = merge(lev), merge(uev)
        print(f"| {e} | {L.overall.recall:.3f} / {L.overall.precision:.3f} | "
              f"{U.overall.recall:.3f} / {U.overall.precision:.3f} | {f1(U):.4f} |")
        if best is None or f1(U) > best[0]:
            best = (f1(U), e)
    assert best is not None
    epoch = best[1]
    # Accepted types: a type's learned spans join the union when, pooled over the CV
    # folds, at least half of the spans they add (not already covered by rules) are right.
    added = {t: [0, 0] for t in TYPES}
    for fold in FOLDS:
        lines, texts, rules = data[fold]
        learned = to_findings(json.loads((WORK / "cv" / f"{fold}_e{epoch}.json").read_text())["findings"])
        only = [[f for f in u if tcn.RECOGNIZER in f.recognizer] for u in union(texts, rules, learned)]
        ev = score(lines, only)
        for t, s in ev.per_type.items():
            if t in added:
                added[t][0] += s.right
                added[t][1] += s.predicted
    types = [t for t in TYPES if added[t][1] == 0 or added[t][0] * 2 >= added[t][1]]
    print(f"\nChosen by CV: {epoch} epochs (best pooled union F1).")
    print("Spans the learned model adds beyond the rules, pooled over CV (right / added): "
          + ", ".join(f"{t} {r}/{n}" for t, (r, n) in added.items() if n))
    print(f"Accepted types (>= half of added spans right): {', '.join(types)}\n")
    (WORK / "choice.json").write_text(json.dumps({"epochs": epoch, "types": types}))

    per_file: dict[str, list[Evaluation]] = defaultdict(list)
    speed = [0.0, 0.0, 0]
    print("### Per file (each predicted by a model trained on the other six)\n")
    print("| file | system | gold | recall | precision | found | false alarms |")
    print("|---|---|---|---|---|---|---|")
    for fold in FOLDS:
        lines, texts, rules = data[fold]
        d = json.loads((WORK / "cv" / f"{fold}_e{epoch}.json").read_text())
        learned = to_findings(d["findings"])
        _, rs, chars = rules_findings(next(p for p in tcn.TUNING if p.stem.endswith("_" + fold)))
        speed[0] += rs
        speed[1] += d["seconds"]
        speed[2] += chars
        evs = variants(lines, texts, rules, learned, types)
        for k, ev in evs.items():
            per_file[k].append(ev)
            print(row(f"{fold} | {k}", ev))
    print_pooled(per_file, "the seven files")
    trains = [json.loads((WORK / "cv" / f"{f}_train.json").read_text())["seconds"]
              for f in FOLDS if (WORK / "cv" / f"{f}_train.json").exists()]
    print(f"\nSpeed on the CV files ({speed[2]} chars): rules {speed[2] / speed[0]:,.0f} chars/s, "
          f"learned (checkpoint epoch {epoch}) {speed[2] / speed[1]:,.0f} chars/s")
    if trains:
        print(f"Training time per fold (all CV epochs, 6 files, 1 thread): "
              f"{min(trains):.0f}-{max(trains):.0f} s")
    if args.show:
        print("\n### What the union catches that the rules miss (CV)\n")
        for fold in FOLDS:
            lines, texts, rules = data[fold]
            learned = to_findings(json.loads((WORK / "cv" / f"{fold}_e{epoch}.json").read_text())["findings"])
            r = score(lines, rules)
            u = score(lines, union(texts, rules, learned, types))
            for t in TYPES:
                if t in r.per_type:
                    gained = set(r.per_type[t].missed) - set(u.per_type[t].missed)
                    for m in gained:
                        print(f"- {fold} {t}: {m[:160]}")
            for t, s in u.per_type.items():
                new = set(s.false_alarms) - set(r.per_type.get(t, s).false_alarms if t in r.per_type else [])
                for m in new:
                    print(f"- {fold} FALSE ALARM {t}: {m[:160]}")


def cmd_final(args) -> None:
    choice = json.loads((WORK / "choice.json").read_text())
    types = choice["types"]
    nlp = load_model(args.model)
    per: dict[str, list[Evaluation]] = defaultdict(list)
    print(f"## Held-out files, once (model {args.model}, {choice['epochs']} epochs, "
          f"accepted types {', '.join(types)})\n")
    print("| file | system | gold | recall | precision | found | false alarms |")
    print("|---|---|---|---|---|---|---|")
    speed = [0.0, 0.0, 0]
    gained_types: dict[str, int] = {}
    for path in HELD_OUT:
        lines = read_corpus([path])
        texts = [line.text for line in lines]
        rules, rs, chars = rules_findings(path)
        tcn.predict(nlp, texts[:5])
        t = time.perf_counter()
        learned = tcn.predict(nlp, texts)
        ls = time.perf_counter() - t
        speed[0] += rs
        speed[1] += ls
        speed[2] += chars
        evs = variants(lines, texts, rules, learned, types)
        for k, ev in evs.items():
            per[k].append(ev)
            print(row(f"{path.stem.removeprefix('anonymization_fr_')} | {k}", ev))
        for tname, s in evs["rules"].per_type.items():
            g = len(set(s.missed) - set(evs["union (accepted types)"].per_type[tname].missed))
            gained_types[tname] = gained_types.get(tname, 0) + g
    print_pooled(per, "holdout4, 6")
    print("\nEntities the rules miss and the union (accepted types) finds, by gold type: "
          + ", ".join(f"{t} {n}" for t, n in gained_types.items() if n))
    size = sum(f.stat().st_size for f in args.model.rglob("*") if f.is_file())
    print(f"\nModel on disk: {size / 1e6:.1f} MB ({args.model}; vectors read from fr_core_news_md)")
    print(f"Speed ({speed[2]} chars): rules {speed[2] / speed[0]:,.0f} chars/s, learned "
          f"{speed[2] / speed[1]:,.0f} chars/s")


def _learned_on(paths: list[Path], model: Path) -> list[tuple[Any, list[str], list[list[Finding]], list[list[Finding]]]]:
    nlp = load_model(model)
    out = []
    for path in paths:
        lines = read_corpus([path])
        texts = [line.text for line in lines]
        out.append((lines, texts, rules_findings(path)[0], tcn.predict(nlp, texts)))
    return out


def cmd_choose(args) -> None:
    """On a blind tuning file (never the final one): which types' filtered learned spans
    join the union (a type whose added spans are right at least `--right` of the time)."""
    added: dict[str, list[int]] = {t: [0, 0] for t in TYPES}
    for lines, texts, rules, learned in _learned_on(args.files, args.model):
        r, u = score(lines, rules), score(lines, union(texts, rules, filtered(texts, learned)))
        for t, s in u.per_type.items():
            base = r.per_type.get(t)
            added[t][0] += s.right - (base.right if base else 0)
            added[t][1] += s.predicted - (base.predicted if base else 0)
    types = [t for t in TYPES if added[t][1] > 0 and added[t][0] >= args.right * added[t][1]]
    print("type: right / added by the filtered learned spans: "
          + ", ".join(f"{t} {a}/{n}" for t, (a, n) in added.items() if n))
    print(f"chosen types: {', '.join(types)}")
    (WORK / "choice_filtered.json").write_text(json.dumps({"types": types, "files": [str(f) for f in args.files]}))


def cmd_measure(args) -> None:
    """Every variant on the given files (the final, single measurement on a new blind file)."""
    choice = json.loads((WORK / "choice.json").read_text())
    chosen = json.loads((WORK / "choice_filtered.json").read_text())["types"]
    per: dict[str, list[Evaluation]] = defaultdict(list)
    print("| file | system | gold | recall | precision | found | false alarms |")
    print("|---|---|---|---|---|---|---|")
    for path, (lines, texts, rules, learned) in zip(args.files, _learned_on(args.files, args.model), strict=True):
        for k, ev in variants(lines, texts, rules, learned, choice["types"], chosen).items():
            per[k].append(ev)
            print(row(f"{path.stem.removeprefix('anonymization_fr_')} | {k}", ev))
    print_pooled(per, ", ".join(p.stem.removeprefix("anonymization_fr_") for p in args.files))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("cv-fold")
    p.add_argument("--fold", choices=FOLDS, required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--checkpoints", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10, 15, 20])
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("cv-report")
    p.add_argument("--show", action="store_true")
    p = sub.add_parser("final")
    p.add_argument("--model", type=Path, default=Path("/tmp/counter_ner"))
    p = sub.add_parser("choose")
    p.add_argument("--files", type=Path, nargs="+", required=True)
    p.add_argument("--right", type=float, default=0.5)
    p.add_argument("--model", type=Path, default=Path("/tmp/counter_ner"))
    p = sub.add_parser("measure")
    p.add_argument("--files", type=Path, nargs="+", required=True)
    p.add_argument("--model", type=Path, default=Path("/tmp/counter_ner"))
    args = ap.parse_args()
    {"cv-fold": cmd_cv_fold, "cv-report": cmd_cv_report, "final": cmd_final, "choose": cmd_choose,
     "measure": cmd_measure}[args.cmd](args)


if __name__ == "__main__":
    main()
