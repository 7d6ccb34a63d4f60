"""Fixtures for rewardherd.data tests: writers of small preference files under tmp_path."""

import csv
import json

import pytest

from rewardherd.data import PreferencePair


@pytest.fixture
def write_jsonl(tmp_path):
    """Write rows (dicts, or raw strings written verbatim) as data.jsonl; return the path."""

    def _write(rows, name="data.jsonl"):
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return _write


@pytest.fixture
def write_csv(tmp_path):
    """Write a header and rows as data.csv; return the path."""

    def _write(header, rows, name="data.csv"):
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return _write


def _make_pairs(n, conversational=False, margin=None):
    """n distinct valid pairs; pairs 2k and 2k+1 share a prompt."""
    pairs = []
    for i in range(n):
        prompt = f"prompt {i // 2}"
        chosen, rejected = f"good answer {i}", f"bad answer {i}"
        if conversational:
            prompt = [{"role": "user", "content": prompt}]
            chosen = [{"role": "assistant", "content": chosen}]
            rejected = [{"role": "assistant", "content": rejected}]
        pairs.append(
            PreferencePair(
                id=f"p{i}", prompt=prompt, chosen=chosen, rejected=rejected, margin=margin
            )
        )
    return pairs


@pytest.fixture
def make_pairs():
    """Factory: ``make_pairs(n, conversational=False, margin=None)``."""
    return _make_pairs


@pytest.fixture
def pairs():
    return _make_pairs(10)
