"""A run's machine pool for few-shot prompts, read from the database task by task when drawn.

A claim used to read every accepted machine task of the run (with its instances) to sample
two of them per prompt: 100k rows at a 100k pool, growing with the pool. :class:`MachinePool`
reads only the tasks' ids at the claim, in the order :func:`service.storage.iterations.load_pool`
gives them, and a task's text and instances when a prompt draws it. It is a
:class:`~collections.abc.Sequence`, so ``random.sample`` draws the same positions from it as
from the loaded list (the draw depends only on the length and the generator's state): the
paper's sampling and a run's reproducibility are unchanged. A caller that walks the whole pool
(the classification variant's filter, Evol parents from accepted tasks, multi-turn starts)
reads it all, in chunks, as the claim did before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from generators.types import PoolTask
from service.storage.db import Database
from service.storage.iterations import pool_tasks

_CHUNK = 10_000  # tasks read per statement when the whole pool is walked


class MachinePool(Sequence[PoolTask]):
    """The run's accepted machine tasks by position (task id order), read when first used.

    Args:
        database: Where the tasks are read from.
        ids: The run's accepted machine task ids in id order
            (:func:`service.storage.iterations.machine_pool_ids`).
    """

    def __init__(self, database: Database, ids: list[int]) -> None:
        """Hold the ids; nothing else is read yet."""
        self._database = database
        self._ids = ids
        self._tasks: dict[int, PoolTask] = {}

    def __len__(self) -> int:
        """Number of tasks in the pool."""
        return len(self._ids)

    @property
    def loaded(self) -> int:
        """How many tasks have been read so far (for tests and benches)."""
        return len(self._tasks)

    @overload
    def __getitem__(self, position: int) -> PoolTask: ...

    @overload
    def __getitem__(self, position: slice) -> list[PoolTask]: ...

    def __getitem__(self, position: int | slice) -> PoolTask | list[PoolTask]:
        """The task at a position (read on first use), or a list for a slice.

        Raises:
            IndexError: A position outside the pool.
        """
        if isinstance(position, slice):
            return self._read(self._ids[position])
        return self._read([self._ids[position]])[0]

    def __iter__(self) -> Iterator[PoolTask]:
        """Every task in order, read ``_CHUNK`` at a time."""
        for start in range(0, len(self._ids), _CHUNK):
            yield from self._read(self._ids[start : start + _CHUNK])

    def extend(self, tasks: Iterable[PoolTask]) -> None:
        """Append tasks just committed (their ids follow every id held: ids only grow)."""
        for task in tasks:
            self._ids.append(int(task.id))
            self._tasks[int(task.id)] = task

    def _read(self, ids: Sequence[int]) -> list[PoolTask]:
        missing = [i for i in ids if i not in self._tasks]
        if missing:
            with self._database.reads() as session:
                for task in pool_tasks(session, missing):
                    self._tasks[int(task.id)] = task
        return [self._tasks[i] for i in ids]
