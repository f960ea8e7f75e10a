"""Export to SavedModel, TFLite (fp32 / fp16 / dynamic-range / full int8) and
ONNX, each checked against Keras on the same inputs.

Every function writes through a temporary path (nothing half-written is left
behind), runs the exported file with its own runtime (TensorFlow, the LiteRT
interpreter from `ai-edge-litert`, onnxruntime) and returns an
`ExportReport`: file size, max and mean abs difference from Keras, top-1
agreement, and for TFLite the interpreter's batch-1 latency.
"""

import dataclasses
import os
import shutil
import tempfile
import time
import warnings

import keras
import numpy as np

QUANTIZE = (None, "float16", "dynamic", "int8")


@dataclasses.dataclass(frozen=True)
class ExportReport:
    format: str
    path: str
    size_bytes: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    latency_ms: float = None
    quantize: str = None
    delegate: str = None  # TFLite: "xnnpack", or "none" when XNNPACK refused the file
    outside_delegate: tuple = ()  # TFLite: ops LiteRT runs outside XNNPACK (slower kernels)

    def __str__(self):
        text = (
            f"{self.format}{'/' + self.quantize if self.quantize else ''} -> {self.path}: "
            f"{self.size_bytes / 1e6:.1f} MB, max abs diff {self.max_abs_diff:.2e}, "
            f"mean {self.mean_abs_diff:.2e}, top-1 agreement {self.top1_agreement:.1%}"
        )
        if self.latency_ms is not None:
            kernels = "" if self.delegate in (None, "xnnpack") else ", reference kernels: XNNPACK refused it"
            if self.delegate == "xnnpack" and self.outside_delegate:
                counts = {op: self.outside_delegate.count(op) for op in sorted(set(self.outside_delegate))}
                kernels = ", outside XNNPACK: " + ", ".join(f"{op}" + (f" x{n}" if n > 1 else "")
                                                            for op, n in counts.items())
            text += f", {self.latency_ms:.1f} ms/image (LiteRT, batch 1{kernels})"
        return text


def _input_shape(model):
    shape = tuple(model.input_shape[1:])
    if None in shape:
        raise ValueError(
            f"Model {model.name!r} has an undefined input size {shape}; rebuild it with a "
            "fixed `input_shape` (e.g. (224, 224, 3)) before exporting."
        )
    return shape


def _sample(model, sample):
    if sample is not None:
        return np.asarray(sample, "float32")
    rng = np.random.default_rng(0)
    return rng.normal(size=(4,) + _input_shape(model)).astype("float32")


def _report(fmt, path, reference, output, **extra):
    reference, output = np.asarray(reference, "float64"), np.asarray(output, "float64")
    diff = np.abs(reference - output)
    agreement = float(np.mean(reference.argmax(-1) == output.argmax(-1)))
    size = _size(path)
    return ExportReport(fmt, os.fspath(path), size, float(diff.max()), float(diff.mean()), agreement, **extra)


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


def _replace(tmp, path):
    """Move a finished export into place (replacing an older one)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
    os.replace(tmp, path)


def to_saved_model(model, path, *, preprocess=None, sample=None):
    """Export a SavedModel with a `serve` signature.

    Args:
        model: a Keras model with a fixed input size.
        path: output directory.
        preprocess: optional function applied inside the signature (e.g.
            `keras_senet.se_resnet.preprocess_input`); the signature then
            takes raw uint8 RGB images, as a serving client sends them.
        sample: inputs to check with (default: 4 random images).

    Returns:
        An `ExportReport`.
    """
    import tensorflow as tf

    shape = _input_shape(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    if preprocess is None:
        spec = tf.TensorSpec((None,) + shape, tf.float32, name="images")
        archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
        x = _sample(model, sample)
        feed, reference = x, model.predict(x, verbose=0)
    else:
        spec = tf.TensorSpec((None,) + shape, tf.uint8, name="images")
        archive.add_endpoint(
            "serve", lambda x: model(preprocess(tf.cast(x, tf.float32)), training=False), input_signature=[spec]
        )
        rng = np.random.default_rng(0)
        feed = rng.integers(0, 256, (4,) + shape).astype("uint8") if sample is None else np.asarray(sample, "uint8")
        reference = model.predict(np.asarray(preprocess(feed.astype("float32"))), verbose=0)
    tmp = f"{os.fspath(path)}.partial{os.getpid()}"
    try:
        archive.write_out(tmp, verbose=False)
        loaded = tf.saved_model.load(tmp)  # keep a reference: it owns the variables
        output = loaded.serve(tf.constant(feed)).numpy()
        _replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _report("saved_model", path, reference, output)


def _representative(data, shape, limit=200):
    """Yield single examples for the int8 calibration, from arrays or tf.data."""

    def gen():
        count = 0
        for batch in data:
            batch = batch[0] if isinstance(batch, (tuple, list)) else batch
            for example in np.asarray(batch, "float32").reshape((-1,) + shape):
                yield [example[None]]
                count += 1
                if count >= limit:
                    return

    return gen


def _hard_swish_int8(x):
    """hard-swish as (x / 6) * relu6(x + 3): the same function, in ops that
    the TFLite converter does not fuse into HARD_SWISH."""
    return (x * (1.0 / 6.0)) * keras.ops.relu6(x + 3.0)


def _without_hard_swish(model):
    """`model`, or a copy with the same weights whose hard-swish activations
    are written as `_hard_swish_int8`.

    For full int8 only: LiteRT's XNNPACK delegate runs HARD_SWISH in float
    only, so in an int8 file every hard-swish falls back to the reference
    kernels and splits the delegated graph (SE-MobileNetV3-Large: 21 splits,
    int8 twice as slow as fp32). Its MUL and ADD run inside XNNPACK. Only
    functional and Sequential models can be copied; others are returned as
    they are.
    """
    hard_swish = (keras.activations.hard_silu, keras.activations.hard_swish)

    def uses_hard_swish(layer):
        if isinstance(layer, keras.Model):
            return any(uses_hard_swish(inner) for inner in layer.layers)
        return getattr(layer, "activation", None) in hard_swish

    def clone(layer):
        if isinstance(layer, keras.Model) and uses_hard_swish(layer):
            return keras.models.clone_model(layer, clone_function=clone)
        config = layer.get_config()
        if getattr(layer, "activation", None) in hard_swish:
            config["activation"] = _hard_swish_int8
        return layer.__class__.from_config(config)

    if not uses_hard_swish(model):
        return model
    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except ValueError:  # a subclassed model: cannot be rebuilt layer by layer
        return model
    copy.set_weights(model.get_weights())
    return copy


def to_tflite(model, path, *, quantize=None, representative_data=None, int8_io=False, sample=None,
              num_threads=2):
    """Export a TFLite flatbuffer and check it with the LiteRT interpreter.

    Args:
        model: a Keras model with a fixed input size.
        path: output `.tflite` file.
        quantize: None (float32), "float16" (weights in fp16), "dynamic"
            (int8 weights, float activations) or "int8" (full integer; needs
            `representative_data`; hard-swish is written as
            (x / 6) * relu6(x + 3), which XNNPACK runs in int8).
        representative_data: for "int8": an iterable of input batches (numpy
            arrays or a tf.data.Dataset of images or (images, labels)), already
            preprocessed like the model's inputs; up to 200 examples are used.
        int8_io: with "int8", int8 input and output tensors (else float).
        sample: inputs to check with (default: 4 random images).
        num_threads: interpreter threads for the check and the latency.

    Returns:
        An `ExportReport` with the LiteRT batch-1 latency and the delegate
        that ran it ("xnnpack", or "none" with a warning when XNNPACK
        refused the file; see `run_tflite`).
    """
    import tensorflow as tf

    if quantize not in QUANTIZE:
        raise ValueError(f"`quantize` must be one of {QUANTIZE}. Received: quantize={quantize!r}")
    if quantize == "int8" and representative_data is None:
        raise ValueError("`quantize='int8'` needs `representative_data` (calibration images).")
    if int8_io and quantize != "int8":
        raise ValueError(f"`int8_io=True` needs quantize='int8'. Received: quantize={quantize!r}")
    shape = _input_shape(model)
    workdir = tempfile.mkdtemp(prefix="keras_senet_tflite_")
    try:
        exported = _without_hard_swish(model) if quantize == "int8" else model
        exported.export(os.path.join(workdir, "saved_model"), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(workdir, "saved_model"))
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = _representative(representative_data, shape)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if int8_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        flatbuffer = converter.convert()
        tmp = os.path.join(workdir, "model.tflite")
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
        x = _sample(model, sample)
        output, latency, delegate, outside = run_tflite(tmp, x, num_threads=num_threads, with_delegate=True,
                                                        label=os.fspath(path))
        _replace(tmp, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report("tflite", path, model.predict(x, verbose=0), output, latency_ms=latency, quantize=quantize,
                   delegate=delegate, outside_delegate=outside)


def _interpreter(path, shape, num_threads, delegates):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=os.fspath(path), num_threads=num_threads,
                              experimental_op_resolver_type=resolver)
    # A Keras model's batch is dynamic; XNNPACK needs a fixed shape before
    # allocate_tensors() ("failed to prepare" otherwise).
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], shape)
    interpreter.allocate_tensors()
    return interpreter


def ops_outside_xnnpack(path, input_shape):
    """Names of the ops in a .tflite file that LiteRT runs outside the XNNPACK
    delegate, on its builtin kernels (each one also splits the delegated
    graph), for one example of `input_shape` (without the batch).
    """
    return _outside(_interpreter(path, [1] + list(input_shape), num_threads=1, delegates=True))


def _outside(interpreter):
    """`ops_outside_xnnpack` of an allocated interpreter.

    Read through the interpreter's op listing (`_get_ops_details`, private in
    LiteRT): after delegation it lists the DELEGATE nodes beside the original
    ops; an original op whose outputs feed a delegate node or the model's
    output, and come from no delegate node, runs outside. () if the listing
    is unavailable.
    """
    try:
        nodes = interpreter._get_ops_details()
    except AttributeError:
        return ()
    delegated = [n for n in nodes if n["op_name"] == "DELEGATE"]
    produced = {t for n in delegated for t in n["outputs"]}
    consumed = {t for n in delegated for t in n["inputs"]} | {d["index"] for d in interpreter.get_output_details()}
    return tuple(n["op_name"] for n in nodes if n["op_name"] != "DELEGATE"
                 and set(n["outputs"]) & consumed and not set(n["outputs"]) & produced)


def run_tflite(path, x, num_threads=2, timing_runs=10, with_delegate=False, label=None):
    """Run a .tflite file on `x` one example at a time with LiteRT.

    Quantizes int8 inputs and dequantizes int8 outputs with the tensors'
    own scales. XNNPACK (LiteRT's default CPU delegate) refuses some int8
    files, e.g. when a tensor's calibrated range is empty (a dead ReLU in an
    SE bottleneck gives a constant excitation); such a file still runs on
    LiteRT's reference kernels, which is what happens then, with a warning.

    Returns:
        (outputs, median batch-1 latency in ms), plus the delegate used
        ("xnnpack" or "none") and the ops run outside it (see
        `ops_outside_xnnpack`) when `with_delegate`. `label` names the file
        in the warning (default: `path`).
    """
    shape = [1] + list(x.shape[1:])
    try:
        interpreter, delegate = _interpreter(path, shape, num_threads, delegates=True), "xnnpack"
    except RuntimeError as error:
        if "XNNPACK" not in str(error):
            raise
        warnings.warn(
            f"{label or os.fspath(path)}: LiteRT's XNNPACK delegate refused this file ({error}); it runs on the "
            "slower reference kernels. With int8, this usually means a tensor whose calibration range "
            "is empty: calibrate with more, real images.",
            RuntimeWarning,
            stacklevel=2,
        )
        interpreter, delegate = _interpreter(path, shape, num_threads, delegates=False), "none"
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    outputs = []
    for example in x:
        feed = example[None]
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            feed = np.clip(np.round(feed / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], feed)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype("float32") - zero) * scale
        outputs.append(y[0])
    times = []
    for _ in range(timing_runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    result = np.stack(outputs), 1000 * float(np.median(times))
    if not with_delegate:
        return result
    return result + (delegate, _outside(interpreter) if delegate == "xnnpack" else ())


def to_onnx(model, path, *, opset=17, sample=None):
    """Export ONNX with tf2onnx and check it with onnxruntime.

    Traces the model as a tf.function, a path that works for functional,
    Sequential and wrapping models alike (tf2onnx's `from_keras` does not).

    Args:
        model: a Keras model with a fixed input size.
        path: output `.onnx` file.
        opset: ONNX opset (default 17).
        sample: inputs to check with (default: 4 random images).

    Returns:
        An `ExportReport`.
    """
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    shape = _input_shape(model)
    spec = (tf.TensorSpec((None,) + shape, tf.float32, name="images"),)
    function = tf.function(lambda images: model(images, training=False))
    tmp = f"{os.fspath(path)}.partial{os.getpid()}"
    try:
        tf2onnx.convert.from_function(function, input_signature=spec, opset=opset, output_path=tmp)
        x = _sample(model, sample)
        session = onnxruntime.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        output = session.run(None, {session.get_inputs()[0].name: x})[0]
        _replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return _report("onnx", path, model.predict(x, verbose=0), output)
