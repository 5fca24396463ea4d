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
from collections.abc import Iterable, Sequence
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
    """The distinct strings of one field, each with its holders (entry, and the first place in that
    entry's list that holds the string), and the trigrams of the strings."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.ids: dict[str, int] = {}
        self.entries: list[array] = []  # per string: the entries that hold it, ascending
        self.places: list[array] = []  # per string: where in each entry's list it first is
        self.grams: dict[str, array] = {}

    def add(self, text: str, entry: int, place: int = 0) -> None:
        sid = self.ids.get(text)
        if sid is None:
            sid = self.ids[text] = len(self.strings)
            self.strings.append(text)
            self.entries.append(array("i"))
            self.places.append(array("i"))
        held = self.entries[sid]
        if held and held[-1] == entry:
            return  # this entry has the string already, at an earlier place
        held.append(entry)
        self.places[sid].append(place)

    def finish(self) -> None:
        """Index the strings' trigrams (once, after the last `add`)."""
        grams = self.grams
        for sid, text in enumerate(self.strings):
            for gram in set(_GRAMS_RE.findall(text)):
                posting = grams.get(gram)
                if posting is None:
                    posting = grams[gram] = array("i")
                posting.append(sid)

    def containing(self, term: str) -> Iterable[int]:
        """The ids of the strings that contain `term`."""
        strings = self.strings
        if len(term) < GRAM:
            return [sid for sid, text in enumerate(strings) if term in text]
        rarest: Sequence[int] | None = None
        for i in range(len(term) - GRAM + 1):
            posting = self.grams.get(term[i:i + GRAM])
            if posting is None:
                return ()
            if rarest is None or len(posting) < len(rarest):
                rarest = posting
        assert rarest is not None
        return [sid for sid in rarest if term in strings[sid]]


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
        for i, e in enumerate(self.entries):
            self.kinds.setdefault(e.kind, set()).add(i)
            self.names.add(e.low, i)
            if e.owner:
                self.owners.add(e.owner, i)
            self.owned.setdefault(e.owner, set()).add(i)
            if e.description:
                self.descriptions.add(e.description, i)
            for tag in e.tags:
                self.tags.setdefault(tag, []).append(i)
            for place, (low, _) in enumerate(e.columns):
                self.columns.add(low, i, place)
            for place, (low, _) in enumerate(e.column_descriptions):
                self.column_descriptions.add(low, i, place)
        for texts in (self.names, self.owners, self.descriptions, self.columns, self.column_descriptions):
            texts.finish()

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
            sets.append(set(self.columns.entries[sid]) if sid is not None else set())
        if not sets:
            return None
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])

    # ----------------------------------------------------------------------- matching

    def term_matches(self, term: str, among: set[int] | None = None) -> dict[int, Match]:
        """Every entry (of `among`, or all) that `term` matches anywhere, with its best match: the
        fields are visited best first, and an entry keeps the first field that matched it."""
        t = term.lower()
        found: dict[int, Match] = {}
        entries = self.entries

        def fresh(i: int) -> bool:
            return i not in found and (among is None or i in among)

        names = self.names
        for sid in names.containing(t):
            low = names.strings[sid]
            for i in names.entries[sid]:
                if among is None or i in among:
                    last = entries[i].last
                    score = (EXACT if t == low or t == last else PREFIX if low.startswith(t) or last.startswith(t)
                             else CONTAINS)
                    found[i] = Match(score, REASONS[score])
        for i in self.tags.get(t, ()):
            if fresh(i):
                found[i] = Match(TAG, REASONS[TAG], matched=entries[i].tags[t])
        owners = self.owners
        for sid in owners.containing(t):
            for i in owners.entries[sid]:
                if fresh(i):
                    found[i] = Match(OWNER, REASONS[OWNER], matched=owners.strings[sid])
        columns = self.columns
        sid = columns.ids.get(t)
        if sid is not None:
            for i, place in zip(columns.entries[sid], columns.places[sid], strict=True):
                if fresh(i):
                    found[i] = Match(COLUMN_EXACT, REASONS[COLUMN_EXACT], column=entries[i].columns[place][1])
        for i, place in self._first_places(columns, t, fresh).items():
            found[i] = Match(COLUMN, REASONS[COLUMN], column=entries[i].columns[place][1])
        descriptions = self.descriptions
        for sid in descriptions.containing(t):
            for i in descriptions.entries[sid]:
                if fresh(i):
                    found[i] = Match(DESCRIPTION, REASONS[DESCRIPTION])
        for i, place in self._first_places(self.column_descriptions, t, fresh).items():
            found[i] = Match(COLUMN_DESCRIPTION, REASONS[COLUMN_DESCRIPTION],
                             column=entries[i].column_descriptions[place][1])
        return found

    @staticmethod
    def _first_places(texts: _Texts, t: str, fresh) -> dict[int, int]:
        """For each entry `fresh` lets through, the first place in its list whose string holds `t`."""
        first: dict[int, int] = {}
        for sid in texts.containing(t):
            for i, place in zip(texts.entries[sid], texts.places[sid], strict=True):
                if fresh(i) and (i not in first or place < first[i]):
                    first[i] = place
        return first

    # ----------------------------------------------------------------------- ranking

    def rank(self, words: list[str], filters: dict[str, str], kind: str | None, limit: int) -> list[tuple[int, Match]]:
        """The best `limit` (pk, match) for a parsed query, as `index.search` orders them: score, then
        name, then pk. Several words must each match (a node ranks by its weakest word, less one, unless
        the whole phrase matches better); filters narrow first, and alone list every node they let in."""
        among = self.narrow(kind, filters.get("tag", "").lower(), filters.get("owner", "").lower(),
                            filters.get("column", "").lower())
        if not words:
            reason = next((f for f in ("column", "tag", "owner") if filters.get(f)), "")
            column = filters.get("column", "")
            matched = filters.get(reason, "") if reason in ("tag", "owner") else ""
            ids = range(len(self.entries)) if among is None else sorted(among)
            return [(self.entries[i].pk, Match(0, reason, column, matched)) for i in ids[:limit]]
        ranked = self.term_matches(" ".join(words), among)
        if len(words) > 1:
            per_word = [self.term_matches(w, among) for w in words]
            fewest, *others = sorted(per_word, key=len)
            for i in set(fewest).intersection(*others):
                weakest = min((m[i] for m in per_word), key=lambda m: m.score)  # the first word's on a tie
                if i not in ranked or ranked[i].score < weakest.score - 1:
                    ranked[i] = Match(weakest.score - 1, weakest.reason, weakest.column, weakest.matched)
        key = lambda i: (-ranked[i].score, i)  # noqa: E731 - positions are in (name, pk) order
        best = heapq.nsmallest(limit, ranked, key=key) if 0 <= limit < len(ranked) else sorted(ranked, key=key)[:limit]
        return [(self.entries[i].pk, ranked[i]) for i in best]
