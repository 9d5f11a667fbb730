"""Launch module of the `cluster` application: hierarchical clustering of synthetic blobs, checked with SciPy."""

import sys

import numpy as np
import scipy
import sklearn
from scipy.spatial.distance import cdist
from sklearn.cluster import AgglomerativeClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score


def main() -> int:
    points, _ = make_blobs(n_samples=300, centers=3, random_state=0)
    labels = AgglomerativeClustering(n_clusters=3).fit_predict(points)
    centres = np.array([points[labels == k].mean(axis=0) for k in range(3)])
    print(f"scikit-learn {sklearn.__version__}, SciPy {scipy.__version__}, NumPy {np.__version__}")
    print(
        f"3 clusters, sizes {sorted(np.bincount(labels).tolist())}, "
        f"silhouette {silhouette_score(points, labels):.2f}, widest centre distance {cdist(centres, centres).max():.2f}"
    )
    if sys.argv[1:]:
        print(f"arguments: {' '.join(sys.argv[1:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
