"""Downstream metrics: segmentation F1 / IoU / accuracy, change-detection ROC-AUC, fold aggregation.

Segmentation ([P] §IV-A-2, §IV-B-1, Tables II–III; docs/reference.md §7): the paper reports the F1 score
averaged over the crop classes (PASTIS 1–18), background (0) and void (19) being ignored. We
compute it from our own confusion matrix because of pitfall P10 (docs/reference.md §10): torchmetrics'
``MulticlassF1Score(average="macro", ignore_index=0)`` drops the pixels *labelled* 0 but still
averages class 0 in whenever a labelled pixel is *predicted* 0. Here:

* a pixel is evaluated iff its truth is a non-negative class id not in ``ignore`` (and ``valid``);
* a prediction of an ignored class on an evaluated pixel is an error (a false negative of the
  true class) — it is never forgiven and never creates an extra averaged class;
* the macro average runs over the classes present in the truth of the evaluated pixels, so a
  class missing from a test fold neither counts as 0 nor as 1.

Change detection ([P] §IV-B-2, Eq. 12, Table IV; docs/reference.md §8): binary ROC-AUC of a distance
score against the change truth, pooled over the evaluated (non-background) pixels.

All returned dictionaries contain plain Python types only, so they go straight into
``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from alise.errors import AliseError

#: Maximum number of points kept of a ROC curve (enough for a smooth plot, small in JSON).
ROC_POINTS = 201


def _flat(a, name: str) -> np.ndarray:
    """Any array-like (numpy, torch, list) → flat numpy array."""
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype == object:
        raise AliseError(f"{name} must be a numeric array, got objects")
    return a.reshape(-1)


def confusion_matrix(y_true, y_pred, num_classes: int, valid=None) -> np.ndarray:
    """Pixel confusion matrix, rows = truth, columns = prediction.

    Args:
        y_true: class ids, any shape, e.g. (B, H, W); negative values (``ignore_index``) are
            not counted.
        y_pred: predicted class ids, same shape, in ``[0, K)``.
        num_classes: ``K``.
        valid: optional bool mask of the same shape, True = count this pixel.

    Returns:
        (K, K) int64 array of pixel counts.

    Raises:
        AliseError: shapes differ, or a counted truth / prediction is outside ``[0, K)``.
    """
    t, p = _flat(y_true, "y_true"), _flat(y_pred, "y_pred")
    if t.shape != p.shape:
        raise AliseError(f"truth and prediction have different sizes ({t.size} vs {p.size} pixels)")
    keep = t >= 0
    if valid is not None:
        v = _flat(valid, "valid").astype(bool)
        if v.shape != t.shape:
            raise AliseError(f"valid mask has {v.size} pixels, labels have {t.size}")
        keep &= v
    t, p = t[keep].astype(np.int64), p[keep].astype(np.int64)
    k = int(num_classes)
    if t.size and (t.max() >= k):
        raise AliseError(f"truth contains class {int(t.max())} but num_classes is {k}: "
                         "add it to `ignore` or raise num_classes")
    if p.size and (p.min() < 0 or p.max() >= k):
        bad = int(p.min()) if p.min() < 0 else int(p.max())
        raise AliseError(f"prediction contains class {bad} outside [0, {k})")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def metrics_from_confusion(confusion, ignore: Iterable[int] = (0,), class_names: Sequence[str] | None = None) -> dict:
    """Macro-F1, per-class F1, overall accuracy and mIoU from a (K, K) confusion matrix.

    Use this to aggregate over batches: sum the batch confusion matrices, then call it once.
    Rows of ``ignore`` classes are dropped (those pixels are not evaluated); their columns stay,
    so predicting an ignored class on a labelled pixel is a false negative of the true class.

    Per class k (present in the truth): ``F1_k = 2 TP / (2 TP + FP + FN)``,
    ``IoU_k = TP / (TP + FP + FN)``; ``macro_f1`` and ``miou`` average them over the present
    classes; ``overall_accuracy = Σ TP / n_pixels``.

    Returns:
        ``{"macro_f1", "per_class_f1": {name or id: f1}, "per_class_iou", "overall_accuracy",
        "miou", "confusion": list[list[int]], "classes": [ids], "class_names": [names] | None,
        "n_pixels"}`` — plain Python types.
    """
    cm = np.array(confusion, dtype=np.int64, copy=True)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise AliseError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    k = cm.shape[0]
    if class_names is not None and len(class_names) != k:
        raise AliseError(f"{len(class_names)} class names given for {k} classes: give one name per class id 0..{k - 1}")
    ignored = [c for c in set(int(c) for c in ignore) if 0 <= c < k]
    cm[ignored, :] = 0  # pixels whose truth is ignored are not evaluated
    n = int(cm.sum())
    if n == 0:
        raise AliseError("no labelled pixel to evaluate (all truth is ignored, negative or masked): "
                         "check the labels, the split and the `ignore` classes")
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)  # truth pixels per class
    predicted = cm.sum(axis=0)  # predictions per class, on evaluated pixels
    fp, fn = predicted - tp, support - tp
    present = [c for c in range(k) if support[c] > 0 and c not in ignored]
    f1 = {c: float(2 * tp[c] / (2 * tp[c] + fp[c] + fn[c])) for c in present}
    iou = {c: float(tp[c] / (tp[c] + fp[c] + fn[c])) for c in present}

    def key(c: int):
        return class_names[c] if class_names is not None else c

    return {
        "macro_f1": float(np.mean(list(f1.values()))),
        "per_class_f1": {key(c): v for c, v in f1.items()},
        "per_class_iou": {key(c): v for c, v in iou.items()},
        "overall_accuracy": float(tp.sum() / n),
        "miou": float(np.mean(list(iou.values()))),
        "confusion": cm.tolist(),
        "classes": present,
        "class_names": None if class_names is None else [str(class_names[c]) for c in present],
        "n_pixels": n,
    }


def segmentation_metrics(y_true, y_pred, num_classes: int, ignore: Iterable[int] = (0,), class_names: Sequence[str] | None = None) -> dict:
    """Segmentation metrics of class maps ([P] Tables II–III; docs/reference.md §7 and pitfall P10).

    Args:
        y_true: truth class ids, any shape (e.g. (B, H, W)). Pixels whose truth is negative
            (``ignore_index``) or in ``ignore`` are not evaluated; ``ignore`` may hold ids
            ``≥ K`` (e.g. PASTIS void 19 with K = 19).
        y_pred: predicted class ids in ``[0, K)``, same shape (the argmax over all K logits —
            predicting an ignored class is an error, not a pass).
        num_classes: ``K``, the number of classifier outputs.
        ignore: class ids not evaluated and not averaged (PASTIS: ``(0, 19)``).
        class_names: optional K names; keys of ``per_class_f1`` use them instead of ids.

    Returns:
        See :func:`metrics_from_confusion`; ``macro_f1`` averages over classes present in the
        truth of the evaluated pixels.
    """
    t = _flat(y_true, "y_true")
    ignored = np.asarray(sorted(set(int(c) for c in ignore)), dtype=np.int64)
    evaluated = (t >= 0) & ~np.isin(t, ignored)
    cm = confusion_matrix(t, y_pred, num_classes, valid=evaluated)
    return metrics_from_confusion(cm, ignore=ignored.tolist(), class_names=class_names)


def change_detection_metrics(score, change, valid=None) -> dict:
    """ROC-AUC of a change score against binary change truth ([P] §V-C, Table IV; docs/reference.md §8).

    Args:
        score: distance map, any shape (e.g. (H, W) or (B, H, W)); higher = more likely changed.
        change: truth of the same shape, 1/True = changed, 0/False = unchanged.
        valid: optional bool mask, True = evaluate (e.g. non-background pixels).
            Pixels with a non-finite score (e.g. GF with no clear observation) are excluded and
            counted in ``n_excluded_nonfinite``; to compare methods on the same pixels, pass
            the intersection of their finite masks as ``valid``.

    Returns:
        ``{"auc", "fpr": [...], "tpr": [...], "n_pixels", "n_change", "n_no_change",
        "n_excluded_nonfinite"}``; the ROC curve is subsampled to at most ``ROC_POINTS`` points
        (end points kept).
    """
    s, c = _flat(score, "score").astype(np.float64), _flat(change, "change")
    if s.shape != c.shape:
        raise AliseError(f"score has {s.size} pixels, change truth has {c.size}")
    keep = np.ones(s.shape, bool)
    if valid is not None:
        v = _flat(valid, "valid").astype(bool)
        if v.shape != s.shape:
            raise AliseError(f"valid mask has {v.size} pixels, score has {s.size}")
        keep &= v
    finite = np.isfinite(s)
    n_nonfinite = int((keep & ~finite).sum())
    keep &= finite
    s, c = s[keep], c[keep]
    if not np.isin(c, (0, 1)).all():
        raise AliseError("change truth must be binary (0 = unchanged, 1 = changed) on evaluated pixels")
    c = c.astype(bool)
    n_change = int(c.sum())
    if n_change == 0 or n_change == c.size:
        raise AliseError(f"ROC-AUC needs both changed and unchanged pixels; got {n_change} changed of {c.size} evaluated")
    fpr, tpr, _ = roc_curve(c, s)
    if fpr.size > ROC_POINTS:
        idx = np.unique(np.linspace(0, fpr.size - 1, ROC_POINTS).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return {
        "auc": float(roc_auc_score(c, s)),
        "fpr": [float(v) for v in fpr],
        "tpr": [float(v) for v in tpr],
        "n_pixels": int(c.size),
        "n_change": n_change,
        "n_no_change": int(c.size - n_change),
        "n_excluded_nonfinite": n_nonfinite,
    }


def mean_std(values) -> dict:
    """Aggregate a score over folds / trials ([P] Tables II–III report mean ± std).

    ``std`` is the population standard deviation (``ddof=0``), as numpy's default.

    Returns:
        ``{"mean", "std", "n", "values"}`` with plain floats.
    """
    v = [float(x) for x in _flat(values, "values")]
    if not v:
        raise AliseError("cannot aggregate an empty list of scores")
    a = np.asarray(v, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=0)), "n": len(v), "values": v}


def nyquist_share(embedding) -> float:
    """Share of an embedding's spatial variance at the highest spatial frequency (grid artefacts).

    Args:
        embedding: ``(F, H, W)`` per-pixel features (e.g. an ALISE embedding flattened to Q·D bands).

    Returns:
        Over all bands, the power of the 2-D spectrum (each band's mean removed) on the Nyquist row
        and column (period-2 patterns along either axis) divided by the total power. Natural
        images, and embeddings that follow parcels, put well under 1 % there; white noise puts
        ``(H + W − 1) / (H·W)`` (3 % at 64 × 64); a period-2 checkerboard puts 100 %.
    """
    f = _flat(embedding, "embedding").astype(np.float64).reshape(np.shape(embedding))
    if f.ndim != 3 or min(f.shape[1:]) < 2:
        raise AliseError(f"nyquist_share expects (F, H, W) with H, W ≥ 2, got shape {f.shape}")
    f = f - f.mean(axis=(1, 2), keepdims=True)
    p = np.abs(np.fft.fft2(f)) ** 2  # (F, H, W)
    h, w = f.shape[1:]
    total = p.sum()
    if total <= 0:
        return 0.0
    row = p[:, h // 2, :].sum() if h % 2 == 0 else 0.0
    col = p[:, :, w // 2].sum() if w % 2 == 0 else 0.0
    both = p[:, h // 2, w // 2].sum() if h % 2 == 0 and w % 2 == 0 else 0.0
    return float((row + col - both) / total)
