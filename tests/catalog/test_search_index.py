"""The catalog's inverted index answers exactly what scoring every node did: same nodes, same order,
same reasons. The scan below is the search as it was before the index (models_service/index.py until
the index), kept verbatim as the reference."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models_service import catalog_index, index
from models_service.catalog_index import (
    COLUMN,
    COLUMN_DESCRIPTION,
    COLUMN_EXACT,
    CONTAINS,
    DESCRIPTION,
    EXACT,
    OWNER,
    PREFIX,
    REASONS,
    TAG,
    CatalogIndex,
    Entry,
)
from models_service.models import IndexedColumn, IndexedNode, IndexedTag

# --------------------------------------------------------------------------- the reference: a scan


class _Match:
    def __init__(self, score=0, reason="", column="", matched=""):
        self.score, self.reason, self.column, self.matched = score, reason, column, matched

    def offer(self, score, column="", matched=""):
        if score > self.score:
            self.score, self.reason, self.column, self.matched = score, REASONS[score], column, matched


def scan_term_matches(entries, term):
    found = {}
    t = term.lower()
    for e in entries:
        column_names = "\n".join(low for low, _ in e.columns)
        m = _Match()
        if t in e.low:
            m.offer(EXACT if t in (e.low, e.last) else PREFIX if e.low.startswith(t) or e.last.startswith(t)
                    else CONTAINS)
        if m.score < TAG and t in e.tags:
            m.offer(TAG, matched=e.tags[t])
        if m.score < OWNER and e.owner and t in e.owner:
            m.offer(OWNER, matched=e.owner)
        if m.score < COLUMN_EXACT and t in column_names:
            exact = next((name for low, name in e.columns if low == t), None)
            if exact is not None:
                m.offer(COLUMN_EXACT, column=exact)
            else:
                m.offer(COLUMN, column=next(name for low, name in e.columns if t in low))
        if m.score < DESCRIPTION and t in e.description:
            m.offer(DESCRIPTION)
        if m.score < COLUMN_DESCRIPTION:
            hit = next((name for low, name in e.column_descriptions if t in low), None)
            if hit is not None:
                m.offer(COLUMN_DESCRIPTION, column=hit)
        if m.score:
            found[e.pk] = m
    return found


def scan_rank(entries, words, filters, kind, limit):
    if kind:
        entries = [e for e in entries if e.kind == kind]
    if tag := filters.get("tag", "").lower():
        entries = [e for e in entries if tag in e.tags]
    if owner := filters.get("owner", "").lower():
        entries = [e for e in entries if e.owner == owner]
    if column := filters.get("column", "").lower():
        entries = [e for e in entries if any(low == column for low, _ in e.columns)]
    if not words:
        reason = next((f for f in ("column", "tag", "owner") if filters.get(f)), "")
        ranked = {e.pk: _Match(0, reason, filters.get("column", ""), filters.get(reason, "") if reason in (
            "tag", "owner") else "") for e in entries}
    else:
        ranked = scan_term_matches(entries, " ".join(words))
        if len(words) > 1:
            per_word = [scan_term_matches(entries, w) for w in words]
            for pk in set.intersection(*(set(m) for m in per_word)):
                weakest = min((m[pk] for m in per_word), key=lambda m: m.score)
                if pk not in ranked or ranked[pk].score < weakest.score - 1:
                    ranked[pk] = _Match(weakest.score - 1, weakest.reason, weakest.column, weakest.matched)
    names = {e.pk: e.name for e in entries}
    best = sorted(ranked, key=lambda pk: (-ranked[pk].score, names[pk], pk))[:limit]
    return [(pk, ranked[pk].score, ranked[pk].reason, ranked[pk].column, ranked[pk].matched) for pk in best]


def indexed_rank(catalog, words, filters, kind, limit):
    return [(pk, m.score, m.reason, m.column, m.matched) for pk, m in catalog.rank(words, filters, kind, limit)]


def entry(pk, kind, name, owner="", description="", tags=(), columns=()):
    """An entry as index._catalog reads one from its rows (columns: (name, description) in order)."""
    low = name.lower()
    return Entry(pk, kind, name, low, low.rsplit(".", 1)[-1], owner.lower(), description.lower(),
                 {t.lower(): t for t in tags}, tuple((c.lower(), c) for c, _ in columns),
                 tuple((d.lower(), c) for c, d in columns if d))


# --------------------------------------------------------------------------- random projects, random queries

# Few letters, so that names, columns and words share substrings, prefixes and whole strings often.
LETTERS = "abcAB_.-1İ"
TEXT = st.text(alphabet=LETTERS, min_size=1, max_size=6)
PROSE = st.text(alphabet="abcB _.-İ\n", max_size=24)  # descriptions, across lines
KINDS = ["model", "seed", "source"]


@st.composite
def projects(draw):
    # Names, columns, tags and owners come mostly from a few words and their upper-case forms, so that
    # one node has two columns equal but for case, two nodes share a name, a tag is also a column...
    vocab = draw(st.lists(TEXT, min_size=1, max_size=6))
    word = st.one_of(TEXT, st.sampled_from(vocab), st.sampled_from(vocab).map(str.upper))
    entries = []
    pks = draw(st.permutations(range(1, 41)))  # pk order is not name order
    for i in range(draw(st.integers(0, 40))):
        name = draw(word)
        kind = draw(st.sampled_from(KINDS))
        if kind == "source" and draw(st.booleans()):
            name = f"{draw(word)}.{name}"
        columns = draw(st.lists(st.tuples(word, st.one_of(st.just(""), PROSE, word)), max_size=5))
        entries.append(entry(pks[i], kind, name, owner=draw(st.one_of(st.just(""), word, PROSE)),
                             description=draw(st.one_of(PROSE, word)), tags=draw(st.lists(word, max_size=3)),
                             columns=columns))
    return entries


TOKENS = st.one_of(
    TEXT, TEXT, TEXT,
    st.builds(lambda k, v: f"{k}:{v}", st.sampled_from(["tag", "owner", "column", "Tag"]), TEXT),
    st.builds(lambda k: f"kind:{k}", st.sampled_from(KINDS)),
    st.builds(lambda v: f'"{v}"', st.text(alphabet=LETTERS + " ", max_size=8)),
    st.builds(lambda k, v: f'{k}:"{v}"', st.sampled_from(["owner", "tag"]), st.text(alphabet=LETTERS + " ", max_size=8)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects(), st.lists(TOKENS, max_size=4), st.one_of(st.none(), st.sampled_from(KINDS)),
       st.sampled_from([1, 3, 50, 0, -1]), st.data())
def test_the_index_ranks_exactly_as_a_scan_of_every_node(entries, tokens, kind, limit, data):
    query = " ".join(tokens)
    words, filters = index.parse_query(query)
    kind = filters.pop("kind", None) or kind
    catalog = CatalogIndex(entries)
    assert indexed_rank(catalog, words, filters, kind, limit) == scan_rank(entries, words, filters, kind, limit)
    # and words taken from the project itself, which match far more often than drawn ones
    texts = [t for e in entries for t in (e.name, e.owner, e.description, *e.tags, *(c for _, c in e.columns))]
    if texts:
        words = []
        for _ in range(data.draw(st.integers(1, 3))):
            text = data.draw(st.sampled_from(texts))
            start = data.draw(st.integers(0, len(text)))
            word = text[start:start + data.draw(st.integers(1, 5))].replace("\n", " ").replace('"', "").strip()
            if word:
                words.append(word)
        assert indexed_rank(catalog, words, filters, kind, 50) == scan_rank(entries, words, filters, kind, 50)


def test_a_node_matched_by_two_words_equally_well_shows_the_first_words_match():
    entries = [entry(1, "model", "m1", columns=[("ab_x", ""), ("cd_y", "")]),
               entry(2, "model", "m2", columns=[("ab_z", "")]),
               entry(3, "model", "m3", columns=[("ab_w", "")])]
    catalog = CatalogIndex(entries)
    for words in (["ab", "cd"], ["cd", "ab"]):
        assert indexed_rank(catalog, words, {}, None, 50) == scan_rank(entries, words, {}, None, 50)
    assert indexed_rank(catalog, ["cd", "ab"], {}, None, 50) == [(1, COLUMN - 1, "column", "cd_y", "")]


@pytest.mark.django_db
def test_search_through_the_database_answers_as_the_scan(analyst):
    """Rows written to the index, read back by `index.search`: the same hits, order, reasons and
    columns as the scan over what was written (a branch's rows and deleted rows are not main's)."""
    rng = random.Random(20261207)
    words = ["orders", "order", "revenue", "daily", "customer", "id", "amount", "Finance", "ana", "the"]
    entries = []
    for i in range(150):
        kind = rng.choice(KINDS)
        name = "_".join(rng.sample(words, rng.randint(1, 3))).lower()
        name = f"shop.{name}" if kind == "source" else f"{name}_{i}" if rng.random() < 0.7 else name
        owner = rng.choice(["", "ana", "Finance-Team", "bob"])
        description = " ".join(rng.choices(words, k=rng.randint(0, 6)))
        tags = rng.sample(["finance", "Daily", "pii", "core"], rng.randint(0, 2))
        columns = [(rng.choice(words[:7]) + rng.choice(["", "_id", "_EUR"]), rng.choice(["", "the " + rng.choice(words)]))
                   for _ in range(rng.randint(0, 6))]
        ref, deleted = ("changes/1-x", False) if i % 37 == 0 else ("main", i % 41 == 5)
        if IndexedNode.objects.filter(ref=ref, kind=kind, name=name).exists():
            continue
        row = IndexedNode.objects.create(ref=ref, kind=kind, name=name, owner=owner, description=description,
                                         deleted=deleted)
        IndexedColumn.objects.bulk_create([IndexedColumn(node=row, name=c, description=d, position=p)
                                           for p, (c, d) in enumerate(columns)])
        IndexedTag.objects.bulk_create([IndexedTag(node=row, tag=t) for t in tags])
        if ref == "main" and not deleted:
            entries.append(entry(row.pk, kind, name, owner, description, tags, columns))
    queries = [*words, "ord", "or", "e", "d_", "nue_1", "orders daily", "the amount", "tag:finance", "tag:daily order",
               "owner:ana", "owner:finance-team revenue", "column:amount_eur", "column:id the", "kind:source orders",
               '"the order"', "ORDERS_1", "shop.orders", "finance-team", "_eur", "zzz", ""]
    for q in queries:
        words_, filters = index.parse_query(q)
        kind = filters.pop("kind", None)
        hits = [(h.node.pk, h.score, h.reason, h.column, h.matched) for h in index.search(analyst, q, limit=20)]
        assert hits == scan_rank(entries, words_, filters, kind, 20), q


# --------------------------------------------------------------------------- behaviour around it


@pytest.mark.django_db
def test_a_quoted_phrase_across_lines_finds_nothing_in_columns_instead_of_failing(analyst):
    # The scan looked in the column names joined by newlines: a phrase spanning two columns was "in"
    # them, and finding which column then raised StopIteration (a server error).
    node = IndexedNode.objects.create(ref="main", kind="model", name="orders")
    IndexedColumn.objects.create(node=node, name="order_id", position=0)
    IndexedColumn.objects.create(node=node, name="amount", position=1)
    assert index.search(analyst, '"id\namount"') == []
    assert [h.column for h in index.search(analyst, "id")] == ["order_id"]


@pytest.mark.django_db
def test_the_index_is_built_once_per_version_of_main(analyst, monkeypatch):
    built = []
    real = catalog_index.CatalogIndex.__init__

    def counting(self, entries):
        built.append(1)
        real(self, entries)

    monkeypatch.setattr(catalog_index.CatalogIndex, "__init__", counting)
    IndexedNode.objects.create(ref="main", kind="model", name="orders")
    assert [h.node.name for h in index.search(analyst, "orders")] == ["orders"]
    index.search(analyst, "ord")
    index.search(analyst, "tag:x")
    assert len(built) == 1
    IndexedNode.objects.create(ref="main", kind="model", name="stg_orders")
    assert [h.node.name for h in index.search(analyst, "orders")] == ["orders", "stg_orders"]
    assert len(built) == 2


def test_a_term_reads_only_the_strings_that_hold_its_words():
    # 1,000 descriptions with "the", one with "zebra": looking for "the zebra" tests one string, not 1,001.
    entries = [entry(i, "model", f"m{i}", description=f"the row {i}") for i in range(1000)]
    entries.append(entry(1000, "model", "zoo", description="the zebra"))
    catalog = CatalogIndex(entries)
    tested = []

    class Counting(list):
        def __getitem__(self, i):
            tested.append(i)
            return super().__getitem__(i)

    catalog.descriptions.strings = Counting(catalog.descriptions.strings)
    assert [pk for pk, _ in catalog.rank(["the zebra"], {}, None, 50)] == [1000]
    assert len(tested) == 1
    assert [pk for pk, _ in catalog.rank(["zebr"], {}, None, 50)] == [1000]
    assert len(tested) == 1  # a term of word characters is found by its words alone
    assert len(catalog.rank(["the"], {}, None, 2000)) == 1001
