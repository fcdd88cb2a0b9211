"""Recall and precision of the anonymiser on annotated text, per entity type.

Annotated lines mark personal data inline: `Madame [[PERSON|Fatima Benali]], né le
[[DATE_OF_BIRTH|3 mars 1985]]`; lines starting with `#` are comments. An administration
can measure the anonymiser on its own material the same way
(`python benchmarks/bench_anonymization.py --corpus FILE`).

What counts is what would leak, so matching is by characters, not by type:
- a gold entity is **found** when masked spans cover at least `COVER` (90 %) of its
  letters and digits, whatever type the spans carry;
- a masked span is **right** when at least half its letters and digits lie in gold
  entities (masking "Lyon" alone, a price or a law article is a false positive);
- `typed` counts the found entities whose covering span carries the gold type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .entities import Finding

COVER = 0.9
_MARK_RE = re.compile(r"\[\[([A-Z_]+)\|(.+?)\]\]")


@dataclass(frozen=True)
class Gold:
    start: int
    end: int
    entity_type: str


@dataclass(frozen=True)
class AnnotatedLine:
    text: str
    entities: tuple[Gold, ...]


def parse_line(raw: str) -> AnnotatedLine:
    """One annotated line to its plain text and gold spans."""
    out, entities, last = [], [], 0
    length = 0
    for m in _MARK_RE.finditer(raw):
        chunk = raw[last:m.start()]
        out.append(chunk)
        length += len(chunk)
        entities.append(Gold(length, length + len(m.group(2)), m.group(1)))
        out.append(m.group(2))
        length += len(m.group(2))
        last = m.end()
    out.append(raw[last:])
    text = "".join(out)
    if "[[" in text or "]]" in text:
        raise ValueError(f"malformed markup in: {raw[:80]!r}")
    return AnnotatedLine(text, tuple(entities))


def read_corpus(paths: Iterable[Path]) -> list[AnnotatedLine]:
    lines = []
    for path in paths:
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.strip() and not raw.lstrip().startswith("#"):
                lines.append(parse_line(raw.strip()))
    return lines


def _alnum_positions(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if text[i].isalnum()]


@dataclass
class TypeScore:
    gold: int = 0
    found: int = 0
    typed: int = 0
    predicted: int = 0
    right: int = 0
    missed: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        return self.right / self.predicted if self.predicted else 1.0


@dataclass
class Evaluation:
    per_type: dict[str, TypeScore]
    lines: int
    chars: int

    @property
    def overall(self) -> TypeScore:
        total = TypeScore()
        for s in self.per_type.values():
            total.gold += s.gold
            total.found += s.found
            total.typed += s.typed
            total.predicted += s.predicted
            total.right += s.right
        return total


def evaluate(lines: Sequence[AnnotatedLine],
             analyze: Callable[[list[str]], list[list[Finding]]]) -> Evaluation:
    """Score `analyze` (the texts of one conversation -> findings per text) on the
    annotated lines, taken in order as one conversation."""
    per_type: dict[str, TypeScore] = {}
    all_findings = analyze([line.text for line in lines])
    for line, findings in zip(lines, all_findings, strict=True):
        text = line.text
        masked: dict[int, str] = {}
        for f in findings:
            for i in range(f.start, f.end):
                masked[i] = f.entity_type
        gold_chars: set[int] = set()
        for g in line.entities:
            score = per_type.setdefault(g.entity_type, TypeScore())
            score.gold += 1
            positions = _alnum_positions(text, g.start, g.end)
            gold_chars.update(range(g.start, g.end))
            covered = [p for p in positions if p in masked]
            if positions and len(covered) >= COVER * len(positions):
                score.found += 1
                if any(masked[p] == g.entity_type for p in covered):
                    score.typed += 1
            else:
                score.missed.append(f"{text[g.start:g.end]!r} in {text[:120]!r}")
        for f in findings:
            score = per_type.setdefault(f.entity_type, TypeScore())
            score.predicted += 1
            positions = _alnum_positions(text, f.start, f.end)
            inside = [p for p in positions if p in gold_chars]
            if positions and len(inside) * 2 >= len(positions):
                score.right += 1
            else:
                score.false_alarms.append(f"{text[f.start:f.end]!r} in {text[:120]!r}")
    return Evaluation(per_type, len(lines), sum(len(line.text) for line in lines))
