"""dbt's selection syntax over a small graph: a -> b -> c, a -> d; tags and paths."""

import pytest

from runner.engine.graph import Graph, SelectableNode, select


@pytest.fixture
def graph():
    parents = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": []}
    nodes = {
        "a": SelectableNode(
            "a", "a", "model", "models/staging/a.sql", ["p", "staging", "a"], ["daily"], [], []
        ),
        "b": SelectableNode(
            "b", "b", "model", "models/marts/b.sql", ["p", "marts", "b"], ["finance"], [], []
        ),
        "c": SelectableNode(
            "c", "c", "model", "models/marts/c.sql", ["p", "marts", "c"], ["finance", "daily"], [], []
        ),
        "d": SelectableNode("d", "d", "model", "models/marts/d.sql", ["p", "marts", "d"], [], [], []),
        "e": SelectableNode("e", "e", "seed", "seeds/e.csv", ["p", "e"], [], [], []),
    }
    return Graph(parents), nodes


@pytest.mark.parametrize(
    "selectors,exclude,expected",
    [
        (None, None, "abcde"),
        (["b"], None, "b"),
        (["+b"], None, "ab"),
        (["b+"], None, "bc"),
        (["a+"], None, "abcd"),
        (["1+c"], None, "bc"),
        (["2+c"], None, "abc"),
        (["a+1"], None, "abd"),
        (["tag:finance"], None, "bc"),
        (["tag:finance,tag:daily"], None, "c"),
        (["tag:finance tag:daily"], None, "abc"),
        (["path:models/marts"], None, "bcd"),
        (["models/staging"], None, "a"),
        (["marts.*"], None, "bcd"),
        (["resource_type:seed"], None, "e"),
        (["a+"], ["d"], "abc"),
        (["@b"], None, "abc"),
        (["b", "e"], None, "be"),
    ],
)
def test_selection(graph, selectors, exclude, expected):
    g, nodes = graph
    assert select(g, nodes, selectors, exclude) == set(expected)


def test_unknown_method_is_a_clear_error(graph):
    g, nodes = graph
    with pytest.raises(ValueError, match="unknown selector method 'colour:'"):
        select(g, nodes, ["colour:red"])


def test_topological_order_and_cycles():
    g = Graph({"a": [], "b": ["a"], "c": ["b"]})
    assert g.topological() == ["a", "b", "c"]
    assert Graph({"a": ["c"], "b": ["a"], "c": ["b"]}).find_cycle() is not None
