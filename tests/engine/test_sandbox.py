"""Nothing in a model reaches Python internals, the environment, files or the network (RELIABILITY B4)."""

import jinja2
import pytest

from runner.engine.errors import ProjectError
from tests.engine.helpers import compile_files

ESCAPES = [
    "select {{ ''.__class__.__mro__ }}",
    "select {{ cycler.__init__.__globals__ }}",
    "select {{ ''|attr('__class__') }}",
    "select {{ (''|attr('format'))('{0.__class__}', 1) }}",
    "select {{ '{0.__class__.__mro__}'.format(1) }}",
    "select {{ '{x.__class__}'.format_map({'x': 1}) }}",
    "select {{ config.__init__.__globals__ }}",
    "select {{ ref.__globals__ }}",
    "select {{ lipsum.__globals__['os'] }}",
    "select {{ env_var('SECRET_KEY') }}",
    "select {{ adapter.config.credentials }}",
    "select {{ self._TemplateReference__context }}",
    "{% for i in range(10**9) %}{% endfor %}select 1",
    "select '{{ 'x' * 100000000 }}'",
    "select {{ 2 ** 100000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}select 1",
    "{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_template_escape_attempts_fail_or_render_inert(sql):
    try:
        manifest = compile_files({"models/evil.sql": sql})
    except ProjectError as info:
        err = info
    else:  # the sandbox may also render such an attempt to nothing: then nothing may leak
        out = manifest.compiled["model.shop.evil"]
        assert "class" not in out and "<" not in out and "function" not in out
        return
    assert err.path == "models/evil.sql"
    assert "Traceback" not in str(err)
    assert len(str(err)) < 600


def test_jinja_is_the_patched_version():
    major, minor, patch = (int(p) for p in jinja2.__version__.split(".")[:3])
    assert (major, minor, patch) >= (3, 1, 6)


def test_heavy_loops_stop_within_the_deadline():
    import time

    start = time.monotonic()
    with pytest.raises(ProjectError, match="longer than"):
        compile_files({"models/slow.sql": ESCAPES[-2]})
    assert time.monotonic() - start < 5


def test_legitimate_jinja_still_renders():
    manifest = compile_files(
        {
            "models/pivot.sql": (
                "{% set methods = ['card', 'cash'] %}\nselect\n"
                "{% for m in methods %}  sum(case when method = '{{ m }}' then 1 else 0 end) as {{ m }}_n"
                "{% if not loop.last %},{% endif %}\n{% endfor %}from (select 'card' as method)"
            ),
        }
    )
    sql = manifest.compiled["model.shop.pivot"]
    assert "card_n" in sql and "cash_n" in sql
