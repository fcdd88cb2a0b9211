"""Many literal terms as one regex, factored as a trie of their characters.

A flat alternation of N terms makes the regex engine try every term at every position
of the text (10,000 glossary entries over 100,000 characters: seconds); a fresh search
per term reads the text N times. The trie tries one branch per character, so one scan
finds every term: glossaries (translation), always-mask terms and names followed through
a conversation (anonymisation).

Longer terms still win: at each node the continuation is tried before stopping there
(greedy), and a whole-word check after the match backtracks to a shorter term when the
longer one ends mid-word. The regex nests one group per branching character: callers
bound their terms' length (a few hundred characters) so that it compiles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_Trie = dict[str, "_Trie"]


def trie_pattern(terms: Iterable[str]) -> str:
    """The regex source (no flags, no boundaries) that matches any of `terms` literally;
    empty terms are ignored, and "" comes back when there is none."""
    trie: _Trie = {}
    for term in terms:
        if not term:
            continue
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_regex(trie)


def _node_regex(node: _Trie) -> str:
    """The regex of a trie node: its branches, optional when a term may end here."""
    branches = []
    for char, child in node.items():
        if not char:
            continue
        # Runs of single-child nodes become plain text, without a group each.
        text = re.escape(char)
        while len(child) == 1 and "" not in child:
            (char, child), = child.items()
            text += re.escape(char)
        branches.append(text + _node_regex(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:
        return "(?:" + body + ")?"
    return body
