"""The Ensemble: load, save and score K reward models as one.

Shape notation: ``m`` members, ``b`` (prompt, response) pairs, ``p`` prompts,
``n`` candidates per prompt. Member scores are (m, b), ensemble axis first.

Scoring scores each distinct pair once, tokenizes once per tokenizer group, buckets
sequences by length and runs the members by the fastest correct path for their device
(:mod:`rewardherd.models.vectorized`). :meth:`Ensemble.reward` standardizes each member
with its manifest statistics before aggregating (``standardize=True``), because min,
mean_minus_std, uncertainty_weighted and soft_min depend on scale. Loading refuses what
it cannot trust (invalid manifest, wrong checksums, weights lacking a tensor the model
needs) with a :class:`ManifestError` naming the member and the file or field. Texts are
strings or lists of ``{"role", "content"}`` messages; a bare string is refused.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from rewardherd import core
from rewardherd.io import atomic_dir
from rewardherd.models import lora, multihead
from rewardherd.models.common import fused_gelu, load_member_model
from rewardherd.models.formatting import Text, encode_batch, pad_token_id
from rewardherd.models.manifest import (
    MANIFEST,
    MEMBER_FORMATS,
    Manifest,
    ManifestError,
    MemberInfo,
    check_member_path,
    verify_member_files,
)
from rewardherd.models.vectorized import GroupScorer, Scoring

log = logging.getLogger(__name__)


@dataclass
class Member:
    """One loaded reward model and its manifest entry."""

    info: MemberInfo
    model: torch.nn.Module
    tokenizer: object

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True)
class RewardOutput:
    """Aggregated ensemble reward for b samples."""

    reward: np.ndarray  # (b,) aggregate
    spread: core.Spread  # per-sample std / var / range across members
    scores: np.ndarray  # (m, b) the member scores that were aggregated (standardized by default)
    raw_scores: np.ndarray  # (m, b) raw member outputs
    method: str
    params: dict
    standardized: bool


@dataclass(frozen=True)
class BestOfN:
    """Result of reranking: for each prompt the chosen candidate index and text."""

    index: np.ndarray  # (p,)
    response: list
    reward: np.ndarray  # (p,) aggregate of the chosen candidate
    spread: np.ndarray  # (p,) std across members of the chosen candidate
    all_rewards: list[np.ndarray]  # per prompt, (n,) aggregates of every candidate


def tokenizer_fingerprint(tokenizer) -> str:
    """Members whose tokenizers share this fingerprint share one tokenization."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    payload = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    payload += repr((tokenizer.eos_token_id, tokenizer.pad_token_id, getattr(tokenizer, "chat_template", None)))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Ensemble:
    """K reward models scored as one. Build with :meth:`load` or from loaded members.

    ``scoring`` picks how members run on a batch: "auto" (loop on CPU, vmap on CUDA),
    "loop" or "vmap" (both correct everywhere). ``cuda_graphs=True`` additionally
    replays CUDA graphs captured over static length buckets (CUDA only, opt-in).
    See :mod:`rewardherd.models.vectorized`.
    """

    def __init__(self, members: Sequence[Member], manifest: Manifest, directory: Path | None = None, *,
                 scoring: Scoring = "auto", cuda_graphs: bool = False):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        for m in self.members:  # one activation kernel however the ensemble was built (loaded or in memory)
            if isinstance(m.model, torch.nn.Module):
                fused_gelu(m.model)
        self.manifest = manifest
        self.directory = directory
        self._groups = self._group_by_tokenizer()
        self._scorer = GroupScorer(scoring, cuda_graphs=cuda_graphs)

    @property
    def scoring(self) -> str:
        return self._scorer.scoring

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        device=None,
        dtype=torch.float32,
        trust_remote_code: bool = False,
        allow_incomplete: bool = False,
        scoring: Scoring = "auto",
        cuda_graphs: bool = False,
        verify: bool = True,
    ) -> Ensemble:
        """Load an ensemble directory; shared-backbone members load their backbone once.

        ``verify`` checks every member file against the SHA-256 in the manifest before
        reading it; ``False`` skips the hashing (very large models), and a corrupt file may
        then load with changed scores. An invalid manifest, member path, checksum or member
        file is a :class:`ManifestError` naming the member and the file or field."""
        directory = Path(directory)
        manifest = Manifest.read(directory)
        where = directory / MANIFEST
        if not manifest.complete and not allow_incomplete:
            raise ManifestError(
                f"{where}: training is not complete ({len(manifest.members)} member(s) "
                "finished); rerun the same `rewardherd train` command to resume, or pass allow_incomplete=True"
            )
        if not manifest.members:
            raise ManifestError(f"{where}: no members")
        unknown = [(i.name, i.format) for i in manifest.members if i.format not in MEMBER_FORMATS]
        if unknown:
            raise ManifestError(f"{directory}: member(s) with unknown format {unknown}; this build reads {MEMBER_FORMATS}")
        for info in manifest.members:
            check_member_path(directory, info)
        cache: dict = {}
        if verify:
            unverified = [i.name for i in manifest.members if not verify_member_files(directory, i, cache)]
            if unverified:
                log.warning("%s: the manifest records no checksums for member(s) %s (written by an older rewardherd); "
                            "their files were not verified", where, unverified)
        kw = {"device": device, "dtype": dtype, "trust_remote_code": trust_remote_code}
        shared = {}
        for fmt, loader in ((multihead.FORMAT, multihead.load_members), (lora.FORMAT, lora.load_members)):
            names = [i.name for i in manifest.members if i.format == fmt]
            if names:
                with _member_errors(names if len(names) > 1 else names[0]):
                    shared.update(loader(directory, manifest.members, **kw))
        members = []
        for info in manifest.members:
            if info.name in shared:
                members.append(Member(info, *shared[info.name]))
                continue
            with _member_errors(info.name):
                model, tok = load_member_model(directory / info.path, **kw)
            members.append(Member(info, model, tok))
        return cls(members, manifest, directory, scoring=scoring, cuda_graphs=cuda_graphs)

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Save atomically: write a sibling temp directory, then rename it into place.

        An existing directory is never replaced unless ``overwrite=True``.
        """
        directory = Path(directory)
        if directory.exists() and not overwrite:
            raise FileExistsError(f"{directory} exists; pass overwrite=True to replace it")
        with atomic_dir(directory, replace=overwrite) as tmp:
            infos = []
            for m in self.members:
                if m.info.format == "hf":
                    m.model.save_pretrained(tmp / m.info.path, safe_serialization=True)
                    m.tokenizer.save_pretrained(tmp / m.info.path)
                infos.append(replace(m.info, files=None))  # checksums of the files written here
            infos = lora.save_members(self.members, multihead.save_members(self.members, infos, tmp), tmp)
            Manifest(**{**self.manifest.__dict__, "members": infos}).write(tmp)
        self.directory = directory
        return directory

    # -------------------------------------------------------------- scoring
    def __len__(self) -> int:
        return len(self.members)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def max_length(self) -> int | None:
        return self.manifest.max_length

    def _group_by_tokenizer(self) -> list[list[int]]:
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(self.members):
            groups.setdefault(tokenizer_fingerprint(m.tokenizer), []).append(i)
        return list(groups.values())

    def score(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        *,
        batch_size: int = 64,
        standardize: bool = False,
    ) -> np.ndarray:
        """Every member's (m, b) float64 score of every pair (raw, or standardized with the
        manifest statistics), ``batch_size`` sequences per forward pass."""
        check_texts(prompts, "prompts")
        check_texts(responses, "responses")
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        b = len(prompts)
        out = np.empty((len(self.members), b), dtype=np.float64)
        if b == 0:
            return out
        # Score each distinct pair once (pools and RL batches repeat pairs).
        keys = [(_key(p), _key(r)) for p, r in zip(prompts, responses, strict=True)]
        first: dict[tuple, int] = {}
        inverse = np.array([first.setdefault(k, len(first)) for k in keys])
        uniq = np.zeros(len(first), dtype=np.int64)
        uniq[inverse] = np.arange(b)
        up = [prompts[i] for i in uniq]
        ur = [responses[i] for i in uniq]
        for group in self._groups:
            tok = self.members[group[0]].tokenizer
            ids, n_trunc = encode_batch(tok, up, ur, self.max_length)
            if n_trunc:
                log.warning("%d of %d sequences exceed max_length=%s and were truncated", n_trunc, len(ids), self.max_length)
            pad = pad_token_id(tok)
            scores = self._scorer.score([self.members[i].model for i in group], ids, pad, batch_size)  # (k, u)
            out[group] = scores[:, inverse]
        if not np.all(np.isfinite(out)):
            raise FloatingPointError("a member produced a non-finite score")
        return self.standardize(out) if standardize else out

    def standardization(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-member (mean, std) from the manifest, each (m,)."""
        missing = [m.name for m in self.members if m.info.standardization is None]
        if missing:
            where = f"{self.directory / MANIFEST}: " if self.directory is not None else ""
            raise ManifestError(f"{where}member(s) {missing} have no standardization statistics; use standardize=False",
                                member=missing[0])
        mean = np.array([m.info.standardization["mean"] for m in self.members])
        std = np.array([m.info.standardization["std"] for m in self.members])
        return mean, std

    def standardize(self, raw: np.ndarray) -> np.ndarray:
        mean, std = self.standardization()
        return core.standardize(raw, mean, std)

    def aggregate_scores(
        self, raw: np.ndarray, method: core.Method = "mean", *, standardize: bool = True, **params
    ) -> RewardOutput:
        """Aggregate already computed raw member scores (m, b).

        The spread uses the method's ``ddof`` when it has one, else 0 (population).
        """
        scores = self.standardize(raw) if standardize else core.as_scores(raw)
        agg = core.aggregate(scores, method, **params)
        spread = core.spread(scores, ddof=params.get("ddof", 0))
        return RewardOutput(agg, spread, scores, raw, method, dict(params), standardize)

    def reward(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        method: core.Method = "mean",
        *,
        standardize: bool = True,
        batch_size: int = 64,
        **params,
    ) -> RewardOutput:
        """Ensemble reward: aggregate (b,), spread, and the member scores (m, b).

        ``params`` are the method's parameters (e.g. ``lam=0.5, ddof=0``); see
        :func:`rewardherd.core.aggregate`. The spread uses the same ``ddof``.
        """
        raw = self.score(prompts, responses, batch_size=batch_size)
        return self.aggregate_scores(raw, method, standardize=standardize, **params)

    def error_sharing(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        gold,
        *,
        groups=None,
        degenerate: core.sharing.Degenerate = "error",
        batch_size: int = 64,
    ) -> core.ErrorSharing:
        """How much of the members' error vs gold is shared (:mod:`rewardherd.core.sharing`).

        ``gold`` is (b,) gold scores or a ``(prompts, responses) -> scores`` function;
        ``groups`` optional (b,) ids (e.g. prompts) to z-score within; ``degenerate``
        ``"error"`` or ``"drop"`` for groups that cannot be z-scored."""
        raw = self.score(prompts, responses, batch_size=batch_size)  # (m, b)
        g = gold(list(prompts), list(responses)) if callable(gold) else gold
        return core.error_sharing(raw, g, groups=groups, degenerate=degenerate)

    def best_of_n(
        self,
        prompts: Sequence[Text],
        candidates: Sequence[Sequence[Text]],
        method: core.Method = "mean",
        *,
        standardize: bool = True,
        batch_size: int = 64,
        **params,
    ) -> BestOfN:
        """Rerank each prompt's candidates and return the best by the aggregate.

        Ties go to the earliest candidate (see :func:`rewardherd.core.select_best_of_n`).
        """
        check_texts(prompts, "prompts")
        if isinstance(candidates, str | bytes | dict) or not hasattr(candidates, "__len__"):
            raise TypeError(f"candidates must be a sequence of candidate lists (one per prompt); got "
                            f"{type(candidates).__name__}")
        for i, cs in enumerate(candidates):
            check_texts(cs, f"candidates[{i}]")
        if len(prompts) != len(candidates):
            raise ValueError(f"{len(prompts)} prompts but {len(candidates)} candidate lists")
        flat_p = [p for p, cs in zip(prompts, candidates, strict=True) for _ in cs]
        flat_r = [c for cs in candidates for c in cs]
        out = self.reward(flat_p, flat_r, method, standardize=standardize, batch_size=batch_size, **params)
        index, chosen, rewards, spreads, per_prompt = [], [], [], [], []
        start = 0
        for cs in candidates:
            if len(cs) == 0:
                raise ValueError("every prompt needs at least one candidate")
            seg = slice(start, start + len(cs))
            k = int(core.select_best_of_n(out.reward[seg][None, :])[0])
            index.append(k)
            chosen.append(cs[k])
            rewards.append(out.reward[seg][k])
            spreads.append(out.spread.std[seg][k])
            per_prompt.append(out.reward[seg])
            start += len(cs)
        return BestOfN(np.array(index), chosen, np.array(rewards), np.array(spreads), per_prompt)

    def as_reward_function(self, method: core.Method = "mean", *, standardize: bool = True, batch_size: int = 64,
                           **params):
        """A TRL-compatible reward function (see :mod:`rewardherd.models.reward_function`)."""
        from rewardherd.models.reward_function import EnsembleRewardFunction

        return EnsembleRewardFunction(self, method, standardize=standardize, batch_size=batch_size, **params)

    def to(self, device) -> Ensemble:
        self._scorer.clear()
        for m in self.members:
            m.model.to(device)
        return self

    def export_member(self, name: str, out_dir: str | Path) -> Path:
        """Write member ``name`` as a standalone HF member directory
        (``AutoModelForSequenceClassification``, num_labels=1, safetensors + tokenizer)
        with the same scores: a head of a multi-head model, or a LoRA adapter merged
        into a copy of its backbone. Its manifest entry (statistics) still applies."""
        if name not in self.names:
            raise KeyError(f"no member {name!r}; members are {self.names}")
        m = self.members[self.names.index(name)]
        out_dir = Path(out_dir)
        if out_dir.exists():
            raise FileExistsError(f"{out_dir} exists")
        if m.info.format == multihead.FORMAT:
            return multihead.export_member(m, out_dir)
        if m.info.format == lora.FORMAT:
            return lora.export_member(m, out_dir)
        m.model.save_pretrained(out_dir, safe_serialization=True)
        m.tokenizer.save_pretrained(out_dir)
        return out_dir


def _key(x: Text):
    return x if isinstance(x, str) else repr(x)


@contextmanager
def _member_errors(name):
    """Turn any failure to load a member's files into a ManifestError naming the member."""
    who = f"member {name!r}" if isinstance(name, str) else f"members {name}"
    try:
        yield
    except ManifestError as e:
        if str(e).startswith(who):
            raise
        raise ManifestError(f"{who}: {e}", member=str(name), file=e.file) from None
    except (MemoryError, torch.OutOfMemoryError):
        raise  # not a problem of the files
    except Exception as e:  # safetensors, tokenizers, transformers and json errors on bad files
        raise ManifestError(f"{who}: cannot load its files: {type(e).__name__}: {e}"[:600],
                            member=str(name)) from None


def _check_string(s: str, where: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{where}: invalid Unicode (lone surrogate {s[e.start]!r} at character {e.start})") from None


def check_text(x, where: str) -> None:
    """Raise ValueError unless ``x`` is a valid string or list of string messages."""
    if isinstance(x, str):
        _check_string(x, where)
        return
    if isinstance(x, list):
        for j, m in enumerate(x):
            if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
                raise ValueError(f"{where}[{j}]: a message must be an object with string 'role' and 'content'")
            _check_string(m["role"], f"{where}[{j}].role")
            _check_string(m["content"], f"{where}[{j}].content")
        return
    raise TypeError(f"{where}: expected a string or a list of messages; got {type(x).__name__}")


def check_texts(xs, name: str) -> None:
    """Raise unless ``xs`` is a sequence (not a bare string) of valid texts."""
    if isinstance(xs, str | bytes):
        raise TypeError(f"{name} must be a sequence of texts, not a single string (it would be scored character "
                        f"by character); wrap it in a list: [{name[:-1] if name.endswith('s') else name}]")
    if not (hasattr(xs, "__len__") and hasattr(xs, "__getitem__")) or isinstance(xs, dict):
        raise TypeError(f"{name} must be a sequence of texts; got {type(xs).__name__}")
    for i, x in enumerate(xs):
        check_text(x, f"{name}[{i}]")

