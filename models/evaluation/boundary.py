"""A 2-D picture of a tabular model's decisions: its classes over a plane through the data.

Why it exists. Analysts of a segmentation model ask "where does the model draw the line
between segments, and which customers sit near it?". A model of nine columns has no 2-D
boundary, so the picture is a slice: the plane of the first two principal components of the
standardised numeric columns (with the share of their variance it holds, so nobody mistakes
it for the whole story). Each grid point of that plane is mapped back to the numeric columns
(PCA's inverse, then the column's scale, clipped to the spec's range) and given the most
common value of every categorical column; the model's class there colours the region. The
test rows are drawn at their projection, coloured by their true class, with the ones the
model got wrong outlined. Points off the plane can sit in a region of another colour and
still be predicted right: the caption says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from models.data.spec import DatasetSpec

GRID_STEPS = 120
MARGIN = 0.05                # of each axis's range, around the points


@dataclass(frozen=True)
class BoundaryPlane:
    """The projection, the grid's classes and the points, ready to draw or to test."""

    numeric: list[str]
    explained: float                   # share of the standardised variance in the plane
    xs: np.ndarray                     # grid axis values (plane coordinates)
    ys: np.ndarray
    regions: np.ndarray                # class index per grid cell, shape (len(ys), len(xs))
    points: np.ndarray                 # test rows projected, shape (n, 2)
    truth: np.ndarray                  # class index of each test row (-1: not a class)
    predicted: np.ndarray              # class index the model gave each test row


def boundary_plane(model: Any, X: pd.DataFrame, y: Any, spec: DatasetSpec, *,
                   steps: int = GRID_STEPS, seed: int = 0) -> BoundaryPlane | None:
    """The plane, the model's class at each of `steps` x `steps` grid points, and the rows;
    None for data with fewer than two numeric columns or any text column (no plane to
    draw), or fewer than three rows."""
    numeric = list(spec.features_of_type("numeric"))
    if spec.features_of_type("text") or len(numeric) < 2 or len(X) < 3:
        return None
    values = X[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    centre = values.median()
    filled = values.fillna(centre)
    scale = filled.std(ddof=0).replace(0.0, 1.0)
    standard = ((filled - filled.mean()) / scale).to_numpy()
    pca = PCA(n_components=2, random_state=seed).fit(standard)
    points = pca.transform(standard)
    low, high = points.min(axis=0), points.max(axis=0)
    pad = (high - low) * MARGIN + 1e-9
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], steps)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], steps)
    grid = np.array(np.meshgrid(xs, ys)).reshape(2, -1).T
    back = pca.inverse_transform(grid) * scale.to_numpy() + filled.mean().to_numpy()
    frame = pd.DataFrame(back, columns=numeric)
    for feature in spec.features:
        if feature.type == "numeric":
            frame[feature.name] = frame[feature.name].clip(feature.min, feature.max)
    for name in spec.features_of_type("categorical"):
        common = X[name].dropna().astype(str).mode()
        frame[name] = common.iloc[0] if len(common) else None
    frame = frame[list(spec.feature_names)]
    index = {name: i for i, name in enumerate(spec.classes)}

    def codes(labels: Any) -> np.ndarray:
        return np.array([index.get(str(v), -1) for v in np.asarray(labels, dtype=object)])

    return BoundaryPlane(numeric=numeric, explained=float(pca.explained_variance_ratio_.sum()),
                         xs=xs, ys=ys, regions=codes(model.predict(frame)).reshape(steps, steps),
                         points=points, truth=codes(y), predicted=codes(model.predict(X)))


def save_boundary_plot(plane: BoundaryPlane, spec: DatasetSpec, path: Path) -> Path:
    """Draw `plane` as a PNG at `path` (regions, points by true class, errors outlined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(spec.classes))]
    figure, axes = plt.subplots(figsize=(7, 5.5))
    axes.contourf(plane.xs, plane.ys, plane.regions, levels=np.arange(len(spec.classes) + 1) - 0.5,
                  cmap=ListedColormap(colours), alpha=0.25)
    for i, name in enumerate(spec.classes):
        mine = plane.truth == i
        axes.scatter(plane.points[mine, 0], plane.points[mine, 1], s=12, color=colours[i],
                     label=name, edgecolors="none")
    wrong = plane.truth != plane.predicted
    axes.scatter(plane.points[wrong, 0], plane.points[wrong, 1], s=30, facecolors="none",
                 edgecolors="black", linewidths=0.7, label="predicted wrong")
    axes.set_xlabel("first principal component of the numeric columns")
    axes.set_ylabel("second principal component")
    axes.set_title(f"{spec.name}: the model's classes on the main plane\n"
                   f"({plane.explained:.0%} of the numeric columns' variance)", fontsize=10)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
