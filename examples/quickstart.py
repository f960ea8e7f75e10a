"""Quickstart: does SE help? Train SE-ResNet-20 and ResNet-20 on Fashion-MNIST.

Offline, on the CPU, in a few minutes: both networks (CIFAR layout, the same
recipe, data order and seed) train with MirroredStrategy over two logical
CPU devices, the same code path as several GPUs. Prints a table, saves the
training curves (PNG), exports the SE model to TFLite and checks it with
LiteRT.

    python examples/quickstart.py [--epochs 3] [--train-images 10000]

Fashion-MNIST comes from Debian (`apt-get install dataset-fashion-mnist`).
"""

import argparse
import json
import os
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per model (default 3)")
    parser.add_argument("--train-images", type=int, default=10_000,
                        help="training images used, of 60000 (default 10000)")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (default 128)")
    parser.add_argument("--depth", type=int, default=20, help="ResNet depth, 6n+2 (default 20)")
    parser.add_argument("--replicas", type=int, default=2,
                        help="logical CPU devices for MirroredStrategy (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, data order and augmentation")
    parser.add_argument("--output", default="quickstart_out", help="output folder (default quickstart_out)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ INFO/WARNING/ERROR log lines

    from keras_senet import training

    training.split_cpu(args.replicas)  # before TensorFlow starts: N replicas on one CPU
    from keras_senet import export, inputs
    from keras_senet.training import experiments

    start = time.perf_counter()
    strategy = training.get_strategy("mirrored")
    print(f"MirroredStrategy: {strategy.num_replicas_in_sync} replicas on {strategy.extended.worker_devices}")
    results = experiments.compare(
        depth=args.depth, epochs=args.epochs, train_images=args.train_images, batch_size=args.batch_size,
        seed=args.seed, strategy=strategy, output_dir=args.output,
    )
    print()
    print(experiments.table(results))
    se, plain = results
    print(f"\nSE: {se.test_accuracy - plain.test_accuracy:+.2%} test accuracy for "
          f"{se.params - plain.params:,} more parameters ({se.params / plain.params - 1:+.2%}) and "
          f"{se.macs / plain.macs - 1:+.2%} MACs; one seed, a short run: see examples/se_vs_baseline.py")
    plot = experiments.plot(results, os.path.join(args.output, "curves.png"),
                            title=f"Fashion-MNIST, {args.train_images} images, {args.epochs} epochs")
    print(f"curves: {plot}")

    # The SE model on a phone: TFLite fp32, checked against Keras on test images;
    # the file carries the class names (`keras-senet predict IMAGE --model FILE`).
    source, info = training.load_source("fashion_mnist", "test")
    inputs.attach(se.model, class_names=info.class_names)
    sample, labels = training.pipeline.take_arrays(training.make_dataset(
        source, training=False, image_size=28, batch_size=100, transform=se.model.input_transform), 100)
    report = export.to_tflite(se.model, os.path.join(args.output, "se_resnet.tflite"), sample=sample)
    print(report)
    if report.max_abs_diff > 1e-4 or report.top1_agreement < 1.0:
        raise SystemExit(f"TFLite check failed: {report}")
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"runs": [r.row() for r in results], "tflite": str(report),
                   "seconds": time.perf_counter() - start}, f, indent=2)
    print(f"done in {time.perf_counter() - start:.0f} s; results in {args.output}/")


if __name__ == "__main__":
    main()
