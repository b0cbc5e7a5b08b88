"""Every error of every tree leaves the API as `{code, message}` with its status, never 500.

The classes are found by walking `__subclasses__()` from each tree's root, so a class added to
any tree is tested without touching this file (and fails here if it has no code of its own).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dataformats import JsonlError
from filters import errors as filter_errors
from generators import errors as generator_errors
from service import errors as service_errors
from service.api.errors import LIBRARY_ERRORS, library_status
from service.app import create_app
from service.settings import Settings
from service.storage.db import Database
from templating import SlotError
from trainer import errors as trainer_errors

ROOTS: tuple[type[Exception], ...] = (*LIBRARY_ERRORS, service_errors.ServiceError)


def _tree(root: type[Exception]) -> Iterator[type[Exception]]:
    yield root
    for sub in root.__subclasses__():
        yield from _tree(sub)


ALL_ERRORS = sorted(
    {c for root in ROOTS for c in _tree(root)}, key=lambda c: (c.__qualname__, c.__module__)
)


def _instance(cls: type[Exception]) -> Exception:
    """An instance whatever the constructor: ints for int parameters, text for the rest."""
    if not any("__init__" in vars(k) for k in cls.__mro__ if k.__module__ != "builtins"):
        # Exception's own constructor has no signature to read: one message.
        return cls(f"{cls.__name__} failed")
    args = [
        7 if p.annotation in (int, "int") else f"{cls.__name__} failed"
        for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return cls(*args) if args else cls(f"{cls.__name__} failed")


def _status(cls: type[Exception]) -> int:
    if issubclass(cls, service_errors.ServiceError):
        return cls.status_code
    return library_status(cls)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("errors")
    url = f"sqlite:///{tmp / 'api.db'}"
    settings = Settings(database_url=url, data_dir=tmp, datasets_dir=tmp / "d", models_dir=tmp)
    database = Database(url)
    app = create_app(settings, database=database)
    by_name = {f"{c.__module__}.{c.__qualname__}": c for c in ALL_ERRORS}

    def raise_error(name: str) -> None:
        raise _instance(by_name[name])

    app.add_api_route("/v1/test-raise/{name}", raise_error, methods=["GET"])
    try:
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield test_client
    finally:
        database.dispose()


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_error_has_its_status_and_code(client: TestClient, cls: type[Exception]) -> None:
    assert "code" in vars(cls), f"{cls.__qualname__} must define its own stable code"
    response = client.get(f"/v1/test-raise/{cls.__module__}.{cls.__qualname__}")
    assert response.status_code == _status(cls)
    assert response.status_code == 503 or 400 <= response.status_code < 500
    assert response.json() == {"code": vars(cls)["code"], "message": str(_instance(cls))}


def test_codes_are_unique_across_trees() -> None:
    codes = [vars(c)["code"] for c in ALL_ERRORS if "code" in vars(c)]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (generator_errors.ConfigError, 422),
        (generator_errors.ParseError, 422),
        (generator_errors.ModelNotFoundError, 422),
        (generator_errors.ModelError, 503),
        (generator_errors.BackendError, 503),
        (generator_errors.BackendUnavailableError, 503),
        (filter_errors.InvalidInputError, 422),
        (filter_errors.EvalSetError, 422),
        (filter_errors.IndexStorageError, 503),
        (trainer_errors.DatasetIntegrityError, 422),
        (JsonlError, 422),
        (SlotError, 422),
        (service_errors.LeaseLost, 409),
        (service_errors.RefusedTooBig, 422),
        (service_errors.DatabaseUnavailable, 503),
    ],
)
def test_documented_statuses(cls: type[Exception], status: int) -> None:
    assert _status(cls) == status


def test_a_class_outside_the_trees_has_no_status() -> None:
    with pytest.raises(KeyError):
        library_status(ValueError)
