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
    """Plots of an evaluation, by file name: ROC and confusion matrix (classification),
    FROC (detection), per-case Dice distribution (segmentation)."""
    m = result.metrics
    title = f"{result.model_name} v{result.model_version} on {result.test_set['name']}"
    figs: dict[str, Any] = {}
    if m.task == "classification":
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
        fig = _figure(3.6, 3.2)
        ax = fig.add_subplot()
        cm = np.asarray(m.confusion)
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                color="white" if v > cm.max() / 2 else "black",
            )
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xlabel="predicted",
            ylabel="true",
            title="confusion matrix",
        )
        figs["confusion_matrix.png"] = fig
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
