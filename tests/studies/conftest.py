import pytest

from rewardherd.studies import claims as cl


@pytest.fixture
def rule_calls(monkeypatch):
    """Record the keyword arguments of every call of every claim rule (by name), calling through."""
    seen: dict[str, list[dict]] = {}
    for name in cl.SPECS:
        real = getattr(cl, name)

        def record(*a, _real=real, _name=name, **kw):
            seen.setdefault(_name, []).append(kw)
            return _real(*a, **kw)

        monkeypatch.setattr(cl, name, record)
    return seen


def rule_params(kw: dict) -> dict:
    """A call's keyword arguments less its own context (random seed, comparison text)."""
    return {k: v for k, v in kw.items() if k not in ("seed", "comparison")}
