"""The repository index: models, sources and seeds with their columns and tags, per ref, for search and pages.

Rebuilt from git at any time (`manage.py dmaas_reindex`) and updated after each write; git stays the
source of truth. `main` is indexed whole; a change branch holds only the models the change touched
(`deleted` marks one it removes), laid over main's rows.
"""

from __future__ import annotations

from django.db import models


class NodeKind(models.TextChoices):
    MODEL = "model", "Model"
    SEED = "seed", "Seed"
    SOURCE = "source", "Source"


class IndexedRef(models.Model):
    """Which commit the rows of a ref reflect."""

    ref = models.CharField(max_length=120, unique=True)  # main, or changes/<id>-<slug>
    sha = models.CharField(max_length=40)
    indexed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.ref}@{self.sha[:12]}"


class IndexedNode(models.Model):
    ref = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=NodeKind.choices, default=NodeKind.MODEL)
    name = models.CharField(max_length=200)  # model or seed name; source as <source>.<table>
    path = models.CharField(max_length=255, blank=True)  # the .sql / .csv, or the yml of a source
    yml_path = models.CharField(max_length=255, blank=True)
    sql_blob = models.CharField(max_length=40, blank=True)
    yml_blob = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    owner = models.CharField(max_length=200, blank=True, db_index=True)  # meta.owner
    materialized = models.CharField(max_length=40, blank=True)
    depends_on = models.JSONField(default=list, blank=True)  # ref('x') names and source('a','b') as a.b
    deleted = models.BooleanField(default=False)  # on a change branch: the change removes it
    commit_sha = models.CharField(max_length=40, blank=True)  # the commit it was read at

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["ref", "kind", "name"], name="ms_indexednode_unique_ref_kind_name"),
        ]
        indexes = [models.Index(fields=["ref", "name"], name="ms_node_ref_name_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.ref})"


class IndexedColumn(models.Model):
    node = models.ForeignKey(IndexedNode, on_delete=models.CASCADE, related_name="columns")
    name = models.CharField(max_length=200, db_index=True)
    description = models.TextField(blank=True)
    data_type = models.CharField(max_length=100, blank=True)
    tests = models.JSONField(default=list, blank=True)  # test kinds: ["unique", "not_null"]
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["node", "position"]

    def __str__(self) -> str:
        return f"{self.node.name}.{self.name}"


class IndexedTag(models.Model):
    node = models.ForeignKey(IndexedNode, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=100, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "tag"], name="ms_indexedtag_unique_node_tag")]

    def __str__(self) -> str:
        return self.tag
