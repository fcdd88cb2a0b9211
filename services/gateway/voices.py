"""Voice prints for a shared microphone: which party said an utterance, by its voice.

Each party's print is the running, duration-weighted mean of the unit-length speaker
embeddings (EmbedVoices of the diarisation service) of the utterances given to it, or
starts from an enrolment sample (a few seconds of the agent's voice). An utterance goes:
* with both prints known, to the closer one, when it is closer by `margin`;
* with one print known, to that party when its similarity reaches `same_voice`, else to
  the other (a voice not heard before); an utterance shorter than `reliable_s` does not
  decide this alone (its embedding is noise-dominated);
* otherwise by turn taking: the other party than the last one, the first party first.

The settings were chosen on two-party dialogues cut from the AMI `trn*` excerpts and
checked on the `dev*` ones and on sample.wav (benchmarks/bench_voices.py; figures in
docs/benchmarks.md): same-voice similarities of ECAPA-TDNN on a
second or more of speech are mostly 0.3-0.8, different voices -0.1-0.2, and under a
second both spread widely, hence the weights (short utterances count little in a print)
and the turn-taking fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from collections.abc import Sequence

import numpy as np

Reason = Literal["enrolment", "voice", "new voice", "turn taking"]


@dataclass(frozen=True)
class VoiceSettings:
    # One print known: the same voice at or above this similarity.
    same_voice: float = 0.25
    # Two prints known: the closer must be closer by this much, else turn taking decides.
    margin: float = 0.05
    # Shorter utterances cannot open a second voice on their own.
    reliable_s: float = 1.0
    # Before both voices are known: two groups of an utterance's parts less similar
    # than this are two voices (ECAPA on parts of a second or more; on a phone line two
    # voices often stay above it, and the utterance is then not split).
    change: float = 0.2
    # Both voices known: a part goes to the other party than its utterance's only when
    # closer to that party's print by this much (parts are short, their prints noisy).
    part_margin: float = 0.1
    # Each part of a split utterance lasts at least this long (shorter parts' prints are
    # too noisy to tell a change).
    min_piece_s: float = 1.0
    # An utterance weighs its duration minus this floor, capped (in seconds).
    weight_floor_s: float = 0.3
    weight_cap_s: float = 4.0
    # An enrolment sample weighs this many capped utterances.
    enrolment_weight: float = 2.0


@dataclass(frozen=True)
class Attribution:
    party: int
    reason: Reason
    similarities: tuple[float | None, ...]


@dataclass
class VoicePrints:
    """The voices of a conversation's parties (two at a reception desk)."""

    parties: int = 2
    settings: VoiceSettings = field(default_factory=VoiceSettings)
    _sums: list[np.ndarray | None] = field(init=False)
    _enrolled: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._sums = [None] * self.parties

    def enrol(self, party: int, vector: np.ndarray) -> None:
        """Start a party's print from a sample of its voice alone."""
        weight = self.settings.enrolment_weight * self.settings.weight_cap_s
        self._add(party, vector, weight)
        self._enrolled.add(party)

    def enrolled(self, party: int) -> bool:
        return party in self._enrolled

    def learn(self, party: int, vector: np.ndarray | None, seconds: float) -> None:
        """Add an attributed utterance to its party's print."""
        if vector is not None:
            weight = float(np.clip(seconds - self.settings.weight_floor_s, 0.05, self.settings.weight_cap_s))
            self._add(party, vector, weight)

    def similarities(self, vector: np.ndarray) -> tuple[float | None, ...]:
        return tuple(
            None if total is None else float(vector @ (total / np.linalg.norm(total))) for total in self._sums
        )

    def attribute(self, vector: np.ndarray | None, seconds: float, last: int | None) -> Attribution:
        """The party whose voice this is; `last` is the party of the previous utterance."""
        turn = 0 if last is None else (last + 1) % self.parties
        if vector is None:
            return Attribution(turn, "turn taking", (None,) * self.parties)
        sims = self.similarities(vector)
        known = [p for p, s in enumerate(sims) if s is not None]
        if not known:
            return Attribution(turn, "turn taking", sims)
        if len(known) == 1:
            (party,) = known
            similarity = sims[party]
            assert similarity is not None
            if similarity >= self.settings.same_voice:
                return Attribution(party, "enrolment" if party in self._enrolled else "voice", sims)
            if seconds < self.settings.reliable_s:
                return Attribution(turn, "turn taking", sims)
            others = [p for p in range(self.parties) if p != party]
            return Attribution(turn if turn in others else others[0], "new voice", sims)
        ranked = sorted(known, key=lambda p: sims[p], reverse=True)  # type: ignore[arg-type, return-value]
        best, second = ranked[0], ranked[1]
        if sims[best] - sims[second] >= self.settings.margin:  # type: ignore[operator]
            return Attribution(best, "voice", sims)
        return Attribution(turn, "turn taking", sims)

    @property
    def all_known(self) -> bool:
        """Whether every party's voice has a print."""
        return all(total is not None for total in self._sums)

    def attribute_parts(
        self,
        vectors: Sequence[np.ndarray | None],
        durations: Sequence[float],
        last: int | None,
        groups: Sequence[int] | None = None,
    ) -> list[int]:
        """The party of each part of one utterance, learning from them: the whole
        utterance is attributed as one, and parts go to the other party only where the
        voice clearly changes. `groups` (0/1 per part, from a diarisation of the
        utterance) says which parts share a voice while the prints cannot tell yet."""
        known = [i for i, v in enumerate(vectors) if v is not None]
        if not known:
            party = self.attribute(None, sum(durations), last).party
            return [party] * len(vectors)
        whole = unit(_weighted_sum(vectors, durations, known))
        both_known = self.all_known and self.parties == 2
        if both_known:
            labels = self._by_prints(vectors, whole)
        elif groups is not None:
            labels = list(groups)
        else:
            labels = self._two_groups(vectors, durations)
        distinct = sorted(set(labels))
        parties: dict[int, int] = {}
        if both_known:
            parties = {label: label for label in distinct}
            if len(distinct) == 1:  # one voice: the usual decision, with its turn taking
                parties[distinct[0]] = self.attribute(whole, sum(durations), last).party
        else:
            centres = {}
            for label in distinct:
                members = [i for i in known if labels[i] == label]
                if members:
                    centres[label] = unit(_weighted_sum(vectors, durations, members))
            first = labels[known[0]]
            printed = [p for p, total in enumerate(self._sums) if total is not None]
            if len(centres) > 1 and len(printed) == 1:
                # Two voices in the utterance, one of them known: the closer group is
                # that party (a comparison, not a threshold: it holds on any channel).
                (party,) = printed
                closest = max(centres, key=lambda label: self.similarities(centres[label])[party])  # type: ignore[arg-type, return-value]
                parties[closest] = party
                first = closest
            else:
                members = [i for i in known if labels[i] == first]
                seconds = sum(durations[i] for i in members)
                parties[first] = self.attribute(centres[first], seconds, last).party
            for label in distinct:
                if label != first:
                    parties[label] = (parties[first] + 1) % self.parties
        result = [parties[label] for label in labels]
        for vector, seconds, party in zip(vectors, durations, result):
            self.learn(party, vector, seconds)
        return result

    def _by_prints(self, vectors: Sequence[np.ndarray | None], whole: np.ndarray) -> list[int]:
        """Both prints known: the utterance's party, and the other party for parts that
        are clearly closer to it; parts without a print follow the one before."""
        sims = self.similarities(whole)
        default = int(sims[1] > sims[0])  # type: ignore[operator]
        labels: list[int] = []
        for vector in vectors:
            label = labels[-1] if labels else default
            if vector is not None:
                s = self.similarities(vector)
                other = 1 - default
                label = other if s[other] - s[default] >= self.settings.part_margin else default  # type: ignore[operator]
            labels.append(label)
        return labels

    def _two_groups(self, vectors: Sequence[np.ndarray | None], durations: Sequence[float]) -> list[int]:
        """Before both voices are known: 0 for every part, or 0/1 when two-means finds two
        groups of parts whose voices differ (average similarity below `change`)."""
        known = [i for i, v in enumerate(vectors) if v is not None]
        if len(known) < 2:
            return [0] * len(vectors)
        matrix = np.stack([vectors[i] for i in known])  # type: ignore[misc]
        weights = np.array([min(durations[i], self.settings.weight_cap_s) for i in known])
        similarity = matrix @ matrix.T
        a, b = np.unravel_index(int(np.argmin(similarity)), similarity.shape)
        centres = [matrix[a], matrix[b]]
        groups = np.zeros(len(known), dtype=int)
        for _ in range(10):
            new = (matrix @ centres[1] > matrix @ centres[0]).astype(int)
            if new.min() == new.max():
                return [0] * len(vectors)
            if np.array_equal(new, groups):
                break
            groups = new
            centres = [unit((matrix[groups == g] * weights[groups == g, None]).sum(axis=0)) for g in (0, 1)]
        between = similarity[np.ix_(groups == 0, groups == 1)].mean()
        if between >= self.settings.change:
            return [0] * len(vectors)
        first = groups[0]
        by_part = dict(zip(known, (int(g != first) for g in groups)))
        labels: list[int] = []
        for i in range(len(vectors)):
            labels.append(by_part.get(i, labels[-1] if labels else 0))
        return labels

    def _add(self, party: int, vector: np.ndarray, weight: float) -> None:
        current = self._sums[party]
        weighted = np.asarray(vector, dtype=np.float64) * weight
        self._sums[party] = weighted if current is None else current + weighted


def pause_cuts(
    words: Sequence[tuple[float, float]], start: float, end: float, min_piece_s: float, max_pieces: int = 16
) -> list[float]:
    """Where to cut an utterance into parts to embed one by one: at the widest pause
    between two words that leaves at least `min_piece_s` on each side, then the same in
    each part, while parts are long enough (and at most `max_pieces` of them). Turns
    change at pauses, even short ones; parts of a second or more give usable prints."""
    cuts: list[float] = []

    def cut(first: int, last: int, a: float, b: float) -> None:
        best: tuple[float, int, float] | None = None  # (gap, index of the word after, cut)
        for i in range(first + 1, last + 1):
            at = (words[i - 1][1] + words[i][0]) / 2
            if at - a < min_piece_s or b - at < min_piece_s:
                continue
            gap = words[i][0] - words[i - 1][1]
            if best is None or gap > best[0]:
                best = (gap, i, at)
        if best is None or len(cuts) + 2 > max_pieces:
            return
        _, i, at = best
        cuts.append(at)
        cut(first, i - 1, a, at)
        cut(i, last, at, b)

    if words:
        cut(0, len(words) - 1, start, end)
    return sorted(cuts)


def _weighted_sum(vectors: Sequence[np.ndarray | None], weights: Sequence[float], indices: Sequence[int]) -> np.ndarray:
    """The duration-weighted sum of the known vectors at `indices`."""
    total = np.zeros_like(vectors[indices[0]], dtype=np.float64)
    for i in indices:
        vector = vectors[i]
        assert vector is not None
        total += vector * weights[i]
    return total


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)
