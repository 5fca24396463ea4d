"""Celery broker options for the two supported brokers: kombu's filesystem transport and Redis.

Plain functions so that settings and tests build the same options, and the embedded default's
transport (kombu's filesystem transport with an atomic put), registered here for `filesystem://`.
Settings import this module, so every process that talks to the broker sends and reads through it.
"""

import logging
import os
import uuid
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

log = logging.getLogger(__name__)


class FilesystemChannel(filesystem.Channel):
    """kombu's filesystem channel, with a put no reader can see half written (kombu #1551).

    kombu creates the message file, then locks and writes it; a consumer lists the folder, moves the
    file away (the lock is advisory, a move ignores it) and may read it empty. The worker then dies
    with "Unrecoverable error: JSONDecodeError" and the message is lost: a worker of the embedded
    default went down this way under load. Here the message is written under a name no consumer
    takes (a leading dot: kombu matches `<stamp>_<uuid>.<queue>.msg`) and renamed into place, and a
    rename within one folder is atomic: a consumer sees the whole message or none. A file that is
    still unreadable is logged and passed over rather than taking the worker down."""

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        while True:  # kombu's _get raises Empty when no message is left
            try:
                return super()._get(queue)
            except ValueError as exc:  # a file that is not JSON (kombu has removed it): the next one
                log.error("the filesystem broker passed over an unreadable message of queue %s: %s", queue, exc)


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel


TRANSPORT_ALIASES["filesystem"] = f"{__name__}:FilesystemTransport"


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
