"""feature-extract: a frozen backbone's pooled embeddings, computed once and cached on disk, and a
small head (logistic regression by default, or an MLP) trained on them."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.errors import Diverged
from bench.core.params import param
from bench.engine.context import RunContext
from bench.engine.cache_entries import FORMAT as CACHE_FORMAT, load_arrays, save_arrays
from bench.engine.tokens import Encoded, encode, tokenizer_identity
from strategies.shared.base import Strategy, StrategyResult
from strategies.shared.served_features import mlp_head, normalized, pool, served_features
from strategies.shared.trained import load_tokenizer

POOLINGS = ("auto", "mean", "cls", "last")
HEADS = ("logreg", "mlp")


@dataclass
class FeatureExtractParams:
    pooling: str = param("auto", choices=POOLINGS)  # mean for encoders, last token for decoders
    max_length: int = param(256, ge=2)
    head: str = param("logreg", choices=HEADS)
    C: float = param(1.0, gt=0)  # logistic regression: inverse regularization strength
    hidden: int = param(256, ge=1)  # MLP head
    lr: float = param(1e-3, gt=0, le=1)
    epochs: int = param(30, ge=1)
    batch_size: int = param(32, ge=1)
    class_weights: bool = False
    normalize: bool = True  # L2-normalize embeddings (sentence encoders are trained so)


class FeatureExtract(Strategy):
    name = "feature-extract"
    uses_bitsandbytes = False
    description = "frozen backbone; pooled embeddings cached once; logistic-regression or MLP head"
    default_model = "minilm"
    flops_kind = "forward"
    in_default_run = True
    Params = FeatureExtractParams

    def search_space(self, trial):
        head = trial.suggest_categorical("head", list(HEADS))
        # "auto" (mean for encoders, last token for decoders) is the default, so trial 0 can run it
        space = {"head": head, "pooling": trial.suggest_categorical("pooling", ["auto", "mean", "cls"])}
        if head == "logreg":
            space["C"] = trial.suggest_float("C", 1e-2, 1e2, log=True)
        else:
            space["hidden"] = trial.suggest_categorical("hidden", [64, 256, 512])
            space["lr"] = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
            space["epochs"] = trial.suggest_int("epochs", 10, 60)
        return space

    def run(self, ctx: RunContext, p: FeatureExtractParams) -> StrategyResult:
        with ctx.tracker.phase("load"):
            path = ctx.model_path()
            tokenizer = load_tokenizer(path)
        pooling = p.pooling if p.pooling != "auto" else ("last" if ctx.model.architecture == "decoder" else "mean")
        backbone = _LazyBackbone(path, ctx)
        feats = {}
        for split_name in dict.fromkeys(("train", "val", ctx.eval_split)):
            split = ctx.data.split(split_name)
            with ctx.tracker.phase("prepare"):
                enc = encode(tokenizer, split.texts, split.labels, p.max_length)
            key = _embedding_key(tokenizer, ctx, enc, pooling, p.max_length)
            # the backbone's pass over the data it learns from is part of training ("embed" phase,
            # counted in the record's training time); over the evaluated split, part of evaluation
            phase = "eval" if split_name == ctx.eval_split else "embed"
            feats[split_name] = _cached_embeddings(ctx, key, enc, backbone, tokenizer, pooling, split_name, phase)
            if p.normalize:
                feats[split_name] = normalized(feats[split_name])
        total_backbone = backbone.n_params()
        y = {s: ctx.data.split(s).labels for s in feats}
        n_classes = len(ctx.data.labels)
        baseline = _random_linear_head(feats[ctx.eval_split], n_classes, ctx.seed)
        with ctx.tracker.phase("train"):
            if p.head == "logreg":
                head, head_params = _fit_logreg(feats["train"], y["train"], p, ctx)
            else:
                head, head_params = _fit_mlp(feats["train"], y["train"], feats["val"], y["val"], p, ctx)
        if p.head == "logreg":
            _record_logreg_epoch(head, feats, y, ctx)
        # what `bench predict` serves is what predicts here: one head, on the same embeddings
        served = served_features(ctx, tokenizer, p, pooling, p.head, head, backbone.model)
        with ctx.tracker.phase("eval"):
            preds, _ = served.predict_embedded(feats[ctx.eval_split])
        return StrategyResult(list(preds), head_params, total_backbone + head_params,
                              baseline_predictions=baseline.tolist(),
                              extra_cost={"pooling": pooling, "embedding_dim": int(feats["train"].shape[1]),
                                          "embeddings_cached": backbone.loaded is False}, served=served)


class _LazyBackbone:
    """Loads the frozen model only when some split's embeddings are not cached yet."""

    def __init__(self, path: str, ctx: RunContext):
        self.path, self.ctx, self.model, self.loaded = path, ctx, None, False
        self._n_params: int | None = None

    def get(self):
        if self.model is None:
            from transformers import AutoModel

            with self.ctx.tracker.phase("load"):
                self.model = AutoModel.from_pretrained(self.path).to(self.ctx.device).eval()
            self.model.requires_grad_(False)
            self.loaded = True
        return self.model

    def n_params(self) -> int:
        """Counted from the safetensors headers where the weights were never loaded (all cached)."""
        if self._n_params is None:
            files = sorted(Path(self.path).glob("*.safetensors")) if self.model is None else []
            if files:
                from safetensors import safe_open

                total = 0
                for f in files:
                    with safe_open(f, "np") as st:
                        total += sum(int(np.prod(st.get_slice(k).get_shape())) for k in st.keys()
                                     if st.get_slice(k).get_dtype().startswith(("F", "BF")))  # not int buffers
                self._n_params = total
            else:
                self._n_params = sum(p.numel() for p in self.get().parameters())
        return self._n_params


def _embedding_key(tokenizer, ctx: RunContext, enc: Encoded, pooling: str, max_length: int) -> str:
    h = hashlib.sha256(f"embeddings v{CACHE_FORMAT}|{ctx.model.source}|{ctx.model.provenance}|"
                       f"{tokenizer_identity(tokenizer)}|{pooling}|{max_length}".encode())
    for ids in enc.input_ids:
        h.update(np.asarray(ids, dtype=np.int32).tobytes() + b"|")
    return h.hexdigest()


def _cached_embeddings(ctx, key, enc, backbone, tokenizer, pooling, split_name, phase) -> np.ndarray:
    """The split's embeddings from the cache where the entry is the one written for `key` (one row
    per text, finite, its checksum intact), else computed and cached (bench/engine/cache_entries.py)."""
    path = Path(ctx.cache_dir) / "embeddings" / f"{key[:24]}.npz"

    def misfit(arrays: dict) -> str | None:
        x = arrays.get("embeddings")
        if x is None or x.ndim != 2 or x.dtype.kind != "f":
            return "is not an embeddings entry"
        if len(x) != len(enc):
            return f"holds {len(x)} rows, not the {len(enc)} texts of the {split_name} split"
        return None if np.isfinite(x).all() else "holds non-finite values"

    cached = load_arrays(path, key, misfit)
    if cached is not None:
        ctx.tracker.log(f"{split_name} embeddings: cached ({path.name})")
        ctx.tracker.count("cached_embeddings", len(enc))
        return cached["embeddings"]
    model = backbone.get()  # timed as "load"
    with ctx.tracker.phase(phase):
        out = _embed(model, enc, ctx, tokenizer, pooling, split_name, count_as=phase)
    why = save_arrays(path, key, embeddings=out)
    if why:  # a full or read-only cache costs the next run a recomputation, not this run
        ctx.tracker.log(f"{split_name} embeddings not cached ({why})")
    return out


def _embed(model, enc: Encoded, ctx: RunContext, tokenizer, pooling: str, split_name: str,
           count_as: str = "embed") -> np.ndarray:
    """One vector per text: the frozen backbone's last hidden states, pooled."""
    from bench.engine.training import forward_sorted, pad_id_of

    return forward_sorted(model, enc, ctx, pad_id_of(tokenizer), lambda out, batch: pool(out, batch, pooling),
                          desc=f"embedding {split_name}", count_as=count_as)


def _random_linear_head(x: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """The untrained starting point: a freshly initialized linear head (nn.Linear's init)."""
    import torch

    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():
        return head(torch.from_numpy(x)).argmax(-1).numpy()


def _fit_logreg(x, y, p: FeatureExtractParams, ctx: RunContext):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=p.C, max_iter=2000, class_weight="balanced" if p.class_weights else None,
                             random_state=ctx.seed)
    clf.fit(x, y)
    ctx.tracker.count("train_examples", len(x))
    return clf, int(clf.coef_.size + clf.intercept_.size)


def _record_logreg_epoch(clf, feats, y, ctx: RunContext) -> None:
    from sklearn.metrics import log_loss

    from bench.engine.training import validation_figures

    labels = list(range(len(ctx.data.labels)))
    entry = {"epoch": 1, "train_loss": log_loss(y["train"], clf.predict_proba(feats["train"]), labels=labels),
             "val_loss": None, "val_accuracy": None}
    if len(y["val"]):
        val_loss = log_loss(y["val"], clf.predict_proba(feats["val"]), labels=labels)
        entry.update(validation_figures(y["val"], clf.predict(feats["val"]), val_loss))
    ctx.tracker.epoch(entry)


def _fit_mlp(x, y, xv, yv, p: FeatureExtractParams, ctx: RunContext):
    """A one-hidden-layer MLP on the cached embeddings; the best epoch by validation accuracy."""
    import torch
    import torch.nn.functional as F

    from bench.engine.training import BestEpoch, validation_figures

    torch.manual_seed(ctx.seed)
    n_classes = len(ctx.data.labels)
    mlp = mlp_head(x.shape[1], p.hidden, n_classes)
    opt = torch.optim.AdamW(mlp.parameters(), lr=p.lr, weight_decay=0.01)
    weights = torch.tensor(ctx.data.class_weights(), dtype=torch.float32) if p.class_weights else None
    # copies: cached embeddings come back from np.load read-only, which torch warns about
    xt, yt, xvt, yvt = (torch.tensor(a) for a in (x, y, xv, yv))
    gen = torch.Generator().manual_seed(ctx.seed)
    best = BestEpoch(mlp)
    step = 0
    for epoch in range(1, p.epochs + 1):
        mlp.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for s in range(0, len(perm), p.batch_size):
            idx = perm[s: s + p.batch_size]
            loss = F.cross_entropy(mlp(xt[idx]), yt[idx], weight=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            value, step = loss.item(), step + 1
            if not math.isfinite(value):  # diverged: every later figure would be NaN too
                raise Diverged(value, step, epoch, p.lr)
            total += value * len(idx)
        ctx.tracker.count("train_examples", len(xt))
        entry = {"epoch": epoch, "train_loss": total / len(xt), "val_loss": None, "val_accuracy": None}
        if len(xv):
            mlp.eval()
            with torch.no_grad():
                logits = mlp(xvt)
            entry.update(validation_figures(yv, logits.argmax(-1).numpy(), F.cross_entropy(logits, yvt, weight=weights).item()))
            best.offer(entry)
        ctx.tracker.epoch(entry)
    best.restore()
    mlp.eval()
    return mlp, sum(q.numel() for q in mlp.parameters())
