"""Who holds a lease, and the thread that keeps it alive while the job runs."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


def owner_id(role: str = "") -> str:
    """A lease owner name unique to this process and call: `[role:]host:pid:random`."""
    prefix = f"{role}:" if role else ""
    return f"{prefix}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def heartbeat(renew: Callable[[], bool], *, every_s: float, name: str) -> Iterator[None]:
    """Call `renew` every `every_s` seconds in a daemon thread for as long as the block runs.

    `renew` returns False once the lease is another's: the beats stop (the job's guarded
    writes then fail with LeaseLost). A failed beat (database briefly away) is logged and
    retried at the next beat: the lease outlasts several beats.
    """
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every_s):
            try:
                if not renew():
                    log.warning("%s: lease taken by another worker", name)
                    return
            except Exception:  # a missed beat is retried; the commit guard decides
                log.exception("%s: heartbeat failed", name)

    thread = threading.Thread(target=beat, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
