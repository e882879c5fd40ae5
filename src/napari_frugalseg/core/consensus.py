"""Several annotators of one image merged into a consensus: majority vote and STAPLE.

Label images hold 0 (not annotated there) and classes 1..K. Both methods return the
consensus (0 where nobody annotated), a per-pixel agreement in [0, 1] that the loss can use
as a weight, and for STAPLE each annotator's estimated sensitivity and specificity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import FrugalsegError


@dataclass
class Consensus:
    labels: np.ndarray  # 0 where nobody annotated, else 1..K
    agreement: np.ndarray  # float32 in [0, 1]
    sensitivity: np.ndarray | None = None  # (annotators, K): P(says k | truth k), STAPLE
    specificity: np.ndarray | None = None  # (annotators, K): P(says not k | truth not k)


def _stack(annotations: Sequence[np.ndarray], names: Sequence[str] | None) -> np.ndarray:
    if len(annotations) < 2:
        raise FrugalsegError("a consensus needs at least two annotators")
    names = list(names or [f"annotator {i + 1}" for i in range(len(annotations))])
    shape = np.shape(annotations[0])
    for a, name in zip(annotations, names):
        if np.shape(a) != shape:
            raise FrugalsegError(f"{name}: shape {np.shape(a)} differs from {names[0]}'s {shape}")
    return np.stack([np.asarray(a, np.int64) for a in annotations])


def majority_vote(annotations: Sequence[np.ndarray], n_classes: int,
                  names: Sequence[str] | None = None) -> Consensus:
    """Most frequent class among the annotators who labelled each pixel (ties: lowest class);
    agreement = share of those annotators who chose it."""
    stack = _stack(annotations, names)
    votes = np.stack([(stack == k).sum(0) for k in range(1, n_classes + 1)])
    total = (stack > 0).sum(0)
    labels = np.where(total > 0, votes.argmax(0) + 1, 0)
    agreement = np.where(total > 0, votes.max(0) / np.maximum(total, 1), 0).astype(np.float32)
    return Consensus(labels.astype(np.int32), agreement)


def staple(annotations: Sequence[np.ndarray], n_classes: int, names: Sequence[str] | None = None,
           iterations: int = 50, tol: float = 1e-5) -> Consensus:
    """Multi-class STAPLE (Warfield et al. 2004) by expectation-maximisation.

    Each annotator j has a confusion matrix theta_j[said, true]; the posterior of the true
    class at each pixel weighs annotators by their estimated reliability. Agreement is the
    posterior probability of the consensus class.
    """
    stack = _stack(annotations, names)
    d, k = stack.shape[0], n_classes
    flat = stack.reshape(d, -1)
    seen = (flat > 0).any(0)
    obs = flat[:, seen]  # (D, N)
    w = np.stack([(obs == c).mean(0) for c in range(1, k + 1)], 1) + 1e-6  # (N, K) start: votes
    w /= w.sum(1, keepdims=True)
    theta = np.zeros((d, k + 1, k))  # row 0: "did not annotate", carries no information
    for _ in range(iterations):
        for j in range(d):
            for true in range(k):  # theta[j, said, true] = sum of w[:, true] where j said it
                theta[j, :, true] = np.bincount(obs[j], weights=w[:, true], minlength=k + 1)
            theta[j, 1:] /= np.maximum(theta[j, 1:].sum(0, keepdims=True), 1e-12)
            theta[j, 1:] = np.clip(theta[j, 1:], 1e-6, 1.0)
            theta[j, 0] = 1.0
        prior = np.clip(w.mean(0), 1e-6, 1.0)  # class frequencies are estimated too
        log_w = np.log(prior)[None] + sum(np.log(theta[j, obs[j]]) for j in range(d))
        new = np.exp(log_w - log_w.max(1, keepdims=True))
        new /= new.sum(1, keepdims=True)
        done = np.abs(new - w).max() < tol
        w = new
        if done:
            break
    labels = np.zeros(flat.shape[1], np.int32)
    agreement = np.zeros(flat.shape[1], np.float32)
    labels[seen] = w.argmax(1) + 1
    agreement[seen] = w.max(1)
    conf = theta[:, 1:]  # (D, said K, true K)
    sensitivity = np.stack([np.diag(c) for c in conf])  # P(said k | true k), (D, K)
    prior_true = w.mean(0)
    specificity = np.zeros((d, k))  # P(said != k | true != k)
    for s_ in range(k):
        others = np.arange(k) != s_
        pt = prior_true[others] / max(prior_true[others].sum(), 1e-12)
        specificity[:, s_] = (pt * (1 - conf[:, s_, others])).sum(1)
    shape = stack.shape[1:]
    return Consensus(labels.reshape(shape), agreement.reshape(shape), sensitivity, specificity)
