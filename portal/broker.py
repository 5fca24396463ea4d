"""Celery broker options for the two supported brokers: kombu's filesystem transport and Redis.

Plain functions so that settings and tests build the same options.
"""

from pathlib import Path


def filesystem_transport_options(folder: Path) -> dict:
    """Options for kombu's `filesystem://` transport rooted at `folder`, creating its folders.

    Producers write to `data_folder_out` and consumers read from `data_folder_in`; kombu's defaults
    differ, so nothing would ever be delivered: both point at one folder. kombu creates none of
    these folders itself. A 0.1 s poll keeps a task's latency near 100 ms (the default 1 s is slow).
    """
    data, control = folder / "queue", folder / "control"
    for path in (data, control):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(data),
        "data_folder_out": str(data),
        "control_folder": str(control),
        "store_processed": False,
        "polling_interval": 0.1,
    }


def redis_transport_options(visibility_timeout: int) -> dict:
    # Redis redelivers an unacknowledged message after `visibility_timeout`; with acks_late a task
    # still running then would run twice, so it must exceed the longest hard time limit.
    return {"visibility_timeout": visibility_timeout}
