"""The database index of the repository: rebuilt from git whole, or updated after each write and merge.

Git is the source of truth; these rows make search and pages fast (walking 10,000 files per request
would not be). `main` is indexed whole. A change branch keeps rows only for the models it touched
(`deleted` for one it removes), laid over main's rows by `models_in`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.db.models.signals import post_delete, post_save

from . import access, model_files
from .catalog_index import CatalogIndex, Entry
from .errors import InvalidInput, ModelVersion
from .git_store import MAIN_REF, GitStore, Snapshot, names
from .models import ChangeRequest, IndexedColumn, IndexedNode, IndexedRef, IndexedTag, NodeKind
from .project_files import ModelSpec, ProjectFileError, parse_project_file, parse_properties

log = logging.getLogger(__name__)
MAIN = "main"
REF_RE = re.compile(r"""\bref\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*(?:,\s*['"][^'"]*['"]\s*)?(?:,\s*v(?:ersion)?=[^)]*)?\)""")
SOURCE_RE = re.compile(r"""\bsource\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)""")
CONFIG_RE = re.compile(r"\{\{\s*config\((.*?)\)\s*\}\}", re.S)
MATERIALIZED_RE = re.compile(r"""materialized\s*=\s*['"](\w+)['"]""")
TAGS_RE = re.compile(r"""tags\s*=\s*(\[[^\]]*\]|['"][^'"]*['"])""")


# --------------------------------------------------------------------------- reading a node out of git


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if isinstance(v, (str, int))]
    return []


def _sql_config(sql: str) -> tuple[str, list[str]]:
    materialized, tags = "", []
    for body in CONFIG_RE.findall(sql):
        if m := MATERIALIZED_RE.search(body):
            materialized = m.group(1)
        if m := TAGS_RE.search(body):
            tags += re.findall(r"""['"]([^'"]+)['"]""", m.group(1))
    return materialized, tags


def depends_on(sql: str) -> list[str]:
    found = [m.group(1) for m in REF_RE.finditer(sql)]
    found += [f"{a}.{b}" for a, b in SOURCE_RE.findall(sql)]
    return sorted(set(found))


def _spec_fields(spec: ModelSpec) -> tuple[str, str, list[str]]:
    meta = dict(spec.extra.get("meta") or {}) if isinstance(spec.extra.get("meta"), dict) else {}
    config_meta = spec.config.get("meta") if isinstance(spec.config.get("meta"), dict) else {}
    owner = str(meta.get("owner") or config_meta.get("owner") or spec.config.get("owner") or "")
    tags = _tags(spec.config.get("tags")) + _tags(spec.extra.get("tags"))
    return owner, str(spec.config.get("materialized") or ""), tags


def model_row(v: ModelVersion) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """(node fields, columns, tags) of a model version."""
    owner, materialized, tags = _spec_fields(v.spec)
    sql_materialized, sql_tags = _sql_config(v.sql)
    fields = {
        "path": v.sql_path, "yml_path": v.yml_path or "", "sql_blob": v.sql_blob, "yml_blob": v.yml_blob,
        "description": v.spec.description, "owner": owner[:200], "materialized": sql_materialized or materialized,
        "depends_on": depends_on(v.sql), "deleted": False, "commit_sha": v.commit,
    }
    columns = [
        {"name": c.name[:200], "description": c.description, "data_type": str(c.data_type or "")[:100],
         "tests": [t.kind for t in c.tests], "position": i}
        for i, c in enumerate(v.spec.columns)
    ]
    return fields, columns, sorted(set(tags + sql_tags))


# --------------------------------------------------------------------------- writing rows


def _mark_ref(ref: str, sha: str) -> None:
    # One upsert: update_or_create costs a savepoint, a SELECT ... FOR UPDATE and an UPDATE, and after
    # a save this runs while the change's row is locked (changes._record).
    IndexedRef.objects.bulk_create([IndexedRef(ref=ref, sha=sha)], update_conflicts=True, unique_fields=["ref"],
                                   update_fields=["sha", "indexed_at"])


def index_models(ref: str, snap: Snapshot, model_names: Iterable[str], *, overlay: bool = False) -> None:
    """Re-read the named models at `snap` into `ref`'s rows (missing ones are removed, or marked deleted
    on an overlay).

    A handful of statements whatever the number of models (a group of concurrent saves indexes
    twenty-odd at once): an upsert on (ref, kind, name) for the rows read, one for rows marked
    deleted (which keep their other fields), then their columns and tags replaced in bulk. No
    savepoint of its own: a failure here fails the caller's transaction (a save's bookkeeping runs
    this while holding the change's row, so every statement counts).
    """
    model_names = list(dict.fromkeys(model_names))
    if not model_names:
        return
    with transaction.atomic(savepoint=False):
        rows = {n.name: n for n in IndexedNode.objects.filter(ref=ref, kind=NodeKind.MODEL, name__in=model_names)}
        found: dict[str, tuple[dict[str, Any], list[dict[str, Any]], list[str]]] = {}
        gone: list[str] = []
        for name in model_names:
            existing = rows.get(name)
            hints = tuple(p for p in (existing.path, existing.yml_path) if p) if existing else ()
            try:
                v = model_files.version(snap, name, hints)
            except ProjectFileError as exc:
                log.warning("index: %s at %s: %s", name, snap.commit, exc)
                continue
            if v is None:
                gone.append(name)
            else:
                found[name] = model_row(v)
        if gone and not overlay:
            IndexedNode.objects.filter(ref=ref, kind=NodeKind.MODEL, name__in=gone).delete()
            gone = []
        upserted: list[IndexedNode] = []
        if found:
            fields = list(next(iter(found.values()))[0])
            upserted += IndexedNode.objects.bulk_create(
                [IndexedNode(ref=ref, kind=NodeKind.MODEL, name=name, **row) for name, (row, _, _) in found.items()],
                update_conflicts=True, unique_fields=["ref", "kind", "name"], update_fields=fields)
        if gone:
            upserted += IndexedNode.objects.bulk_create(
                [IndexedNode(ref=ref, kind=NodeKind.MODEL, name=name, deleted=True, commit_sha=snap.commit or "")
                 for name in gone],
                update_conflicts=True, unique_fields=["ref", "kind", "name"], update_fields=["deleted", "commit_sha"])
        if not upserted:
            return
        if any(node.pk is None for node in upserted):  # a backend that returns no ids from an upsert
            pks = dict(IndexedNode.objects.filter(ref=ref, kind=NodeKind.MODEL, name__in=[n.name for n in upserted])
                       .values_list("name", "pk"))
        else:
            pks = {node.name: node.pk for node in upserted}
        IndexedColumn.objects.filter(node_id__in=pks.values()).delete()
        IndexedTag.objects.filter(node_id__in=pks.values()).delete()
        IndexedColumn.objects.bulk_create(
            [IndexedColumn(node_id=pks[name], **c) for name, (_, columns, _) in found.items() for c in columns],
            batch_size=1000)
        IndexedTag.objects.bulk_create(
            [IndexedTag(node_id=pks[name], tag=t[:100]) for name, (_, _, tags) in found.items()
             for t in {t[:100] for t in tags}],
            batch_size=1000)


def rebuild(store: GitStore, ref: str = MAIN_REF) -> dict[str, int]:
    """Index every model, seed and source of a ref from scratch (main: the catalog)."""
    tip = store.tip(ref)
    short = names.short_ref(ref)
    snap = store.snapshot(tip)
    nodes: list[tuple[IndexedNode, list[dict[str, Any]], list[str]]] = []
    if tip is not None:
        nodes = _all_nodes(snap, short)
    with transaction.atomic():
        IndexedNode.objects.filter(ref=short).delete()
        created = IndexedNode.objects.bulk_create([n for n, _, _ in nodes], batch_size=500)
        IndexedColumn.objects.bulk_create(
            [IndexedColumn(node=node, **c) for node, (_, cols, _) in zip(created, nodes, strict=True) for c in cols],
            batch_size=1000,
        )
        IndexedTag.objects.bulk_create(
            [IndexedTag(node=node, tag=t[:100]) for node, (_, _, tags) in zip(created, nodes, strict=True)
             for t in set(tags)],
            batch_size=1000,
        )
        if tip:
            _mark_ref(short, tip)
    counts: dict[str, int] = {}
    for node, _, _ in nodes:
        counts[node.kind] = counts.get(node.kind, 0) + 1
    return counts


def _all_nodes(snap: Snapshot, ref: str) -> list[tuple[IndexedNode, list[dict[str, Any]], list[str]]]:
    try:
        cfg = parse_project_file(snap.text("dbt_project.yml") or "")
        model_paths, seed_paths = cfg.model_paths, cfg.seed_paths
    except ProjectFileError as exc:
        log.warning("index: dbt_project.yml at %s: %s", snap.commit, exc)
        model_paths, seed_paths = ["models"], ["seeds"]
    sql: dict[str, tuple[str, str]] = {}  # name -> (path, blob)
    seeds: dict[str, tuple[str, str]] = {}
    specs: dict[str, tuple[ModelSpec, str, str]] = {}  # name -> (spec, yml path, yml blob)
    out: list[tuple[IndexedNode, list[dict[str, Any]], list[str]]] = []
    for root in model_paths + seed_paths:
        for path, entry in snap.walk(root):
            if not entry.is_blob:
                continue  # symlinks and submodules are not part of the project the portal reads
            stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            if path.endswith(".sql") and root in model_paths and names.is_identifier(stem):
                sql[stem] = (path, entry.oid)
            elif path.endswith(".csv") and root in seed_paths and names.is_identifier(stem):
                seeds[stem] = (path, entry.oid)
            elif path.endswith((".yml", ".yaml")):
                try:
                    props = parse_properties(snap.store.git.read_text(entry.oid), path)
                except ProjectFileError as exc:
                    log.warning("index: %s at %s: %s", path, snap.commit, exc)
                    continue
                for spec in props.models + props.seeds:
                    specs.setdefault(spec.name, (spec, path, entry.oid))
                for src in props.sources:
                    for tbl in src.tables:
                        node = IndexedNode(ref=ref, kind=NodeKind.SOURCE, name=f"{src.name}.{tbl.name}", path=path,
                                           yml_path=path, yml_blob=entry.oid, description=tbl.description or src.description,
                                           commit_sha=snap.commit or "")
                        cols = [{"name": c.name[:200], "description": c.description, "data_type": str(c.data_type or "")[:100],
                                 "tests": [t.kind for t in c.tests], "position": i} for i, c in enumerate(tbl.columns)]
                        out.append((node, cols, []))
    for name, (path, blob) in sql.items():
        spec, yml_path, yml_blob = specs.get(name, (ModelSpec(name=name), "", ""))
        v = ModelVersion(name=name, commit=snap.commit or "", sql=snap.store.git.read_text(blob), spec=spec,
                         sql_path=path, yml_path=yml_path or None, sql_blob=blob, yml_blob=yml_blob)
        fields, columns, tags = model_row(v)
        out.append((IndexedNode(ref=ref, kind=NodeKind.MODEL, name=name, **fields), columns, tags))
    for name, (path, blob) in seeds.items():
        spec, yml_path, yml_blob = specs.get(name, (ModelSpec(name=name), "", ""))
        owner, _, tags = _spec_fields(spec)
        cols = [{"name": c.name[:200], "description": c.description, "data_type": str(c.data_type or "")[:100],
                 "tests": [t.kind for t in c.tests], "position": i} for i, c in enumerate(spec.columns)]
        node = IndexedNode(ref=ref, kind=NodeKind.SEED, name=name, path=path, yml_path=yml_path, sql_blob=blob,
                           yml_blob=yml_blob, description=spec.description, owner=owner[:200], commit_sha=snap.commit or "")
        out.append((node, cols, tags))
    return out


def update_main(store: GitStore, old: str | None, new: str) -> None:
    """Bring main's rows from commit `old` to `new`: only what changed is read again."""
    indexed = IndexedRef.objects.filter(ref=MAIN).values_list("sha", flat=True).first()
    if old is None or indexed != old:
        rebuild(store, MAIN_REF)  # the index was not at `old`: start afresh
        return
    paths = store.changed_paths(old, new)
    if "dbt_project.yml" in paths or any(not p.startswith("models/") for p in paths if p.endswith((".yml", ".yaml", ".csv"))):
        rebuild(store, MAIN_REF)
        return
    old_snap, new_snap = store.snapshot(old), store.snapshot(new)
    if any(p.endswith((".yml", ".yaml")) and _has_sources(new_snap, old_snap, p) for p in paths):
        rebuild(store, MAIN_REF)
        return
    index_models(MAIN, new_snap, sorted(model_files.affected_models(old_snap, new_snap, paths)))
    _mark_ref(MAIN, new)


def _has_sources(new_snap: Snapshot, old_snap: Snapshot, path: str) -> bool:
    for snap in (new_snap, old_snap):
        data = snap.read(path)
        if data and b"sources:" in data:
            return True
    return False


def index_change(store: GitStore, change: ChangeRequest, model_names: Iterable[str] | None = None) -> None:
    """Overlay rows for a change: the given models (after a save), or all it touches since its merge base."""
    if not change.branch or not change.head_sha:
        return
    short = change.branch_name
    snap = store.snapshot(change.head_sha)
    if model_names is None:
        main = store.tip(MAIN_REF)
        base = store.merge_base(main, change.head_sha) if main else None
        paths = store.changed_paths(base, change.head_sha) if base else []
        model_names = sorted(model_files.affected_models(store.snapshot(base), snap, paths)) if base else []
        IndexedNode.objects.filter(ref=short).exclude(name__in=list(model_names)).delete()
    index_models(short, snap, list(model_names), overlay=True)
    _mark_ref(short, change.head_sha)


def drop_change(change: ChangeRequest) -> None:
    IndexedNode.objects.filter(ref=change.branch_name).delete()
    IndexedRef.objects.filter(ref=change.branch_name).delete()


def rebuild_all(store: GitStore) -> dict[str, Any]:
    """What `manage.py dmaas_reindex` does: main whole, then every open change's overlay."""
    counts = rebuild(store, MAIN_REF)
    changes = ChangeRequest.objects.exclude(branch=None).filter(state__in=[s.value for s in _open_states()])
    for change in changes:
        tip = store.tip(change.branch)
        if tip and tip != change.head_sha:
            ChangeRequest.objects.filter(pk=change.pk).update(head_sha=tip)
            change.head_sha = tip
        index_change(store, change)
    stale = IndexedNode.objects.exclude(ref=MAIN).exclude(ref__in=[c.branch_name for c in changes])
    stale.delete()
    return {"main": counts, "changes": len(changes)}


def _open_states():
    from .models.changes import OPEN_STATES

    return OPEN_STATES


# --------------------------------------------------------------------------- search (catalog, editor)


def models_in(user: Any, change: ChangeRequest | None = None, kind: str | None = NodeKind.MODEL) -> list[IndexedNode]:
    """The nodes as seen from a change (main's rows with the change's own laid over), or main's."""
    access.require(user, "catalog.view")
    main_rows = IndexedNode.objects.filter(ref=MAIN).prefetch_related("columns", "tags")
    if kind:
        main_rows = main_rows.filter(kind=kind)
    rows = {(n.kind, n.name): n for n in main_rows}
    if change is not None and change.branch:
        for n in IndexedNode.objects.filter(ref=change.branch_name).prefetch_related("columns", "tags"):
            if kind and n.kind != kind:
                continue
            if n.deleted:
                rows.pop((n.kind, n.name), None)
            else:
                rows[(n.kind, n.name)] = n
    return sorted(rows.values(), key=lambda n: (n.kind, n.name))


FILTERS = ("tag", "owner", "column", "kind")  # `tag:finance orders`: a word with a prefix narrows the search
MAX_QUERY = 200


@dataclass
class SearchHit:
    """A node found by `search`, with its score and why: the field that matched and, for a column, which."""

    node: IndexedNode
    score: int
    reason: str
    column: str = ""  # the matched column's name
    matched: str = ""  # the text that matched (a tag, an owner)


def parse_query(query: str) -> tuple[list[str], dict[str, str]]:
    """The free words of a query and its filters: `tag:finance owner:ana revenue` ->
    (["revenue"], {"tag": "finance", "owner": "ana"}). Quotes keep words together."""
    words: list[str] = []
    filters: dict[str, str] = {}
    for m in re.finditer(r'(\w+):"([^"]*)"|"([^"]*)"|(\S+)', query):
        key, quoted, phrase, bare = m.groups()
        if key is not None:
            key, value, token = key.lower(), quoted.strip(), f"{key}:{quoted}"
        elif bare is not None:
            key, _, value = bare.partition(":")
            key, token = key.lower(), bare
        else:
            key, value, token = "", "", phrase
        if key in FILTERS and value:
            filters[key] = value
        elif token.strip():
            words.append(token.strip())
    return words, filters


_snapshot_lock = threading.Lock()
_snapshot: tuple[tuple[Any, ...], CatalogIndex] | None = None
_generation = [0]  # rows saved or deleted one by one in this process (the admin, tests)


def _touched(**_: Any) -> None:
    _generation[0] += 1


for _model in (IndexedNode, IndexedColumn, IndexedTag):
    post_save.connect(_touched, sender=_model, dispatch_uid=f"index-search-{_model.__name__}-save")
    post_delete.connect(_touched, sender=_model, dispatch_uid=f"index-search-{_model.__name__}-delete")


def _version() -> tuple[Any, ...]:
    """What changes whenever main's rows do: the ref's mark (every write path of this module ends with
    it), rows saved one by one in this process, and the rows' count and newest ids. Four index reads."""
    marked = IndexedRef.objects.filter(ref=MAIN).values_list("sha", "indexed_at").first()
    nodes = IndexedNode.objects.filter(ref=MAIN).aggregate(n=Count("pk"), top=Max("pk"), deleted=Count(
        "pk", filter=Q(deleted=True)))
    return (_generation[0], marked, nodes["n"], nodes["top"], nodes["deleted"],
            IndexedColumn.objects.aggregate(top=Max("pk"))["top"], IndexedTag.objects.aggregate(top=Max("pk"))["top"])


def _catalog() -> CatalogIndex:
    """Main's nodes as search reads them, with their inverted index: read (three queries) and built
    again only when main's rows changed, so once per main sha in each web process.

    The LIKE '%x%' scans in SQL took 50-300 ms per search at 2,000 nodes (bench/catalog.py), more on a
    busy database; scoring every node in memory took 540 ms p95 at 10,000 (docs/capacity.md)."""
    global _snapshot
    version = _version()
    found = _snapshot
    if found is not None and found[0] == version:
        return found[1]
    with _snapshot_lock:
        if _snapshot is not None and _snapshot[0] == version:
            return _snapshot[1]
        columns: dict[int, list[tuple[str, str]]] = {}
        for node_id, name, description in (IndexedColumn.objects.filter(node__ref=MAIN, node__deleted=False)
                                           .order_by("node_id", "position", "pk")
                                           .values_list("node_id", "name", "description")):
            columns.setdefault(node_id, []).append((name, description))
        tags: dict[int, dict[str, str]] = {}
        for node_id, tag in IndexedTag.objects.filter(node__ref=MAIN, node__deleted=False).values_list(
                "node_id", "tag"):
            tags.setdefault(node_id, {})[tag.lower()] = tag
        entries = []
        for pk, kind, name, owner, description in (IndexedNode.objects.filter(ref=MAIN, deleted=False)
                                                   .values_list("pk", "kind", "name", "owner", "description")):
            cols = columns.get(pk, [])
            entries.append(Entry(
                pk, kind, name, name.lower(), name.lower().rsplit(".", 1)[-1], owner.lower(), description.lower(),
                tags.get(pk, {}), tuple((c.lower(), c) for c, _ in cols), tuple((d.lower(), c) for c, d in cols if d)))
        catalog = CatalogIndex(entries)
        _snapshot = (version, catalog)
        return catalog


def search(user: Any, query: str, *, kind: str | None = None, limit: int = 50,
           with_columns: bool = False) -> list[SearchHit]:
    """Models, seeds and sources on main that match `query`, ranked: exact name, name prefix, name
    contains, tag, owner, column name (exact before partial), description, column description; ties
    by name. Several words must each match somewhere (the node ranks by its weakest word, and the
    whole phrase matching counts as one word); `tag:`, `owner:`, `column:` and `kind:` narrow it.
    The nodes come with their tags (and their columns, `with_columns`) fetched."""
    access.require(user, "catalog.view")
    q = (query or "").strip()
    if len(q) > MAX_QUERY:
        raise InvalidInput(f"A search is at most {MAX_QUERY} characters.", field="q")
    words, filters = parse_query(q)
    kind = filters.pop("kind", None) or kind
    if kind and kind not in NodeKind.values:
        raise InvalidInput(f"Unknown kind {kind!r}: use one of {', '.join(NodeKind.values)}.", field="kind")
    best = _catalog().rank(words, filters, kind, limit)
    if not best:
        return []
    rows = IndexedNode.objects.filter(pk__in=[pk for pk, _ in best]).prefetch_related(
        *(["columns", "tags"] if with_columns else ["tags"]))
    nodes = {n.pk: n for n in rows}
    return [SearchHit(nodes[pk], m.score, m.reason, m.column, m.matched) for pk, m in best if pk in nodes]


def search_catalog(user: Any, query: str, *, kind: str | None = None, limit: int = 50) -> list[IndexedNode]:
    """The nodes of `search` with their columns and tags, best first (`GET /api/v1/models?q=`)."""
    return [hit.node for hit in search(user, query, kind=kind, limit=limit, with_columns=True)]


def find_by_column(user: Any, column: str, limit: int = 200) -> list[IndexedColumn]:
    """Columns on main named exactly `column` (case-insensitive), with their model."""
    access.require(user, "catalog.view")
    return list(IndexedColumn.objects.filter(node__ref=MAIN, name__iexact=column).select_related("node")
                .order_by("node__name")[:limit])


def find_by_tag(user: Any, tag: str, limit: int = 500) -> list[IndexedNode]:
    access.require(user, "catalog.view")
    return list(IndexedNode.objects.filter(ref=MAIN, tags__tag__iexact=tag).order_by("name").distinct()[:limit])


def find_by_owner(user: Any, owner: str, limit: int = 500) -> list[IndexedNode]:
    access.require(user, "catalog.view")
    return list(IndexedNode.objects.filter(ref=MAIN, owner__iexact=owner).order_by("name")[:limit])


def dependents_map(user: Any) -> dict[str, list[str]]:
    """For every name a model on main refs, the models that ref it, sorted (one query)."""
    access.require(user, "catalog.view")
    out: dict[str, list[str]] = {}
    for name, depends_on in IndexedNode.objects.filter(ref=MAIN, kind=NodeKind.MODEL).values_list(
            "name", "depends_on"):
        for parent in depends_on or []:
            out.setdefault(parent, []).append(name)
    return {parent: sorted(children) for parent, children in out.items()}


def dependents_of(user: Any, name: str) -> list[str]:
    """Models on main that ref() the given model (for lineage and a rename's warning)."""
    return dependents_map(user).get(name, [])
