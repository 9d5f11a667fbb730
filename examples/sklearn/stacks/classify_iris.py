"""Launch module of the `classify` application: fits a classifier on the iris data set shipped with scikit-learn."""

import sys

import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from tabulate import tabulate


def test_accuracy(seed: int = 0) -> float:
    """Accuracy on a held-out 30 % of the iris data of a logistic regression fitted on the rest."""
    features, labels = load_iris(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.3, random_state=seed)
    return float(LogisticRegression(max_iter=500).fit(train_x, train_y).score(test_x, test_y))


def main() -> int:
    rows = [["scikit-learn", sklearn.__version__], ["test accuracy", f"{test_accuracy():.3f}"]]
    print(tabulate(rows, headers=["iris classifier", ""]))
    if sys.argv[1:]:
        print(f"arguments: {' '.join(sys.argv[1:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
