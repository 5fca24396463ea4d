"""Catalog search over main's nodes in memory: the entries, and an inverted index beside them.

Plain Python, no Django: `index.search` reads main's rows into `Entry`s once per version of main and
builds a `CatalogIndex` of them here; each search then asks the index. Scoring every entry for every
query cost 540 ms p95 at 10,000 nodes (docs/capacity.md); the index finds the entries whose fields
hold the query's terms, and ranks them exactly as the scan did.

Each searchable field (names, owners, column names, descriptions, column descriptions) is kept as its
distinct lower-cased strings (sorted, so names and columns are also found by equality and prefix with
a bisect), each with the entries that hold it; the words of those strings (runs of letters, digits and
`_`), each with the strings that hold it; and the trigrams of the words, each with the words that hold
it. A term is cut into its words: one bounded by punctuation or spaces inside the term is a whole word
of any string that contains the term, the first ends a word, the last starts one, a lone one is inside
one (and then every string holding such a word contains the term). The word with the fewest strings
decides which strings are read, and each is tested with the scan's own `term in string`. A term of one
or two characters scans the field's distinct strings (far fewer than the entries' fields, and the
page fills from the first fields). Tags match whole, through a dict.
"""

from __future__ import annotations

import heapq
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

# Ranks of a match, best first: the search page shows why a node was found. A node keeps its best.
EXACT, PREFIX, CONTAINS, TAG, OWNER, COLUMN_EXACT, COLUMN, DESCRIPTION, COLUMN_DESCRIPTION = (
    100, 80, 60, 50, 45, 40, 35, 20, 15)
REASONS = {EXACT: "name", PREFIX: "name starts with", CONTAINS: "name contains", TAG: "tag", OWNER: "owner",
           COLUMN_EXACT: "column", COLUMN: "column", DESCRIPTION: "description",
           COLUMN_DESCRIPTION: "column description"}
GRAM = 3
_GRAMS_RE = re.compile(rf"(?=(.{{{GRAM}}}))", re.S)  # every slice of GRAM characters, overlapping
_WORDS_RE = re.compile(r"\w+")


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


def _postings(items: list[str], keys_of: Callable[[str], list[str]]) -> dict[str, list[int]]:
    """Each key -> the positions in `items` whose `keys_of` yields it, in order, each position once."""
    postings: dict[str, list[int]] = {}
    for position, item in enumerate(items):
        for key in set(keys_of(item)):
            held = postings.get(key)
            if held is None:
                postings[key] = [position]
            else:
                held.append(position)
    return postings


def _grouped(lists: Iterable[list[int]]) -> tuple[array, array]:
    """Lists of ints as two arrays (a fraction of the memory of lists of int objects): list k is
    flat[offsets[k]:offsets[k + 1]]."""
    offsets, flat = array("i", [0]), array("i")
    for values in lists:
        flat.extend(values)
        offsets.append(len(flat))
    return offsets, flat


def _sorted_range(keys: Sequence[str], term: str) -> tuple[list[int], list[int]]:
    """(indexes of the keys equal to `term`, of those longer that start with it) in sorted `keys`."""
    equal, longer = [], []
    j = bisect_left(keys, term)
    while j < len(keys) and keys[j].startswith(term):
        (equal if keys[j] == term else longer).append(j)
        j += 1
    return equal, longer


class _Texts:
    """The distinct strings of one field with the entries that hold them, the words of the strings
    with the strings that hold them, and the trigrams of the words. Filled by `add`, then `finish`."""

    def __init__(self) -> None:
        self._adding: dict[str, list[int]] | None = {}
        self.strings: list[str] = []  # sorted
        self.words: list[str] = []  # sorted

    def add(self, text: str, entry: int) -> None:
        assert self._adding is not None, "finished"
        held = self._adding.get(text)
        if held is None:
            self._adding[text] = [entry]
        elif held[-1] != entry:
            held.append(entry)

    def finish(self) -> None:
        assert self._adding is not None, "finished already"
        self.strings = sorted(self._adding)
        self._holders = _grouped(self._adding[text] for text in self.strings)
        self._adding = None
        by_word = _postings(self.strings, _WORDS_RE.findall)
        self.words = sorted(by_word)
        self._word_strings = _grouped(by_word[word] for word in self.words)
        by_gram = _postings(self.words, _GRAMS_RE.findall)
        self._gram_words = {gram: array("i", wids) for gram, wids in by_gram.items()}

    # ----------------------------------------------------------------------- reading

    def holders(self, sid: int) -> array:
        offsets, flat = self._holders
        return flat[offsets[sid]:offsets[sid + 1]]

    def find(self, text: str) -> int | None:
        """The id of the string equal to `text`, if there is one."""
        j = bisect_left(self.strings, text)
        return j if j < len(self.strings) and self.strings[j] == text else None

    def starting(self, term: str) -> tuple[list[int], list[int]]:
        """(ids of the strings equal to `term`: one or none; ids of the longer ones that start with it)."""
        return _sorted_range(self.strings, term)

    def _words_for(self, run: str, starts: bool, ends: bool) -> list[int]:
        """The words that a string containing the term may hold `run` (a word of the term) in: the
        word itself when the term has a boundary on both sides of it, a word starting with it when on
        its left only (`starts`), ending with it when on its right only, holding it when on neither."""
        if starts:
            equal, longer = _sorted_range(self.words, run)
            return equal if ends else equal + longer
        if ends:
            def fits(word: str) -> bool:
                return word.endswith(run)
        else:
            def fits(word: str) -> bool:
                return run in word
        words = self.words
        if len(run) < GRAM:
            return [wid for wid, word in enumerate(words) if fits(word)]
        rarest: Sequence[int] | None = None
        for i in range(len(run) - GRAM + 1):
            posting = self._gram_words.get(run[i:i + GRAM])
            if posting is None:
                return []
            if rarest is None or len(posting) < len(rarest):
                rarest = posting
        assert rarest is not None
        return [wid for wid in rarest if fits(words[wid])]

    def containing(self, term: str) -> Iterable[int]:
        """The ids of the strings that contain `term`."""
        strings = self.strings
        if len(term) < GRAM:  # a scan of the distinct strings: cheaper than of the words, for names
            return [sid for sid, text in enumerate(strings) if term in text]
        offsets, flat = self._word_strings
        runs = list(_WORDS_RE.finditer(term))
        if len(runs) == 1 and runs[0].group() == term:
            # a term of word characters only is in a string exactly when it is in one of its words
            sids: set[int] = set()
            for w in self._words_for(term, starts=False, ends=False):
                sids.update(flat[offsets[w]:offsets[w + 1]])
            return sids
        fewest: list[int] | None = None
        cost = 0
        for m in runs:
            wids = self._words_for(m.group(), starts=m.start() > 0, ends=m.end() < len(term))
            n = sum(offsets[w + 1] - offsets[w] for w in wids)
            if fewest is None or n < cost:
                fewest, cost = wids, n
                if not n:
                    return []
        if fewest is None:  # only spaces and punctuation: no word to look up
            return [sid for sid, text in enumerate(strings) if term in text]
        candidates: set[int] = set()
        for w in fewest:
            candidates.update(flat[offsets[w]:offsets[w + 1]])
        return [sid for sid in candidates if term in strings[sid]]

    def holding(self, term: str) -> set[int]:
        """The entries whose field contains `term`."""
        offsets, flat = self._holders
        out: set[int] = set()
        for sid in self.containing(term):
            out.update(flat[offsets[sid]:offsets[sid + 1]])
        return out


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
        # a source's table part, for the names that have one (`orders` of shop.orders): found as a name is
        parts = sorted((lasts[low], sid) for sid, low in enumerate(self.names.strings) if lasts[low] != low)
        self._parts, self._part_names = [p for p, _ in parts], [sid for _, sid in parts]

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
            sid = self.columns.find(column)
            sets.append(set(self.columns.holders(sid)) if sid is not None else set())
        if not sets:
            return None
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])

    # ----------------------------------------------------------------------- matching

    def _fields(self, t: str) -> Iterator[tuple[int, Iterable[int]]]:
        """(score, entries) for each way `t` (lower-cased) can match, best first; an entry may come
        again under a lower score, and keeps its first. Lazy: a search that has its fill stops."""
        names = self.names
        equal, longer = names.starting(t)
        part_equal, part_longer = _sorted_range(self._parts, t)
        equal += [self._part_names[j] for j in part_equal]
        longer += [self._part_names[j] for j in part_longer]
        yield EXACT, set().union(*[names.holders(sid) for sid in equal])
        yield PREFIX, set().union(*[names.holders(sid) for sid in longer])
        yield CONTAINS, names.holding(t)
        yield TAG, self.tags.get(t, ())
        yield OWNER, self.owners.holding(t)
        sid = self.columns.find(t)
        yield COLUMN_EXACT, self.columns.holders(sid) if sid is not None else ()
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
