"""The `keras-senet` command.

    keras-senet info SEResNet50                 parameters and MACs
    keras-senet info --all --run                every model, with a timed forward pass
    keras-senet presets                         ImageNet weight presets
    keras-senet convert --timm-model NAME --checkpoint FILE --output OUT.keras
    keras-senet export SEResNet50 --format tflite --quantize float16 --output m.tflite
"""

import argparse
import inspect
import os
import sys
import time


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_info(args):
    import numpy as np

    import keras_senet

    names = list(keras_senet.MODELS) if args.all else args.models
    if not names:
        raise SystemExit("keras-senet info: name a model (e.g. SEResNet50) or pass --all")
    unknown = [n for n in names if n not in keras_senet.MODELS]
    if unknown:
        raise SystemExit(
            f"keras-senet info: unknown model {unknown[0]!r}; choose from {', '.join(keras_senet.MODELS)}"
        )
    size = args.input_size
    header = f"{'model':<18} {'variant':<8} {'params':>13} {'GMACs':>8}"
    if args.run:
        header += f" {'forward ms':>11}  output"
    print(f"input {size}x{size}x3, random weights (nothing is classified)")
    print(header)
    for name in names:
        constructor = keras_senet.MODELS[name]
        variants = ("caffe", "torch") if args.variant == "both" else (args.variant,)
        if "variant" not in inspect.signature(constructor).parameters:
            variants = (None,)  # SE-MobileNetV3 has one form
        for variant in variants:
            options = {} if variant is None else {"variant": variant}
            model = constructor(weights=None, input_shape=(size, size, 3), **options)
            info = keras_senet.model_info(model)
            line = f"{name:<18} {variant or '-':<8} {info.params:>13,} {info.macs / 1e9:>8.3f}"
            if args.run:
                x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
                x = keras_senet.se_resnet.preprocess_input(x)
                y = model.predict_on_batch(x)  # traces the graph once
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    model.predict_on_batch(x)
                    times.append(time.perf_counter() - start)
                line += f" {1000 * sorted(times)[1]:>11.1f}  {tuple(y.shape)}"
            print(line, flush=True)


def cmd_convert(args):
    import numpy as np

    from keras_senet.weights.convert import convert_timm_checkpoint

    model = convert_timm_checkpoint(
        args.timm_model, args.checkpoint, output=args.output,
        input_shape=(None, None, 3), classifier_activation=None,
    )
    print(f"converted {args.checkpoint} -> {args.output} ({model.name}, {model.count_params():,} weights)")
    if args.validate:
        try:
            import timm
            import torch
        except ImportError:
            raise SystemExit("--validate needs torch and timm: pip install 'keras-senet[convert]'")
        from keras_senet.weights.convert import read_checkpoint

        reference = timm.create_model(args.timm_model, pretrained=False, num_classes=model.output_shape[-1])
        state = {k: torch.from_numpy(np.array(v)) for k, v in read_checkpoint(args.checkpoint).items()}
        reference.load_state_dict(state)
        reference.eval()
        x = np.random.default_rng(0).normal(size=(4, args.input_size, args.input_size, 3)).astype("float32")
        with torch.no_grad():
            ref = reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
        out = model.predict(x, verbose=0)
        top5 = lambda a: np.argsort(-a, axis=1)[:, :5]  # noqa: E731
        agree = np.mean([set(a) == set(b) for a, b in zip(top5(ref), top5(out))])
        print(f"max abs logit difference vs timm: {np.abs(ref - out).max():.3e} "
              f"(logit range {np.abs(ref).max():.2f}); top-5 agreement {agree:.0%}")


def cmd_presets(args):
    from keras_senet.weights.presets import DEFAULT_PRESETS, PRESETS

    defaults = set(DEFAULT_PRESETS.values())
    print(f"{'preset':<34} {'constructor':<18} {'variant':<8} {'top-1':>6} {'top-5':>6} {'eval':>9}  source")
    for name, p in PRESETS.items():
        source = "safetensors" if p["urls"][0].endswith(".safetensors") else "pth (needs torch)"
        mark = " *" if name in defaults else ""
        print(f"{name + mark:<34} {p['constructor']:<18} {p['variant'] or '-':<8} {p['top1']:>6.2f} {p['top5']:>6.2f} "
              f"{p['eval_size']:>4}/{p['crop_pct']:<4}  {source}")
    print("* default for weights='imagenet'; top-1/top-5: timm's ImageNet-1k validation results")


def _family(name):
    import keras_senet

    return keras_senet.se_mobilenet if "MobileNet" in name else keras_senet.se_resnet


def _calibration(path, model, name, limit=200):
    import numpy as np

    if path.endswith(".npy"):
        return [np.load(path)[:limit].astype("float32")]
    if name is None:
        raise SystemExit("keras-senet export: with a .keras file, give --calibration as a .npy "
                         "file of already preprocessed inputs")
    import keras

    height, width = model.input_shape[1:3]
    files = sorted(f for f in os.listdir(path) if f.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")))[:limit]
    if not files:
        raise SystemExit(f"keras-senet export: no .jpg/.png/.bmp images in {path}")
    images = np.stack([keras.utils.img_to_array(keras.utils.load_img(os.path.join(path, f), target_size=(height, width)))
                       for f in files])
    return [np.asarray(_family(name).preprocess_input(images), "float32")]


def cmd_export(args):
    import keras

    import keras_senet
    from keras_senet import export

    name = None
    if os.path.exists(args.model):
        model = keras.saving.load_model(args.model)
    elif args.model in keras_senet.MODELS:
        name = args.model
        weights = None if args.weights == "none" else args.weights
        size = args.input_size
        model = keras_senet.MODELS[name](weights=weights, input_shape=(size, size, 3))
    else:
        raise SystemExit(
            f"keras-senet export: {args.model!r} is neither a file nor a model name ({', '.join(keras_senet.MODELS)})"
        )
    quantize = None if args.quantize == "none" else args.quantize
    if args.format != "tflite" and quantize:
        raise SystemExit("keras-senet export: --quantize applies to --format tflite only")
    if args.format == "saved_model":
        preprocess = _family(name).preprocess_input if (args.raw_input and name) else None
        if args.raw_input and not name:
            raise SystemExit("keras-senet export: --raw-input needs a model name (its preprocessing is known)")
        report = export.to_saved_model(model, args.output, preprocess=preprocess)
    elif args.format == "onnx":
        report = export.to_onnx(model, args.output, opset=args.opset)
    else:
        data = _calibration(args.calibration, model, name) if args.calibration else None
        report = export.to_tflite(model, args.output, quantize=quantize, representative_data=data,
                                  int8_io=args.int8_io)
    print(report)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-senet",
        description="Squeeze-and-Excitation networks for Keras 3.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser(
        "info",
        help="print parameters and multiply-accumulates of models",
        description="Print learned parameters (as PyTorch and the paper count them) and "
        "multiply-accumulates (conv and dense layers) of models built with random weights.",
    )
    info.add_argument("models", nargs="*", help="constructor names, e.g. SEResNet50 SENet154")
    info.add_argument("--all", action="store_true", help="every model in the package")
    info.add_argument("--input-size", type=int, default=224, help="square input side in pixels (default 224)")
    info.add_argument(
        "--variant", choices=("caffe", "torch", "both"), default="both",
        help="caffe: the authors' released models; torch: torchvision-style; both (default)",
    )
    info.add_argument("--run", action="store_true",
                      help="also run the compiled model on a random image (median of 3 batch-1 passes)")
    info.set_defaults(func=cmd_info)

    presets = sub.add_parser(
        "presets",
        help="list the ImageNet weight presets",
        description="List every preset: constructor, variant, reference accuracy, evaluation "
        "size/crop fraction and source format.",
    )
    presets.set_defaults(func=cmd_presets)

    exp = sub.add_parser(
        "export",
        help="export a model to SavedModel, TFLite or ONNX, verified",
        description="Export a .keras file or a named model (with preset weights) and check the "
        "exported file against Keras in its own runtime; prints size, difference, top-1 "
        "agreement and, for TFLite, the LiteRT batch-1 latency.",
    )
    exp.add_argument("model", help="a .keras file, or a constructor name such as SEResNet50")
    exp.add_argument("--format", required=True, choices=("saved_model", "tflite", "onnx"), help="output format")
    exp.add_argument("--output", required=True, help="output path (a directory for saved_model)")
    exp.add_argument("--weights", default="imagenet",
                     help="for a model name: 'imagenet' (default), a preset name, a weights file, or 'none'")
    exp.add_argument("--input-size", type=int, default=224, help="for a model name: square input side (default 224)")
    exp.add_argument("--quantize", choices=("none", "float16", "dynamic", "int8"), default="none",
                     help="TFLite quantization (int8 needs --calibration)")
    exp.add_argument("--calibration",
                     help="int8 calibration data: a folder of images (model names only) or a .npy of preprocessed inputs")
    exp.add_argument("--int8-io", action="store_true", help="with int8: int8 input and output tensors")
    exp.add_argument("--raw-input", action="store_true",
                     help="saved_model: include the model's preprocessing; the signature takes uint8 RGB")
    exp.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    exp.set_defaults(func=cmd_export)

    convert = sub.add_parser(
        "convert",
        help="convert a timm checkpoint to a Keras model",
        description="Convert a timm state dict (legacy or new key names) into a Keras model file.",
    )
    convert.add_argument("--timm-model", required=True, help="timm model name, e.g. legacy_seresnet50")
    convert.add_argument("--checkpoint", required=True, help="state dict file: .safetensors, or .pth/.bin (needs torch)")
    convert.add_argument("--output", required=True,
                         help="output file: .keras (whole model, any input size, logits) or .weights.h5")
    convert.add_argument("--validate", action="store_true",
                         help="run timm on the same random input and print the logit difference (needs torch, timm)")
    convert.add_argument("--input-size", type=int, default=224, help="input side for --validate (default 224)")
    convert.set_defaults(func=cmd_convert)
    return parser


def main(argv=None):
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as e:
        print(f"keras-senet {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
