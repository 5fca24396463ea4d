"""Catalog search over main's nodes in memory: the entries, and an inverted index beside them.

Plain Python, no Django: `index.search` reads main's rows into `Entry`s once per version of main and
builds a `CatalogIndex` of them here; each search then asks the index. A scan scored every entry for
every query (540 ms p95 at 10,000 nodes, docs/capacity.md); the index scores only the entries whose
text holds the query's words, and ranks them exactly as the scan did.

Each searchable field (names, owners, column names, descriptions, column descriptions) is kept as its
distinct lower-cased strings, each with the entries that hold it, and a trigram index over those
strings: every three-character slice -> the strings that contain it. A term of three characters or more
looks up its rarest trigram and keeps the strings that really contain the term (`term in string`, the
scan's own test); a shorter term scans the field's distinct strings, which are far fewer than the
entries' fields and are tested in one comprehension. Tags match whole, through a dict.
"""

from __future__ import annotations

import heapq
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# Ranks of a match, best first: the search page shows why a node was found. A node keeps its best.
EXACT, PREFIX, CONTAINS, TAG, OWNER, COLUMN_EXACT, COLUMN, DESCRIPTION, COLUMN_DESCRIPTION = (
    100, 80, 60, 50, 45, 40, 35, 20, 15)
REASONS = {EXACT: "name", PREFIX: "name starts with", CONTAINS: "name contains", TAG: "tag", OWNER: "owner",
           COLUMN_EXACT: "column", COLUMN: "column", DESCRIPTION: "description",
           COLUMN_DESCRIPTION: "column description"}
GRAM = 3
_GRAMS_RE = re.compile(rf"(?=(.{{{GRAM}}}))", re.S)  # every slice of GRAM characters, overlapping


@dataclass
class Match:
    score: int = 0
    reason: str = ""
    column: str = ""  # the matched column's name
    matched: str = ""  # the text that matched (a tag, an owner)


@dataclass(frozen=True)
class Entry:
    """What search reads of one node on main, lower-cased once."""

    pk: int
    kind: str
    name: str
    low: str
    last: str  # a source's table part (`orders` of shop.orders); the name otherwise
    owner: str
    description: str
    tags: dict[str, str]  # lower -> as written
    columns: tuple[tuple[str, str], ...]  # (lower name, name), in position order
    column_descriptions: tuple[tuple[str, str], ...]  # (lower description, column name), in position order


class _Texts:
    """The distinct strings of one field, each with the entries that hold it, and a trigram index over
    the strings."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.ids: dict[str, int] = {}
        self.holders: list[array] = []  # per string: the entries that hold it, ascending
        self.grams: dict[str, array] = {}  # trigram -> the strings that contain it

    def add(self, text: str, entry: int) -> None:
        sid = self.ids.get(text)
        if sid is None:
            sid = self.ids[text] = len(self.strings)
            self.strings.append(text)
            self.holders.append(array("i"))
        held = self.holders[sid]
        if not held or held[-1] != entry:
            held.append(entry)

    def finish(self) -> None:
        """Index the strings' trigrams (once, after the last `add`)."""
        grams = self.grams
        for sid, text in enumerate(self.strings):
            for gram in set(_GRAMS_RE.findall(text)):
                posting = grams.get(gram)
                if posting is None:
                    posting = grams[gram] = array("i")
                posting.append(sid)

    def containing(self, term: str) -> list[int]:
        """The ids of the strings that contain `term`: those of its rarest trigram that really do, or
        for a term shorter than a trigram, all that do."""
        strings = self.strings
        if len(term) < GRAM:
            return [sid for sid, text in enumerate(strings) if term in text]
        rarest: Sequence[int] | None = None
        for i in range(len(term) - GRAM + 1):
            posting = self.grams.get(term[i:i + GRAM])
            if posting is None:
                return []
            if rarest is None or len(posting) < len(rarest):
                rarest = posting
        assert rarest is not None
        return [sid for sid in rarest if term in strings[sid]]

    def holding(self, term: str) -> set[int]:
        """The entries whose field contains `term`."""
        holders = self.holders
        return set().union(*[holders[sid] for sid in self.containing(term)])


class _Sorted:
    """Strings in order, to find those that start with a term (a range) without reading the others."""

    def __init__(self, strings: Iterable[tuple[str, int]]):
        pairs = sorted(strings)
        self.keys = [k for k, _ in pairs]
        self.ids = array("i", [i for _, i in pairs])

    def starting(self, term: str) -> tuple[list[int], list[int]]:
        """(ids of the strings equal to `term`, ids of those that start with it and are longer)."""
        keys, equal, longer = self.keys, [], []
        j = bisect_left(keys, term)
        while j < len(keys) and keys[j].startswith(term):
            (equal if keys[j] == term else longer).append(self.ids[j])
            j += 1
        return equal, longer


class CatalogIndex:
    """Main's entries, sorted by (name, pk) so that an entry's position is its place among equal
    scores, with the inverted index over their fields. Built once, then only read (threads share it)."""

    def __init__(self, entries: Iterable[Entry]):
        self.entries = sorted(entries, key=lambda e: (e.name, e.pk))
        self.names, self.owners, self.descriptions = _Texts(), _Texts(), _Texts()
        self.columns, self.column_descriptions = _Texts(), _Texts()
        self.tags: dict[str, list[int]] = {}  # lower tag -> entries
        self.kinds: dict[str, set[int]] = {}
        self.owned: dict[str, set[int]] = {}  # owner, whole -> entries (the `owner:` filter)
        lasts: dict[str, str] = {}  # a name -> its table part (equal names have equal parts)
        for i, e in enumerate(self.entries):
            self.kinds.setdefault(e.kind, set()).add(i)
            self.names.add(e.low, i)
            lasts.setdefault(e.low, e.last)
            if e.owner:
                self.owners.add(e.owner, i)
            self.owned.setdefault(e.owner, set()).add(i)
            if e.description:
                self.descriptions.add(e.description, i)
            for tag in e.tags:
                self.tags.setdefault(tag, []).append(i)
            for low, _ in e.columns:
                self.columns.add(low, i)
            for low, _ in e.column_descriptions:
                self.column_descriptions.add(low, i)
        for texts in (self.names, self.owners, self.descriptions, self.columns, self.column_descriptions):
            texts.finish()
        self.lows = _Sorted((low, sid) for sid, low in enumerate(self.names.strings))
        self.lasts = _Sorted((lasts[low], sid) for sid, low in enumerate(self.names.strings))

    def __len__(self) -> int:
        return len(self.entries)

    # ----------------------------------------------------------------------- filters

    def narrow(self, kind: str | None = None, tag: str = "", owner: str = "", column: str = "") -> set[int] | None:
        """The entries that pass the filters (lower-cased already), or None when there are none."""
        sets: list[set[int]] = []
        if kind:
            sets.append(self.kinds.get(kind, set()))
        if tag:
            sets.append(set(self.tags.get(tag, ())))
        if owner:
            sets.append(self.owned.get(owner, set()))
        if column:
            sid = self.columns.ids.get(column)
            sets.append(set(self.columns.holders[sid]) if sid is not None else set())
        if not sets:
            return None
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])

    # ----------------------------------------------------------------------- matching

    def _fields(self, t: str) -> Iterator[tuple[int, Iterable[int]]]:
        """(score, entries) for each way `t` (lower-cased) can match, best first; an entry may come
        again under a lower score, and keeps its first. Lazy: a search that has its fill stops."""
        names = self.names
        equal, longer = self.lows.starting(t)
        last_equal, last_longer = self.lasts.starting(t)
        yield EXACT, set().union(*[names.holders[sid] for sid in equal + last_equal])
        yield PREFIX, set().union(*[names.holders[sid] for sid in longer + last_longer])
        yield CONTAINS, names.holding(t)
        yield TAG, self.tags.get(t, ())
        yield OWNER, self.owners.holding(t)
        sid = self.columns.ids.get(t)
        yield COLUMN_EXACT, self.columns.holders[sid] if sid is not None else ()
        yield COLUMN, self.columns.holding(t)
        yield DESCRIPTION, self.descriptions.holding(t)
        yield COLUMN_DESCRIPTION, self.column_descriptions.holding(t)

    def _scored(self, t: str, among: set[int] | None, enough: int = 0) -> list[tuple[int, int]]:
        """(entry, score) of every entry (of `among`, or all) that `t` matches, best first and by
        position among equals; only the first `enough` of them when `enough` is positive."""
        taken: set[int] = set()
        out: list[tuple[int, int]] = []
        for score, ids in self._fields(t):
            new = set(ids) - taken
            if among is not None:
                new &= among
            if new:
                taken |= new
                out += ((i, score) for i in sorted(new))
                if 0 < enough <= len(out):
                    return out[:enough]
        return out

    def term_matches(self, term: str, among: set[int] | None = None) -> dict[int, Match]:
        """Every entry (of `among`, or all) that `term` matches anywhere, with its best match."""
        t = term.lower()
        return {i: self._detail(i, t, score) for i, score in self._scored(t, among)}

    def _detail(self, i: int, t: str, score: int) -> Match:
        """Why entry `i` matched `t` with `score`: the tag or owner as written, the first column."""
        e = self.entries[i]
        if score == TAG:
            return Match(score, REASONS[score], matched=e.tags[t])
        if score == OWNER:
            return Match(score, REASONS[score], matched=e.owner)
        if score == COLUMN_EXACT:
            return Match(score, REASONS[score], column=next(name for low, name in e.columns if low == t))
        if score == COLUMN:
            return Match(score, REASONS[score], column=next(name for low, name in e.columns if t in low))
        if score == COLUMN_DESCRIPTION:
            return Match(score, REASONS[score], column=next(name for low, name in e.column_descriptions if t in low))
        return Match(score, REASONS[score])

    # ----------------------------------------------------------------------- ranking

    def rank(self, words: list[str], filters: dict[str, str], kind: str | None, limit: int) -> list[tuple[int, Match]]:
        """The best `limit` (pk, match) for a parsed query, as `index.search` orders them: score, then
        name, then pk. Several words must each match (a node ranks by its weakest word, less one, unless
        the whole phrase matches better); filters narrow first, and alone list every node they let in."""
        among = self.narrow(kind, filters.get("tag", "").lower(), filters.get("owner", "").lower(),
                            filters.get("column", "").lower())
        entries = self.entries
        if not words:
            reason = next((f for f in ("column", "tag", "owner") if filters.get(f)), "")
            column = filters.get("column", "")
            matched = filters.get(reason, "") if reason in ("tag", "owner") else ""
            ids = range(len(entries)) if among is None else sorted(among)
            return [(entries[i].pk, Match(0, reason, column, matched)) for i in ids[:limit]]
        phrase = " ".join(words).lower()
        if len(words) == 1:
            return [(entries[i].pk, self._detail(i, phrase, score)) for i, score in self._scored(phrase, among, limit)
                    ][:limit]
        # entry -> (score, the term whose match explains it, that term's own score)
        ranked = {i: (score, phrase, score) for i, score in self._scored(phrase, among)}
        lows = [w.lower() for w in words]
        per_word = [dict(self._scored(w, among)) for w in lows]
        fewest, *others = sorted(per_word, key=len)
        for i in set(fewest).intersection(*others):
            scores = [m[i] for m in per_word]
            weakest = min(scores)
            if i not in ranked or ranked[i][0] < weakest - 1:
                ranked[i] = (weakest - 1, lows[scores.index(weakest)], weakest)  # the first word's on a tie
        key = lambda i: (-ranked[i][0], i)  # noqa: E731 - positions are in (name, pk) order
        best = heapq.nsmallest(limit, ranked, key=key) if 0 <= limit < len(ranked) else sorted(ranked, key=key)[:limit]
        out = []
        for i in best:
            score, term, own = ranked[i]
            m = self._detail(i, term, own)
            out.append((entries[i].pk, Match(score, m.reason, m.column, m.matched)))
        return out
