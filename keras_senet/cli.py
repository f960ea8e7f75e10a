"""The `keras-senet` command.

    keras-senet info SEResNet50                 parameters and MACs
    keras-senet info --all --run                every model, with a timed forward pass
    keras-senet presets                         ImageNet weight presets
    keras-senet convert --timm-model NAME --checkpoint FILE --output OUT.keras
    keras-senet predict cat.jpg --model SEResNet50      top-5 ImageNet classes
    keras-senet export SEResNet50 --format tflite --quantize float16 --output m.tflite
    keras-senet train --model SEResNet50 --weights imagenet --dataset imagenette --epochs 5 --output run
    keras-senet bench SEResNeXt50 --batch 8        latency on each execution path installed
"""

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import re
import tempfile
import sys
import time


def _quiet_tensorflow():
    """Hides TensorFlow's, CUDA's and absl's log lines for the rest of the command.

    TF_CPP_MIN_LOG_LEVEL=3 (unless set already) silences the C++ lines TensorFlow
    logs once its logging is set up (cpu_feature_guard, `failed call to cuInit`,
    `Local rendezvous is aborting`); failures still reach the command as
    exceptions. Since TF 2.19, loading TensorFlow also writes a few lines straight
    to file descriptor 2 whatever that level (oneDNN, cudart_stub, "All log
    messages before absl::InitializeLog()": tensorflow/tensorflow#100442), so
    TensorFlow is imported here with that descriptor sent to a temporary file, and
    whatever is not such a log line is passed on. The Python loggers of
    TensorFlow and absl get level ERROR, and torch's warning that CUDA cannot
    start (KERAS_BACKEND=torch on a machine without a GPU driver) is ignored.

    Returns:
        A function that puts the Python loggers and warning filters back.
    """
    import importlib.util
    import logging
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
        with _native_logs_hidden():
            import tensorflow  # noqa: F401
    loggers = {logging.getLogger(name): logging.getLogger(name).level for name in ("tensorflow", "absl")}
    filters = warnings.filters[:]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", "CUDA initialization", UserWarning, r"torch\.cuda")

    def restore():
        for logger, level in loggers.items():
            logger.setLevel(level)
        warnings.filters[:] = filters

    return restore


# Lines that TensorFlow, its TFLite converter and LiteRT write straight to file
# descriptor 2, past Python's logging and TF_CPP_MIN_LOG_LEVEL.
_NATIVE_LOG_LINE = re.compile(
    rb"[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "  # absl
    rb"|\d{4}-\d\d-\d\d [\d:.]+: [IWEF] \S+:\d+\] "  # older TensorFlow
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|fully_quantize: \d+, inference_type: "  # the TFLite quantizer
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate"  # LiteRT
)


@contextlib.contextmanager
def _native_logs_hidden(quiet=True):
    """Within the block, send file descriptor 2 to a temporary file, then pass
    on what is not a native log line (`_NATIVE_LOG_LINE`). No-op unless `quiet`."""
    if not quiet:
        yield
        return
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.write(b"".join(line for line in captured
                                      if not _NATIVE_LOG_LINE.match(line)).decode(errors="replace"))


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
    header = f"{'model':<22} {'variant':<8} {'input':>7} {'params':>13} {'GMACs':>8}"
    if args.run:
        header += f" {'forward ms':>11}  output"
    print(f"random weights (nothing is classified); input: square side in pixels"
          f"{'' if args.input_size else ', each model at its default'}")
    print(header)
    for name in names:
        constructor = keras_senet.MODELS[name]
        requested = ("caffe", "torch") if args.variant == "both" else (args.variant,)
        if "variant" not in inspect.signature(constructor).parameters:
            variants = (None,)  # SE-MobileNetV3 has one form
        else:  # the variants the constructor's row has (the ResNet-D rows: torch only)
            variants = [v for v in requested if v in constructor.variants]
        if not variants:
            print(f"{name:<22} {args.variant:<8} (none: {name} has variant {' and '.join(constructor.variants)} only)")
        for variant in variants:
            options = {} if variant is None else {"variant": variant}
            shape = (args.input_size, args.input_size, 3) if args.input_size else None
            model = constructor(weights=None, input_shape=shape, **options)
            size = model.input_shape[1]
            info = keras_senet.model_info(model)
            line = f"{name:<22} {variant or '-':<8} {size:>7} {info.params:>13,} {info.macs / 1e9:>8.3f}"
            if args.run:
                x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
                x = model.input_transform.normalize(x)
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

    from keras_senet.models.from_timm import convert_timm_checkpoint, timm_transform

    model = convert_timm_checkpoint(
        args.timm_model, args.checkpoint, output=args.output,
        input_shape=(None, None, 3), classifier_activation=None,
    )
    print(f"converted {args.checkpoint} -> {args.output} ({model.name}, {model.count_params():,} weights)")
    t = model.input_transform
    print(f"input transform from {timm_transform(args.timm_model)[1]}: mode {t.mode}, mean {t.mean}, std {t.std}, "
          f"eval size {t.size} / crop {t.crop_pct} {t.interpolation}")
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

    import math

    defaults = set(DEFAULT_PRESETS.values())
    rows = []
    for name, p in PRESETS.items():
        t = p["transform"]
        sources = ", ".join(dict.fromkeys(u.rsplit(".", 1)[-1] for u in p["urls"]))  # safetensors, pth
        # heads of other label sets have no ImageNet-1k accuracy
        top1, top5 = ("-" if math.isnan(v) else f"{v:.2f}" for v in (p["top1"], p["top5"]))
        rows.append((f"`{name}`" if args.markdown else name, "*" if name in defaults else "", p["constructor"],
                     p["variant"] or "", f"{p.get('classes', 1000):,}", top1, top5,
                     f"{t.size} / {t.crop_pct} {t.interpolation}", sources))
    header = ("preset", "", "constructor", "variant", "classes", "top-1", "top-5", "eval size / crop", "source")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|---|---|---|---:|---:|---:|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(c.rjust(w) if i in (4, 5, 6) else c.ljust(w)
                            for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    print("* default for weights='imagenet'. top-1/top-5: timm's ImageNet-1k validation results at the "
          "eval size (- for ImageNet-12k / 21K-P heads); pth sources need torch (pip install 'keras-senet[convert]')")


def _build(name, weights, size):
    """A constructor's model for `name` with `weights` ("none" for random) at
    `size` (None: any size)."""
    import keras_senet

    if name not in keras_senet.MODELS:
        if os.sep in name or name.endswith((".keras", ".tflite", ".onnx")):
            raise ValueError(f"Model file not found: {name}")
        raise ValueError(f"{name!r} is neither a model file nor a model name ({', '.join(keras_senet.MODELS)})")
    return keras_senet.MODELS[name](weights=None if weights == "none" else weights, input_shape=(size, size, 3))


def _transform(transform, preprocess, source):
    """The input transform to use: the model's, or --preprocess's mode."""
    from keras_senet.inputs import InputTransform

    if preprocess:
        return (transform or InputTransform(size=224)).replace(mode=preprocess)
    if transform is None:
        raise ValueError(
            f"{source} carries no input transform (it was not written by keras-senet train, "
            "keras_senet.inputs.save_model or keras-senet export): give --preprocess torch (ImageNet "
            "mean/std), tf ([-1, 1]) or raw ([0, 255], the model normalizes inside)"
        )
    return transform


def _model_inputs(path, transform, size, limit=None, what="--calibration"):
    """Model inputs from a folder of images (through `transform`) or a .npy
    of already transformed inputs."""
    import numpy as np

    from keras_senet import inputs

    if str(path).endswith(".npy"):
        if not os.path.isfile(path):
            raise ValueError(f"{what}: file not found: {path}")
        return np.load(path)[:limit].astype("float32")
    files = inputs.image_files(path)[:limit]
    return inputs.load_images(files, transform, size)


def cmd_export(args):
    from keras_senet import export, inputs

    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise ValueError(f"--output: folder {folder} does not exist")

    if os.path.exists(args.model):
        if export.model_format(args.model) != "keras":
            raise ValueError(f"{args.model}: export takes a .keras file or a model name")
        model = inputs.load_model(args.model)
    else:
        model = _build(args.model, args.weights, args.input_size)
    quantize = None if args.quantize == "none" else args.quantize
    if args.format != "tflite" and quantize:
        raise ValueError("--quantize applies to --format tflite only")
    if quantize == "int8" and not args.calibration:
        raise ValueError("--quantize int8 needs --calibration (a folder of images or a .npy of model inputs)")
    size = model.input_shape[1]
    needs_images = args.raw_input or (args.calibration and not args.calibration.endswith(".npy")) or (
        args.check_data and not args.check_data.endswith(".npy"))
    transform = _transform(inputs.input_transform(model), args.preprocess, args.model) if needs_images else None
    if transform is not None:
        inputs.attach(model, transform)
    check = _model_inputs(args.check_data, transform, size, 500, "--check-data") if args.check_data else None
    if args.format == "saved_model":
        if args.raw_input:
            if check is not None and not args.check_data.endswith(".npy"):  # the signature takes [0, 255]
                check = _model_inputs(args.check_data, transform.replace(mode="raw"), size, 500)
            report = export.to_saved_model(model, args.output, preprocess=transform.normalize, sample=check)
        else:
            report = export.to_saved_model(model, args.output, sample=check)
    elif args.format == "onnx":
        report = export.to_onnx(model, args.output, opset=args.opset, sample=check)
    else:
        data = _model_inputs(args.calibration, transform, size, 250) if args.calibration else None
        if data is not None and check is None and quantize == "int8":
            if len(data) < 5:
                raise ValueError(f"--calibration: {len(data)} images; give at least 5 (20% are held out to check)")
            held_out = max(1, len(data) // 5)  # check on images the calibration has not seen
            data, check = data[:-held_out], data[-held_out:]
        with _native_logs_hidden(not args.verbose):
            report = export.to_tflite(model, args.output, quantize=quantize,
                                      representative_data=None if data is None else [data],
                                      int8_io=args.int8_io, sample=check)
        if check is not None and args.check_data is None:
            report = dataclasses.replace(report, checked_on=f"{len(check)} held-out calibration inputs")
    if args.check_data:
        report = dataclasses.replace(report, checked_on=f"{len(check)} inputs from --check-data {args.check_data}")
    print(report)
    if check is None:
        print("checked on random noise only: pass --check-data (a folder of images) to check on real inputs")
    elif report.top1_agreement < args.min_agreement:
        print(f"keras-senet export: top-1 agreement {report.top1_agreement:.1%} with Keras is below "
              f"--min-agreement {args.min_agreement:.0%}; {args.output} was written but is not faithful "
              "(int8: calibrate on more, representative images)", file=sys.stderr)
        return 1


def _bench_paths(value):
    """--paths: comma-separated names from keras_senet.bench.PATHS."""
    from keras_senet.bench import PATHS

    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in PATHS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown path {unknown[0]!r} in {value!r}; choose from {','.join(PATHS)}"
                                         if unknown else f"no path in {value!r}; choose from {','.join(PATHS)}")
    return names


def cmd_bench(args):
    from keras_senet import bench

    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        raise ValueError(f"--json: folder {os.path.dirname(os.path.abspath(args.json))} does not exist")
    try:
        report = bench.bench(args.model, batch=args.batch, paths=args.paths, image_size=args.input_size,
                             weights=None if args.weights == "none" else args.weights, warmup=args.warmup,
                             repeats=args.repeats, threads=args.threads, progress=True,
                             quiet=lambda: _native_logs_hidden(not args.verbose))
    except (ValueError, ImportError) as error:  # bench names its keyword arguments: name the flags instead
        message = str(error)
        for keyword, flag in (("model", "MODEL|FILE"), ("paths", "--paths"), ("image_size", "--input-size"),
                              ("weights", "--weights"), ("batch", "--batch"), ("warmup", "--warmup"),
                              ("repeats", "--repeats"), ("threads", "--threads")):
            message = message.replace(f"`{keyword}`", flag).replace(f"Received: {keyword}=", f"Received: {flag} ")
        raise type(error)(message) from error  # an ImportError without `name`: bench's message has the hint
    print(report.table())
    if args.json:
        with open(args.json, "w") as f:
            f.write(report.to_json())
    if any(row.status == "wrong" or row.status.startswith("failed") for row in report.rows):
        return 1


def cmd_predict(args):
    import numpy as np

    from keras_senet import export, inputs

    files = inputs.image_files(args.images)
    with contextlib.redirect_stdout(sys.stderr):  # download progress: stdout holds only the results
        if os.path.exists(args.model):
            with _native_logs_hidden(not args.verbose):
                predictor = export.load_predictor(args.model)
        else:
            model = _build(args.model, args.weights, args.input_size)
            predictor = export.Predictor(args.model, "keras", lambda x: np.asarray(model.predict(x, verbose=0)),
                                         None, inputs.input_transform(model), inputs.class_names(model))
    transform = _transform(predictor.input_transform, args.preprocess, args.model)
    if predictor.input_shape and args.input_size not in (None, predictor.input_shape[0]):
        raise ValueError(f"--input-size {args.input_size}: {args.model} takes "
                         f"{predictor.input_shape[0]}x{predictor.input_shape[1]} inputs only")
    size = args.input_size or (predictor.input_shape[0] if predictor.input_shape else transform.size)
    if predictor.input_shape:
        transform = transform.replace(channels=predictor.input_shape[-1])
    with _native_logs_hidden(not args.verbose):
        scores = np.concatenate([predictor.predict(inputs.load_images(files[i:i + args.batch_size], transform, size))
                                 for i in range(0, len(files), args.batch_size)])
    if np.all((scores >= 0) & (scores <= 1)) and np.allclose(scores.sum(-1), 1, atol=0.05):
        scores = scores / scores.sum(-1, keepdims=True)  # probabilities (int8 ones sum to 1 +- a few steps)
    else:  # logits
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
    names = predictor.class_names
    if names is None and scores.shape[-1] != 1000:
        names = [f"class {i}" for i in range(scores.shape[-1])]
    results = inputs.top_k(scores, names, args.top)
    if args.json:
        print(json.dumps([
            {"image": f, "top": [{"index": i, "id": c, "name": n, "probability": p} for i, c, n, p in row]}
            for f, row in zip(files, results)
        ], indent=1))
        return
    for f, row in zip(files, results):
        print(f)
        for rank, (i, c, n, p) in enumerate(row, 1):
            print(f"  {rank}. {n:<30} {p:7.2%}" + (f"  ({c})" if c != n else ""))


def _positive(value):
    """A positive integer argument."""
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")


def _non_negative(value):
    """A non-negative integer argument (a count that may be 0)."""
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {value!r}")


def _backup_freq(value):
    """--backup-freq: "epoch" or a positive number of batches."""
    if value == "epoch" or (value.isdigit() and int(value) > 0):
        return value if value == "epoch" else int(value)
    raise argparse.ArgumentTypeError(f"must be 'epoch' or a positive number of batches, not {value!r}")


def _saved_input_shape(weights):
    """(height, width, channels) of the model in a `.keras` file, else None
    (a .weights.h5 file takes the dataset's channels)."""
    if not (weights and weights.endswith(".keras") and os.path.isfile(weights)):
        return None
    import zipfile

    try:  # the InputLayer's shape in the archive's config, without building the model
        with zipfile.ZipFile(weights) as archive:
            config = json.loads(archive.read("config.json"))
        layers = config["config"]["layers"]
        return tuple(next(l["config"]["batch_shape"][1:] for l in layers if l["class_name"] == "InputLayer"))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, StopIteration):
        return None  # build_classifier names what is wrong with the file


def cmd_train(args):
    undo = []  # what _train changed globally (the dtype policy), put back for in-process callers
    try:
        return _train(args, undo)
    finally:
        for restore in undo:
            restore()


def _train(args, undo):
    from keras_senet.training import strategy as strategies

    if args.cpu_replicas > 1:
        strategies.split_cpu(args.cpu_replicas)  # before TensorFlow starts its devices
    import keras
    import numpy as np

    from keras_senet import MODELS, inputs, training

    if args.model not in (*MODELS, "SEResNetCIFAR"):
        raise ValueError(f"`--model` must be one of {', '.join(MODELS)} or SEResNetCIFAR. Received: {args.model!r}")
    # First: multi-worker collectives must be set up before TensorFlow runs anything.
    strategy = strategies.get_strategy(args.strategy)
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    finished = os.path.join(args.output, "model.keras")
    if os.path.exists(finished) and not os.path.isdir(os.path.join(args.output, "backup")):
        raise ValueError(
            f"`--output` {args.output} already holds a finished run ({finished}): pass another folder, or "
            "delete it to train again (a killed run, which has OUTPUT/backup, resumes with the same command)."
        )
    weights = None if args.weights in (None, "none") else args.weights
    source, info = training.load_source(args.dataset, args.train_split, args.data_dir)
    val_source, val_info = training.load_source(args.dataset, args.val_split, args.data_dir)
    saved_shape = _saved_input_shape(weights)
    if saved_shape:  # fine-tuning one's own model: its input size and channels
        size, channels = args.image_size or saved_shape[0], saved_shape[-1]
    else:  # presets and reference checkpoints take RGB; Keras weights files the dataset's channels
        rgb = weights and not weights.endswith((".weights.h5", ".h5", ".hdf5"))
        channels = 3 if rgb or info.channels == 3 else info.channels
        size = args.image_size or (32 if args.model == "SEResNetCIFAR" else 224)
    if args.per_replica_batch:
        args.batch_size = args.per_replica_batch * strategy.num_replicas_in_sync
    recipe = training.get_recipe(
        args.recipe or ("finetune" if weights else "cosine"),
        epochs=args.epochs, warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
        frozen_epochs=args.frozen_epochs if weights else 0, weight_decay=args.weight_decay,
        **({"base_lr": args.lr, "base_batch": args.batch_size} if args.lr else {}),
    )
    if args.mixed_precision:
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(training.recipes.mixed_precision_policy())
        undo.append(lambda: keras.mixed_precision.set_global_policy(previous))
    used = min(info.num_examples, args.limit or info.num_examples)
    steps = training.steps_per_epoch(used, args.batch_size)
    if steps < 1:
        raise ValueError(f"`--batch-size` {args.batch_size} is larger than the {used} training examples")
    options = {"depth": args.depth} if args.model == "SEResNetCIFAR" else {}
    if args.no_se:
        options["se_layer"] = None
    with strategy.scope():
        model = training.build_classifier(
            args.model, classes=info.num_classes, weights=weights, input_shape=(size, size, channels),
            dropout_rate=0.2 if weights else 0.0, **options,
        )
    if saved_shape:
        print(f"fine-tuning the model in {weights} ({model.name}; --model and --depth do not apply)")
    inputs.attach(model, class_names=info.class_names)
    # the model's own input transform: a preset's evaluation crop and interpolation
    common = dict(image_size=size, batch_size=args.batch_size, transform=inputs.input_transform(model),
                  seed=args.seed, deterministic=args.deterministic)
    train_data = training.make_dataset(source, training=True, limit=args.limit, repeat=True, **common)
    val_data = training.make_dataset(val_source, training=False, limit=args.val_limit, **common)
    learned = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    print(f"{model.name}: {learned:,} learned parameters; {used} training images "
          f"({info.num_classes} classes) from {info.name}; {strategy.num_replicas_in_sync} replica(s) "
          f"({strategies.strategy_name(strategy)}); recipe {recipe.name}, peak lr "
          f"{training.recipes.learning_rate(recipe, args.batch_size):g}, global batch {args.batch_size}"
          + (f"; BatchNorm {'synchronized' if args.sync_bn else 'per replica'}"
             if strategy.num_replicas_in_sync > 1 else ""))
    if recipe.frozen_epochs and recipe.frozen_epochs < recipe.epochs:
        print(f"epochs 1-{recipe.frozen_epochs} of {recipe.epochs} train the new head on the frozen backbone, "
              "the rest train every layer")
    backup = os.path.join(args.output, "backup", "training_metadata.json")
    if os.path.exists(backup):
        with open(backup) as f:
            print(f"resuming from {os.path.dirname(backup)} (epoch {json.load(f).get('epoch', 0) + 1})")
    training.train(
        model, train_data, recipe=recipe, steps_per_epoch=steps, global_batch=args.batch_size,
        output_dir=args.output, val_data=val_data, strategy=strategy,
        backup_freq=args.backup_freq, sync_batchnorm=args.sync_bn,
        verbose={"none": 0, "bar": 1, "epoch": 2}[args.progress or ("bar" if sys.stdout.isatty() else "epoch")],
    )
    loss, accuracy = model.evaluate(val_data, verbose=0)
    count = min(args.val_limit or val_info.num_examples, val_info.num_examples)
    print(f"{val_info.split} accuracy {accuracy:.4f} (loss {loss:.4f}) on {count} images")
    if training.is_chief():
        path = os.path.join(args.output, "model.keras")
        inputs.save_model(model, path)  # with its input transform and class names
        print(f"saved {path}")
        if args.export_tflite:
            from keras_senet import export

            sample, _ = training.pipeline.take_arrays(val_data, 8)
            print(export.to_tflite(model, os.path.join(args.output, "model.tflite"), sample=sample))


def build_parser():
    from keras_senet.training.strategy import STRATEGIES

    parser = argparse.ArgumentParser(
        prog="keras-senet",
        description="Squeeze-and-Excitation networks for Keras 3.",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's, CUDA's and absl's log lines and the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser(
        "info",
        help="print parameters and multiply-accumulates of models",
        description="Print learned parameters (as PyTorch and the paper count them) and "
        "multiply-accumulates (conv and dense layers) of models built with random weights.",
    )
    info.add_argument("models", nargs="*", help="constructor names, e.g. SEResNet50 SENet154")
    info.add_argument("--all", action="store_true", help="every model in the package")
    info.add_argument("--input-size", type=int,
                      help="square input side in pixels (default: each model's, 224 or 299 for Inception)")
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
    presets.add_argument("--markdown", action="store_true", help="print a Markdown table (the README's)")
    presets.set_defaults(func=cmd_presets, framework=False)  # plain data: no TensorFlow to load or quiet

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
                     help="TFLite quantization (default none: float32; int8 needs --calibration)")
    exp.add_argument("--calibration",
                     help="int8 calibration data: a folder of images (read through the model's input transform; "
                     "the last 20%% are held out to check the file unless --check-data is given) or a .npy of "
                     "model inputs; up to 250 are used")
    exp.add_argument("--check-data",
                     help="real inputs to check the exported file on: a folder of images or a .npy of model "
                     "inputs (default: the held-out calibration images, else 4 random-noise inputs)")
    exp.add_argument("--min-agreement", type=float, default=0.9,
                     help="exit with status 1 when the top-1 agreement with Keras on real inputs is below this "
                     "fraction (default 0.9; 0 to never fail)")
    exp.add_argument("--preprocess", choices=("torch", "tf", "raw"),
                     help="input scaling for images, when the model file carries none: torch (ImageNet "
                     "mean/std), tf ([-1, 1]), raw ([0, 255]; the model normalizes inside)")
    exp.add_argument("--int8-io", action="store_true", help="with int8: int8 input and output tensors")
    exp.add_argument("--raw-input", action="store_true",
                     help="saved_model: include the model's input transform; the signature takes uint8 RGB")
    exp.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    exp.set_defaults(func=cmd_export)

    pr = sub.add_parser(
        "predict",
        help="classify images with a model name, .keras, .tflite, .onnx or SavedModel",
        description="Print the top classes of each image: ImageNet names (offline) for 1000-class models, "
        "or the class names that `keras-senet train` stored with the model. Images are resized, cropped "
        "and normalized by the input transform the model carries (a preset's evaluation transform).",
    )
    pr.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF) or folders of them")
    pr.add_argument("--model", required=True,
                    help="a constructor name (e.g. SEResNet50), or a .keras, .tflite or .onnx file or a "
                    "SavedModel folder")
    pr.add_argument("--weights", default="imagenet",
                    help="for a model name: 'imagenet' (default), a preset name, a weights file, or 'none'")
    pr.add_argument("--top", type=_positive, default=5, help="classes per image (default 5)")
    pr.add_argument("--json", action="store_true", help="print JSON instead of text")
    pr.add_argument("--input-size", type=int,
                    help="square input side (default: the model's, else its preset's evaluation size)")
    pr.add_argument("--batch-size", type=int, default=16, help="images per batch (default 16)")
    pr.add_argument("--preprocess", choices=("torch", "tf", "raw"),
                    help="input scaling, for a model file that carries no input transform")
    pr.set_defaults(func=cmd_predict)

    tr = sub.add_parser(
        "train",
        help="train or fine-tune a model with model.fit (any tf.distribute strategy)",
        description="Train a model on a tfds dataset, an image folder or Fashion-MNIST idx files. "
        "A run killed and restarted with the same command resumes from its last backup "
        "(OUTPUT/backup). OUTPUT gets model.keras, best.keras, history.csv and TensorBoard logs.",
    )
    tr.add_argument("--model", required=True,
                    help="constructor name (e.g. SEResNet50, SEMobileNetV3Large) or SEResNetCIFAR")
    tr.add_argument("--weights", default="none",
                    help="'none' (default: from scratch), 'imagenet', a preset name or a weights file. A preset or "
                    "reference checkpoint gets a new head for the dataset's classes; a .keras file (e.g. an earlier "
                    "run's model.keras) is trained further with its own input size and channels, and its own head "
                    "when the classes match; a .weights.h5 file must fit the model these flags build, head included")
    tr.add_argument("--dataset", required=True,
                    help="tfds name (imagenette, cifar10, tf_flowers...), an image folder "
                    "(<class>/*.jpg or train/ and validation/), or a folder of Fashion-MNIST idx files; "
                    "'fashion_mnist' uses Debian's dataset-fashion-mnist when installed")
    tr.add_argument("--data-dir", help="tfds data directory")
    tr.add_argument("--train-split", default="train",
                    help="training split (default train; tfds slices work, e.g. 'train[:85%%]')")
    tr.add_argument("--val-split", default="validation",
                    help="evaluation split (default validation; tfds falls back to test if absent; for a "
                    "train-only tfds dataset a slice such as 'train[85%%:]', with --train-split 'train[:85%%]')")
    tr.add_argument("--epochs", type=int, help="epochs (default: the recipe's)")
    tr.add_argument("--batch-size", type=int, default=64,
                    help="global batch over all replicas (default 64); the lr scales with it")
    tr.add_argument("--per-replica-batch", type=int,
                    help="batch per replica instead of --batch-size: the global batch grows with the replicas")
    tr.add_argument("--input-size", "--image-size", dest="image_size", metavar="INPUT_SIZE", type=int,
                    help="square input side (default 224; 32 for SEResNetCIFAR); --image-size is an alias")
    tr.add_argument("--recipe", choices=("paper", "cosine", "cifar", "finetune"),
                    help="training recipe (default finetune with --weights, else cosine); see keras_senet.training.recipes")
    tr.add_argument("--lr", type=float, help="peak learning rate for this batch size (overrides the recipe's scaling)")
    tr.add_argument("--warmup-epochs", type=float, help="linear warm-up epochs (default: the recipe's)")
    tr.add_argument("--label-smoothing", type=float, help="label smoothing (default: the recipe's)")
    tr.add_argument("--weight-decay", type=float, help="weight decay (default: the recipe's)")
    tr.add_argument("--frozen-epochs", type=int,
                    help="with --weights: the first N of --epochs train the new head only, on the frozen backbone "
                    "(default 1)")
    tr.add_argument("--depth", type=int, default=20, help="SEResNetCIFAR depth, 6n+2 (default 20)")
    tr.add_argument("--no-se", action="store_true", help="the same network without SE blocks (a baseline)")
    tr.add_argument("--limit", type=int, help="use the first N training images")
    tr.add_argument("--val-limit", type=int, help="use the first N evaluation images")
    tr.add_argument("--strategy", choices=STRATEGIES, default="auto",
                    help="tf.distribute strategy; auto: TPU, TF_CONFIG cluster, several GPUs, else default")
    tr.add_argument("--cpu-replicas", type=int, default=1,
                    help="split the CPU into N logical devices (MirroredStrategy on a CPU-only machine)")
    tr.add_argument("--mixed-precision", action="store_true",
                    help="mixed_float16 on GPUs with tensor cores, mixed_bfloat16 on TPUs (nothing on CPUs)")
    tr.add_argument("--sync-bn", action="store_true",
                    help="BatchNorm over the global batch under several replicas (Keras' synchronized "
                    "BatchNormalization; TensorFlow): equal to one device, worth it for per-replica batches under "
                    "~16; default: per-replica statistics, moving averages averaged over replicas")
    tr.add_argument("--seed", type=int, help="seed for weights, shuffling and augmentation")
    tr.add_argument("--deterministic", action="store_true", help="fixed element order in the input pipeline")
    tr.add_argument("--backup-freq", default="epoch", type=_backup_freq, help="back up every epoch (default) or every N batches")
    tr.add_argument("--export-tflite", action="store_true", help="also export OUTPUT/model.tflite, verified")
    tr.add_argument("--progress", choices=("bar", "epoch", "none"),
                    help="training progress: a bar, a line per epoch, or nothing (default: a bar on a "
                    "terminal, else a line per epoch)")
    # The former spelling (Keras' verbose 0/1/2), hidden: `keras-senet --verbose` is TensorFlow's logs.
    tr.add_argument("--verbose", dest="progress", choices=("none", "bar", "epoch"), help=argparse.SUPPRESS,
                    type=lambda value: {"0": "none", "1": "bar", "2": "epoch"}.get(value, value))
    tr.add_argument("--output", required=True, help="run folder")
    tr.set_defaults(func=cmd_train)

    convert = sub.add_parser(
        "convert",
        help="convert a timm checkpoint to a Keras model",
        description="Convert a timm state dict (legacy or new key names) into a Keras model file.",
    )
    convert.add_argument("--timm-model", required=True,
                         help="timm model name, with the checkpoint's pretrained tag where it has one (it picks the "
                         "input transform), e.g. legacy_seresnet50 or mobilenetv3_large_100.miil_in21k")
    convert.add_argument("--checkpoint", required=True, help="state dict file: .safetensors, or .pth/.bin (needs torch)")
    convert.add_argument("--output", required=True,
                         help="output file: .keras (whole model, any input size, logits) or .weights.h5")
    convert.add_argument("--validate", action="store_true",
                         help="run timm on the same random input and print the logit difference (needs torch, timm)")
    convert.add_argument("--input-size", type=int, default=224, help="input side for --validate (default 224)")
    convert.set_defaults(func=cmd_convert)

    from keras_senet.bench import PATHS, TOLERANCE

    bn = sub.add_parser(
        "bench",
        help="time a model on every execution path installed (TF graph, XLA, LiteRT, ONNX Runtime, JAX, PyTorch)",
        description="Latency and throughput of one model on each execution path, on this machine: rounds "
        "alternate across the paths (so drift hits all), each path reports its median, min-max, images/s "
        "(batch / median) and first call (tracing, compilation). Before timing, each path's output is compared "
        f"with the Keras model's on the same input; a path off by more than {TOLERANCE:g} of the largest "
        "|output| is marked wrong. When two or more paths ran, the fastest whose output matches is recommended. "
        "TensorFlow, onnxruntime, LiteRT and PyTorch get the same threads; JAX is pinned to that many cores. "
        "Exit status 1 when a path failed or was wrong, 2 for a bad argument or when no path can run (its "
        "package is missing).",
    )
    bn.add_argument("model", metavar="MODEL|FILE",
                    help="a constructor name (e.g. SEResNet50; random weights unless --weights), a .keras file "
                    "(every path), a .tflite file (litert only), an .onnx file (onnx only) or a SavedModel folder "
                    "(graph only). A .weights.h5 file has no architecture: give the name and --weights FILE")
    bn.add_argument("--batch", type=_positive, default=1, help="images per call (default 1)")
    bn.add_argument("--paths", type=_bench_paths,
                    help=f"comma-separated, from {','.join(PATHS)} (default: every path the model allows; those "
                    "whose package is missing are listed as not installed). litert: float32 .tflite in LiteRT with "
                    "XNNPACK; onnx: onnxruntime; jax, torch: Keras' JAX / PyTorch backend in a worker process")
    bn.add_argument("--input-size", "--image-size", dest="input_size", type=_positive,
                    help="square input side (default: the model's own; needed for a model that takes any size); "
                    "--image-size is an alias")
    bn.add_argument("--weights", default="none",
                    help="for a constructor name: 'none' (default: random weights, the same speed), 'imagenet', "
                    "a preset name or a .weights.h5 file")
    bn.add_argument("--warmup", type=_non_negative, default=3, help="untimed rounds first (default 3; 0 for none)")
    bn.add_argument("--repeats", type=_positive, default=10,
                    help="timed rounds (default 10); each path's median is over them")
    bn.add_argument("--threads", type=_positive,
                    help="threads for every runtime (default: all cores)")
    bn.add_argument("--json", help="also write the report to this JSON file (every round's time, in ms)")
    bn.set_defaults(func=cmd_bench)
    return parser


def _install_hint(module):
    """How to install a missing module, from keras-senet's own requirements.

    Args:
        module: the import name, e.g. "tf2onnx" or "ai_edge_litert".

    Returns:
        "pip install 'keras-senet[EXTRA]'" for an optional package, "pip install
        NAME" for a required one, or None for a module keras-senet does not list.
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    try:
        meta = metadata.metadata("keras-senet")
    except metadata.PackageNotFoundError:
        return None
    wanted = canonicalize_name(module)  # ai_edge_litert -> ai-edge-litert
    requirements = [r for r in map(Requirement, meta.get_all("Requires-Dist") or []) if canonicalize_name(r.name) == wanted]
    for extra in meta.get_all("Provides-Extra") or []:
        if extra != "test" and any(r.marker and r.marker.evaluate({"extra": extra}) for r in requirements):
            return f"pip install 'keras-senet[{extra}]'"
    return f"pip install {requirements[0].name}" if requirements else None


def main(argv=None):
    """Runs `keras-senet`.

    Args:
        argv: the arguments after the program name (default: sys.argv[1:]).

    Returns:
        The exit status: 0, 1 for a failed check (export's --min-agreement), or 2 after a ValueError (bad argument), OSError (a
        file) or ImportError (a missing package), each printed as one line
        `keras-senet COMMAND: message` (with `--verbose`, after the traceback).
    """
    args = build_parser().parse_args(argv)
    restore = None
    try:
        restore = None if args.verbose or not getattr(args, "framework", True) else _quiet_tensorflow()
        status = args.func(args)  # None, or 1 for a failed check
    except (ValueError, OSError, ImportError) as e:
        if isinstance(e, ImportError) and (e.name or "").startswith("keras_senet"):
            raise  # not a missing package: a fault of keras-senet's own
        if args.verbose:
            import traceback

            traceback.print_exc()
        lines = (str(e).strip() or type(e).__name__).splitlines()
        hint = _install_hint(e.name.partition(".")[0]) if isinstance(e, ImportError) and e.name else None
        if hint:
            lines[0] += f"; install it with: {hint}"
        shown = 12  # the whole message (what to do is often its last line), unless it is a dump
        if len(lines) > shown and not args.verbose:
            lines = lines[:shown] + [f"(and {len(lines) - shown} more lines: keras-senet --verbose "
                                     f"{args.command} ... shows them)"]
        print(f"keras-senet {args.command}: " + "\n  ".join(lines), file=sys.stderr)
        return 2
    finally:
        if restore:
            restore()
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
