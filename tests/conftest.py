from __future__ import annotations

from pathlib import Path

import pytest

from mscatlas.kb.store import Store

DATA = Path(__file__).parent / "data"
REVIEW = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "msc-cancer-review.txt"


@pytest.fixture(autouse=True)
def _isolated_default_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's real store: the default URL points into tmp_path."""
    monkeypatch.setenv("MSCATLAS_DATABASE_URL", f"sqlite:///{tmp_path / 'default.sqlite'}")


@pytest.fixture
def mini_path() -> Path:
    return DATA / "mini.yaml"


@pytest.fixture
def empty_store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'empty.sqlite'}", seed=False)
    yield store
    store.close()
