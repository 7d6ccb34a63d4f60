"""The pool is tokenized once per study and tokenizer, and the cache gives the same ids."""

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from rewardherd.models import formatting
from rewardherd.models.tiny import build_saved_backbones
from rewardherd.studies.runner import pool_token_ids


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    (path,) = build_saved_backbones(tmp_path_factory.mktemp("bb"), [0])
    return path


def test_cached_ids_equal_fresh_encoding(tmp_path, backbone, monkeypatch):
    tok = AutoTokenizer.from_pretrained(backbone)
    pool = pd.DataFrame({"prompt": [f"q{i} " for i in range(20)], "response": ["yes " * (i % 7 + 1) for i in range(20)]})
    pool.to_parquet(tmp_path / "pool.parquet")
    fresh, _ = formatting.encode_batch(tok, pool["prompt"].tolist(), pool["response"].tolist(), 16)
    first = pool_token_ids(tmp_path, tmp_path / "pool.parquet", backbone, tok, 16)
    assert [list(a) for a in first] == fresh
    assert len(list((tmp_path / "pool_ids").glob("*.npz"))) == 1

    def boom(*a, **k):
        raise AssertionError("the cached ids should be read, not re-encoded")

    monkeypatch.setattr(formatting, "encode_batch", boom)
    again = pool_token_ids(tmp_path, tmp_path / "pool.parquet", backbone, tok, 16)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    monkeypatch.undo()
    # another max_length is another cache entry
    pool_token_ids(tmp_path, tmp_path / "pool.parquet", backbone, tok, 8)
    assert len(list((tmp_path / "pool_ids").glob("*.npz"))) == 2
