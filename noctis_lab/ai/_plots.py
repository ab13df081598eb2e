"""Evaluation plots (matplotlib ``Figure`` objects, Agg canvas: no GUI backend needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from noctis_lab.ai._evaluate import EvaluationResult

__all__ = ["evaluation_plots"]


def _figure(w: float = 4.2, h: float = 3.6) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def evaluation_plots(result: EvaluationResult) -> dict[str, Any]:
    """Plots of an evaluation, by file name.

    ROC and confusion matrix (classification), FROC (detection), per-case Dice
    distribution (segmentation).
    """
    m = result.metrics
    title = f"{result.model_name} v{result.model_version} on {result.test_set['name']}"
    figs: dict[str, Any] = {}
    if m.task == "classification" and len(m.curves.get("fpr", ())) == 0:
        figs["confusion_matrix.png"] = _confusion(m)
    elif m.task == "classification":
        fig = _figure()
        ax = fig.add_subplot()
        auc = m.values["auroc"]
        ax.plot(
            m.curves["fpr"],
            m.curves["tpr"],
            lw=2,
            label=f"AUROC {auc.value:.3f} [{auc.ci_low:.3f}, {auc.ci_high:.3f}]",
        )
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
        ax.set(
            xlabel="1 - specificity",
            ylabel="sensitivity",
            title=f"ROC: {title}",
            xlim=(0, 1),
            ylim=(0, 1.01),
        )
        ax.title.set_fontsize(8)
        ax.legend(loc="lower right", fontsize=8)
        figs["roc.png"] = fig
        figs["confusion_matrix.png"] = _confusion(m)
        figs["reliability.png"] = _reliability(m, title)
    elif m.task == "detection":
        fig = _figure()
        ax = fig.add_subplot()
        fr = m.values["froc_score"]
        ax.plot(
            m.curves["fps_per_image"],
            m.curves["sensitivity"],
            lw=2,
            drawstyle="steps-post",
            label=f"FROC score {fr.value:.3f} [{fr.ci_low:.3f}, {fr.ci_high:.3f}]",
        )
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set(
            xlabel="false positives per image",
            ylabel="sensitivity",
            ylim=(0, 1.01),
            title=f"FROC: {title}",
        )
        ax.title.set_fontsize(8)
        ax.legend(loc="lower right", fontsize=8)
        figs["froc.png"] = fig
    else:
        fig = _figure()
        ax = fig.add_subplot()
        dice = np.asarray(m.per_case["dice"])
        ax.hist(dice[np.isfinite(dice)], bins=np.linspace(0, 1, 21), color="tab:blue")
        d = m.values["dice"]
        ax.axvline(
            d.value, c="k", lw=1.5, label=f"mean {d.value:.3f} [{d.ci_low:.3f}, {d.ci_high:.3f}]"
        )
        ax.set(xlabel="Dice per case", ylabel="cases", title=f"Dice: {title}")
        ax.title.set_fontsize(8)
        ax.legend(loc="upper left", fontsize=8)
        figs["dice_distribution.png"] = fig
    return figs


def _confusion(m: Any) -> Any:
    fig = _figure(3.6, 3.2)
    ax = fig.add_subplot()
    cm = np.asarray(m.confusion)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black"
        )
    names = m.info.get("classes", "").split(",") if m.info.get("classes") else None
    ticks = list(range(cm.shape[0]))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title="confusion matrix")
    if names and len(names) == len(ticks):
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_yticklabels(names, fontsize=7)
    return fig


def _reliability(m: Any, title: str) -> Any:
    """Reliability diagram of a classifier, with its ECE.

    The observed positive fraction against the mean predicted probability per bin
    (marker area ~ cases), and the diagonal of perfect calibration.
    """
    fig = _figure()
    ax = fig.add_subplot()
    conf = np.asarray(m.curves["reliability_confidence"])
    freq = np.asarray(m.curves["reliability_frequency"])
    count = np.asarray(m.curves["reliability_count"])
    ok = count > 0
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.plot(conf[ok], freq[ok], "-", c="tab:blue", lw=1)
    ax.scatter(conf[ok], freq[ok], s=10 + 200 * count[ok] / count.max(), c="tab:blue", zorder=3)
    e = m.values["ece"]
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed positive fraction",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"Reliability: {title}\nECE {e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]",
    )
    ax.title.set_fontsize(8)
    ax.legend(loc="upper left", fontsize=8)
    return fig
