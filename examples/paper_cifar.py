"""The SE paper's CIFAR-10 experiment: ResNet-110 vs SE-ResNet-110.

Hu et al. (TPAMI 2019, Table 4) report 6.37% -> 5.21% top-1 error on
CIFAR-10 with He et al.'s recipe: batch 128, SGD momentum 0.9, lr 0.1
divided by 10 at 50% and 75% of 164 epochs, weight decay 1e-4, pad-4 random
crops and flips. Each model needs several GPU-hours; this is for a machine
with a GPU (several GPUs are used through MirroredStrategy).

    python examples/paper_cifar.py                     # cifar10 from tfds, 164 epochs
    python examples/paper_cifar.py --depth 20 --epochs 30 --seeds 0 1 2
"""

import argparse
import json
import os


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10", help="tfds name or local folder (default cifar10)")
    parser.add_argument("--depth", type=int, default=110, help="ResNet depth, 6n+2 (default 110)")
    parser.add_argument("--epochs", type=int, default=164, help="epochs (default 164)")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (default 128)")
    parser.add_argument("--image-size", type=int, default=32, help="input side (default 32)")
    parser.add_argument("--train-images", type=int, help="use only the first N training images")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    parser.add_argument("--output", default="paper_cifar_out", help="output folder")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_senet import training
    from keras_senet.training import experiments

    strategy = training.get_strategy("auto")
    print(f"{training.strategy.strategy_name(strategy)}: {strategy.num_replicas_in_sync} replica(s)")
    # He et al. warm ResNet-110 up at lr 0.01 until training starts to converge.
    recipe = training.get_recipe("cifar", warmup_epochs=1 if args.depth >= 110 else 0)
    results = []
    for seed in args.seeds:
        results += experiments.compare(
            dataset=args.dataset, depth=args.depth, epochs=args.epochs, train_images=args.train_images,
            batch_size=args.batch_size, image_size=args.image_size, seed=seed, strategy=strategy,
            output_dir=args.output, recipe=recipe,
        )
    print(experiments.table(results))
    for r in results:
        print(f"{r.name} seed {r.seed}: top-1 error {100 * (1 - r.test_accuracy):.2f}%")
    os.makedirs(args.output, exist_ok=True)
    experiments.plot(results, os.path.join(args.output, "curves.png"), title=f"{args.dataset}, depth {args.depth}")
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"config": vars(args), "runs": [r.row() for r in results]}, f, indent=2)


if __name__ == "__main__":
    main()
