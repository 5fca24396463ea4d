"""A real worker takes a task from each supported broker: the filesystem default and Redis.

`task_always_eager` would prove nothing about the broker settings (it serializes nothing and uses
no queue), so these start Celery's in-process test worker.
"""

import logging
import uuid
from contextlib import contextmanager

import pytest
import redis
from celery import Celery, current_app
from celery.contrib.testing.worker import start_worker

import portal.tasks  # noqa: F401  (registers the shared task with every Celery app)
from portal.broker import filesystem_transport_options, redis_transport_options
from portal.celery import app as project_app


@contextmanager
def worker_app(**conf):
    """A Celery app configured like the project's, with a worker running in a thread."""
    app = Celery("dmaas-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(**conf)
    previous = current_app._get_current_object()
    try:
        # Stopping takes ~4 s on the filesystem transport: its worker loop waits on the broker
        # for 2 s at a time and notices the stop only between waits.
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield app
    finally:
        # start_worker makes its app the process default; give the project app its place back.
        previous.set_current()
        previous.set_default()
        app.close()


def test_project_app_acknowledges_late_and_uses_the_database_scheduler():
    conf = project_app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert "portal.tasks.ping" in project_app.tasks


@pytest.mark.django_db(transaction=True)
def test_filesystem_broker_delivers_a_task_to_a_real_worker(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    with worker_app(
        broker_url="filesystem://localhost//",
        broker_transport_options=filesystem_transport_options(tmp_path / "broker"),
        result_backend=f"file://{results}",
    ) as app:
        assert app.tasks["portal.tasks.ping"].delay().get(timeout=20, interval=0.05) == "pong"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_broker_delivers_a_task_to_a_real_worker(redis_url):
    # A queue of its own, so nothing left in this Redis database by another run is consumed.
    queue = f"dmaas-test-{uuid.uuid4().hex}"
    try:
        with worker_app(
            broker_url=redis_url,
            broker_transport_options=redis_transport_options(7200),
            result_backend=redis_url,
            task_default_queue=queue,
        ) as app:
            assert app.tasks["portal.tasks.ping"].delay().get(timeout=20, interval=0.05) == "pong"
    finally:
        redis.Redis.from_url(redis_url).delete(queue)


def _channel(app: Celery):
    return app.connection_for_write().default_channel


def test_the_filesystem_broker_never_hands_out_a_half_written_message(tmp_path):
    """kombu's own put creates the file before writing it, and a consumer polling the folder could
    take it empty: the worker died on "JSONDecodeError" and the message was lost (kombu #1551).
    A producer and two consumers race here on one queue (kombu's transport fails this nearly every
    time); every message arrives whole, exactly once."""
    from queue import Empty
    from threading import Thread

    app = Celery("dmaas-test-fs-race", set_as_current=False)
    app.conf.update(broker_url="filesystem://localhost//",
                    broker_transport_options=filesystem_transport_options(tmp_path / "broker"))
    sent, received, errors = 2000, [], []
    producer = _channel(app)

    def consume(consumer) -> None:
        try:
            while len(received) < sent and not errors:
                try:
                    received.append(consumer._get("race")["n"])
                except Empty:
                    pass
        except Exception as err:  # noqa: BLE001 - the failure this test is about, reported below
            errors.append(err)

    readers = [Thread(target=consume, args=(_channel(app),), daemon=True) for _ in range(2)]
    for reader in readers:
        reader.start()
    for n in range(sent):
        producer._put("race", {"n": n})
    for reader in readers:
        reader.join(timeout=60)
    app.close()
    assert errors == []
    assert sorted(received) == list(range(sent))
    assert not [p for p in (tmp_path / "broker" / "queue").iterdir()]


def test_the_filesystem_broker_passes_over_an_unreadable_message_and_delivers_the_next(tmp_path, caplog):
    """A file left empty (by another producer, or a crash) costs that file, never the worker."""
    app = Celery("dmaas-test-fs-bad", set_as_current=False)
    app.conf.update(broker_url="filesystem://localhost//",
                    broker_transport_options=filesystem_transport_options(tmp_path / "broker"))
    channel = _channel(app)
    # kombu takes files in name order; "0_" sorts before every stamp a put writes (a monotonic
    # millisecond count has no leading zero). "1_bad" would sort after "1234_…" on some uptimes.
    (tmp_path / "broker" / "queue" / "0_bad.q.msg").write_bytes(b"")
    channel._put("q", {"n": 1})
    with caplog.at_level(logging.ERROR, logger="portal.broker"):
        assert channel._get("q") == {"n": 1}
    assert not list((tmp_path / "broker" / "queue").iterdir())
    assert "unreadable message of queue q" in caplog.text
    app.close()
