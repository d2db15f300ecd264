"""Train a small network of Scalars on a toy dataset.

    python project/run_scalar.py --dataset Simple --hidden 3 --epochs 100 --lr 0.5

Everything here is built from Module, Parameter, Scalar and SGD, so it only runs once
modules 0 and 1 work. The defaults reach accuracy 1.0 on Simple in a few seconds. Diag,
Split, Xor and Circle need a wider network and more epochs (--hidden 8 --epochs 200);
Spiral is beyond this small network.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as a script, Python puts only this file's folder (project/) on sys.path. The
# minitorch package sits one level up, next to project/, so add that folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import minitorch  # noqa: E402


class Linear(minitorch.Module):
    """A fully connected layer: out_j = bias_j + sum_i x_i * weight_i_j."""

    def __init__(self, in_size: int, out_size: int, rng: random.Random) -> None:
        super().__init__()
        # Weights live in lists, so register each one with add_parameter.
        self.weights = [
            [
                self.add_parameter(f"weight_{i}_{j}", minitorch.Scalar(rng.uniform(-1, 1)))
                for j in range(out_size)
            ]
            for i in range(in_size)
        ]
        self.bias = [
            self.add_parameter(f"bias_{j}", minitorch.Scalar(rng.uniform(-1, 1)))
            for j in range(out_size)
        ]

    def forward(self, inputs: Sequence[minitorch.Scalar]) -> list[minitorch.Scalar]:
        outputs = [b.value for b in self.bias]
        for x, row in zip(inputs, self.weights, strict=True):
            outputs = [y + x * w.value for y, w in zip(outputs, row, strict=True)]
        return outputs


class Network(minitorch.Module):
    """Two hidden ReLU layers and one output: the logit of label 1."""

    def __init__(self, hidden: int, rng: random.Random) -> None:
        super().__init__()
        self.layer1 = Linear(2, hidden, rng)
        self.layer2 = Linear(hidden, hidden, rng)
        self.layer3 = Linear(hidden, 1, rng)

    def forward(self, x: Sequence[minitorch.Scalar]) -> minitorch.Scalar:
        h = [v.relu() for v in self.layer1(x)]
        h = [v.relu() for v in self.layer2(h)]
        return self.layer3(h)[0]


def predict(model: Network, point: tuple[float, float]) -> minitorch.Scalar:
    """The model's logit for one point.

    Coordinates are rescaled from [0, 1] to [-1, 1]: centred inputs let the randomly
    initialised ReLUs split the data from the first epoch, which speeds training a lot.
    """
    x1, x2 = point
    return model([minitorch.Scalar(2.0 * x1 - 1.0), minitorch.Scalar(2.0 * x2 - 1.0)])


def accuracy(model: Network, data: minitorch.Graph) -> float:
    """The fraction of points whose predicted label (logit > 0) is right."""
    correct = sum(
        (predict(model, point).data > 0.0) == (label == 1)
        for point, label in zip(data.X, data.y, strict=True)
    )
    return correct / data.N


def train(model: Network, data: minitorch.Graph, lr: float, epochs: int, log_every: int) -> None:
    """Full-batch gradient descent on the mean cross-entropy loss."""
    model.train()
    optimizer = minitorch.SGD(model.parameters(), lr)
    for epoch in range(1, epochs + 1):
        optimizer.zero_grad()
        total_loss = 0.0
        for point, label in zip(data.X, data.y, strict=True):
            logit = predict(model, point)
            # P(label) is sigmoid(logit) for 1 and sigmoid(-logit) = 1 - sigmoid(logit)
            # for 0; the second form cannot round to log(0) for a confident model.
            prob = logit.sigmoid() if label == 1 else (-logit).sigmoid()
            loss = -prob.log()
            # Each backward() adds this point's share to the parameters' derivatives.
            (loss / data.N).backward()
            total_loss += loss.data
        optimizer.step()
        if epoch % log_every == 0 or epoch == epochs:
            print(
                f"epoch {epoch:4d}  loss {total_loss / data.N:.4f}  "
                f"accuracy {accuracy(model, data):.2f}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Simple", choices=sorted(minitorch.datasets))
    parser.add_argument("--points", type=int, default=50, help="number of points")
    parser.add_argument("--hidden", type=int, default=3, help="units per hidden layer")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--log-every", type=int, default=10, help="epochs between reports")
    args = parser.parse_args(argv)

    data = minitorch.datasets[args.dataset](args.points)
    model = Network(args.hidden, random.Random(args.seed))
    train(model, data, args.lr, args.epochs, args.log_every)
    model.eval()
    print(f"final accuracy {accuracy(model, data):.2f} on {args.dataset} ({data.N} points)")


if __name__ == "__main__":
    main()
