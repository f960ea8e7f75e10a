"""The paper's claim on real data: SE-ResNet vs ResNet over several seeds.

Trains SE-ResNet-`depth` and ResNet-`depth` (CIFAR layout; the same recipe,
data order and seed in each pair) on Fashion-MNIST for a fixed budget, for
each seed, and writes a results table (Markdown + JSON) and a plot of the
test-accuracy curves with the mean and standard deviation per model.

    python examples/se_vs_baseline.py --seeds 0 1 2 --epochs 4 --train-images 30000
"""

import argparse
import json
import os
import statistics
import time


def summarize(results):
    """{model name: (mean, std, n)} of the final test accuracy."""
    by_model = {}
    for r in results:
        by_model.setdefault(r.name, []).append(r.test_accuracy)
    return {name: (statistics.mean(a), statistics.stdev(a) if len(a) > 1 else 0.0, len(a))
            for name, a in by_model.items()}


def plot_summary(results, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r.name for r in results):
        curves = np.array([[100 * a for a in r.history["val_sparse_categorical_accuracy"]]
                           for r in results if r.name == name])
        epochs = np.arange(1, curves.shape[1] + 1)
        mean, std = curves.mean(0), curves.std(0, ddof=1) if len(curves) > 1 else 0 * curves[0]
        ax.plot(epochs, mean, "-" if name.startswith("se_") else "--", label=f"{name} (n={len(curves)})")
        ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    ax.set(xlabel="epoch", ylabel="test accuracy (%), mean ± std", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    parser.add_argument("--train-images", type=int, default=30_000, help="training images of 60000 (default 30000)")
    parser.add_argument("--test-images", type=int, help="test images used, of 10000 (default all)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--depth", type=int, default=20, help="ResNet depth, 6n+2 (default 20)")
    parser.add_argument("--output", default="se_vs_baseline_out", help="output folder")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_senet.training import experiments

    os.makedirs(args.output, exist_ok=True)
    start = time.perf_counter()
    results = []
    for seed in args.seeds:
        results += experiments.compare(depth=args.depth, epochs=args.epochs, train_images=args.train_images,
                                       test_images=args.test_images, batch_size=args.batch_size, seed=seed, output_dir=args.output)
        print(experiments.table(results), flush=True)
    summary = summarize(results)
    lines = [experiments.table(results), "", "| model | test accuracy, mean ± std | runs |", "|---|---:|---:|"]
    lines += [f"| {name} | {100 * m:.2f} ± {100 * s:.2f}% | {n} |" for name, (m, s, n) in summary.items()]
    text = "\n".join(lines)
    print("\n" + text)
    title = f"Fashion-MNIST, {args.train_images} images, {args.epochs} epochs, depth {args.depth}"
    with open(os.path.join(args.output, "results.md"), "w") as f:
        f.write(f"{title}\n\n{text}\n")
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"config": vars(args), "runs": [r.row() for r in results],
                   "histories": [r.history for r in results],
                   "summary": summary, "seconds": time.perf_counter() - start}, f, indent=2)
    plot_summary(results, os.path.join(args.output, "accuracy.png"), title)
    print(f"results in {args.output}/ ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
