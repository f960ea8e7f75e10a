"""Export to SavedModel, TFLite (fp32 / fp16 / dynamic-range / full int8) and
ONNX, each checked against Keras on the same inputs.

Every function writes through a temporary path (nothing half-written is left
behind), runs the exported file with its own runtime (TensorFlow, the LiteRT
interpreter from `ai-edge-litert`, onnxruntime) and returns an
`ExportReport`: file size, max and mean abs difference from Keras, top-1
agreement, what they were measured on, and for TFLite the interpreter's
batch-1 latency. Check on real inputs (`sample=`): on random noise an int8
model's top-1 agreement says little.

Each exported file carries the model's input transform and class names
(`keras_senet.inputs`): TFLite in a model metadata entry, ONNX in its
`metadata_props`, SavedModel in `assets.extra/`, all named `keras_senet`.
`read_metadata` reads them back from any of these and from `.keras` files,
and `load_predictor` runs any of them on model inputs.

A model that computes in float16 or bfloat16 (built or trained under
`keras.mixed_precision.set_global_policy("mixed_float16")`) is exported as a
float32 copy: the TFLite converter has no float16 `Conv2D`, and CPUs run
float32 faster. The copy has the same architecture and weights (cast to
float32); the report compares the file with the mixed-precision model itself.
"""

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
import time
import warnings

import keras
import numpy as np

from keras_senet import inputs
from keras_senet.layers import grouped_conv  # a module: it may still be loading (see _inference_graphs)

QUANTIZE = (None, "float16", "dynamic", "int8")
METADATA_NAME = "keras_senet"


def _inference_graphs(export):
    """`export` runs inside `grouped_conv.inference_graphs()`: grouped convs
    as one native op wherever its forward runs. Looked up at call time, as
    this module can be imported (by Keras' import hook, keras_senet._lazy)
    while grouped_conv itself is still loading."""

    @functools.wraps(export)
    def wrapper(*args, **kwargs):
        with grouped_conv.inference_graphs():
            return export(*args, **kwargs)

    return wrapper


@dataclasses.dataclass(frozen=True)
class ExportReport:
    format: str
    path: str
    size_bytes: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    checked_on: str = ""  # what the outputs were compared on, e.g. "100 given inputs"
    latency_ms: float = None
    quantize: str = None
    delegate: str = None  # TFLite: "xnnpack", or "none" when XNNPACK refused the file
    outside_delegate: tuple = ()  # TFLite: ops LiteRT runs outside XNNPACK (slower kernels)
    float32_copy_of: str = None  # the dtype policy of a model exported as a float32 copy, e.g. "mixed_float16"

    def __str__(self):
        text = (
            f"{self.format}{'/' + self.quantize if self.quantize else ''} -> {self.path}: "
            f"{self.size_bytes / 1e6:.1f} MB, max abs diff {self.max_abs_diff:.2e}, "
            f"mean {self.mean_abs_diff:.2e}, top-1 agreement {self.top1_agreement:.1%} on {self.checked_on}"
        )
        if self.float32_copy_of:
            text += f" (a float32 copy, compared with the {self.float32_copy_of} model)"
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
    """(check inputs, what they are): `sample`, or 4 random-noise inputs."""
    if sample is not None:
        sample = np.asarray(sample, "float32")
        return sample, f"{len(sample)} given inputs"
    rng = np.random.default_rng(0)
    return rng.normal(size=(4,) + _input_shape(model)).astype("float32"), "4 random-noise inputs"


def _report(fmt, path, reference, output, checked_on, **extra):
    reference, output = np.asarray(reference, "float64"), np.asarray(output, "float64")
    diff = np.abs(reference - output)
    agreement = float(np.mean(reference.argmax(-1) == output.argmax(-1)))
    size = _size(path)
    return ExportReport(fmt, os.fspath(path), size, float(diff.max()), float(diff.mean()), agreement,
                        checked_on, **extra)


def read_metadata(path):
    """(InputTransform or None, class names or None) stored in a `.keras`,
    `.tflite` or `.onnx` file or a SavedModel folder written by this package.

    Raises:
        ValueError: naming the path when it does not exist or is of none of
            these formats.
    """
    path = os.fspath(path)
    kind = model_format(path)
    if kind == "keras":
        return inputs.read_metadata(path)
    if kind == "saved_model":
        extra = os.path.join(path, "assets.extra", METADATA_NAME + ".json")
        return inputs.parse_metadata(open(extra).read() if os.path.exists(extra) else None)
    if kind == "onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        return inputs.parse_metadata(props.get(METADATA_NAME))
    from tensorflow.lite.tools import flatbuffer_utils

    with open(path, "rb") as f:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(f.read()))
    for entry in model.metadata or ():
        if entry.name.decode() == METADATA_NAME:
            return inputs.parse_metadata(bytes(model.buffers[entry.buffer].data).decode())
    return None, None


def model_format(path):
    """"keras", "tflite", "onnx" or "saved_model" for an existing path.

    Raises:
        ValueError: naming the path when it does not exist or has another form.
    """
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        return "saved_model"
    if os.path.isfile(path):
        for suffix, kind in ((".keras", "keras"), (".tflite", "tflite"), (".onnx", "onnx")):
            if path.endswith(suffix):
                return kind
        raise ValueError(f"{path}: unknown model format; expected a .keras, .tflite or .onnx file "
                         "or a SavedModel folder")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder but not a SavedModel (no saved_model.pb in it)")
    raise ValueError(f"Model file not found: {path}")


def _with_tflite_metadata(flatbuffer, text):
    """A .tflite flatbuffer with a metadata entry `keras_senet` holding `text`."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME.encode(), len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]
    return flatbuffer_utils.convert_object_to_bytearray(model)


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


@_inference_graphs
def to_saved_model(model, path, *, preprocess=None, sample=None):
    """Export a SavedModel with a `serve` signature.

    Args:
        model: a Keras model with a fixed input size (a mixed-precision
            model is exported as a float32 copy).
        path: output directory.
        preprocess: optional function applied inside the signature (e.g.
            `model.input_transform.normalize`); the signature then takes raw
            uint8 RGB images, as a serving client sends them.
        sample: inputs to check with, real images preferably (default: 4
            random-noise images); uint8 images with `preprocess`.

    Returns:
        An `ExportReport`.
    """
    import tensorflow as tf

    shape = _input_shape(model)
    exported, policy = _float32(model)
    archive = keras.export.ExportArchive()
    archive.track(exported)
    if preprocess is None:
        spec = tf.TensorSpec((None,) + shape, tf.float32, name="images")
        archive.add_endpoint("serve", lambda x: exported(x, training=False), input_signature=[spec])
        feed, checked_on = _sample(model, sample)
        reference = model.predict(feed, verbose=0)
    else:
        spec = tf.TensorSpec((None,) + shape, tf.uint8, name="images")
        archive.add_endpoint(
            "serve", lambda x: exported(preprocess(tf.cast(x, tf.float32)), training=False), input_signature=[spec]
        )
        rng = np.random.default_rng(0)
        if sample is None:
            feed, checked_on = rng.integers(0, 256, (4,) + shape).astype("uint8"), "4 random-noise images"
        else:
            feed, checked_on = np.asarray(sample, "uint8"), f"{len(sample)} given images"
        reference = model.predict(np.asarray(preprocess(feed.astype("float32"))), verbose=0)
    tmp = f"{os.fspath(path)}.partial{os.getpid()}"
    try:
        archive.write_out(tmp, verbose=False)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, "assets.extra", METADATA_NAME + ".json"), "w") as f:
            f.write(inputs.metadata_json(model, **({"mode": "raw"} if preprocess else {})))
        loaded = tf.saved_model.load(tmp)  # keep a reference: it owns the variables
        output = loaded.serve(tf.constant(feed)).numpy()
        _replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _report("saved_model", path, reference, output, checked_on, float32_copy_of=policy)


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


@keras.saving.register_keras_serializable("keras_senet")
def _hard_swish_int8(x):
    """hard-swish as (x / 6) * relu6(x + 3): the same function, in ops that
    the TFLite converter does not fuse into HARD_SWISH."""
    return (x * (1.0 / 6.0)) * keras.ops.relu6(x + 3.0)


def _rebuilt(model, change):
    """A copy of `model` with the same weights, its layers made from their
    configs as `change(layer, config)` edits them (in place), carrying the
    model's input transform and class names.

    Raises:
        ValueError: for a model that is neither functional nor Sequential
            (Keras cannot rebuild it layer by layer).
    """

    def clone(layer):
        config = layer.get_config()
        change(layer, config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights([np.asarray(w, v.dtype) for w, v in zip(model.get_weights(), copy.weights)])
    return inputs.attach(copy, inputs.input_transform(model), inputs.class_names(model))


def _low_precision(layer):
    """Whether a layer's dtype policy computes in float16 or bfloat16 (mixed
    precision or plain), leaving out quantized policies (their weights are
    not float)."""
    policy = getattr(layer, "dtype_policy", None)  # None: an operation such as Keras 3.6's Cast
    quantized = getattr(keras.dtype_policies, "QuantizedDTypePolicy", ())
    return policy is not None and policy.compute_dtype in ("float16", "bfloat16") and not isinstance(policy, quantized)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


@contextlib.contextmanager
def _global_dtype_policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _float32(model):
    """(the model to export, the policy it was copied from): `model` and None
    when it computes in float32, else a float32 copy and the model's policy
    name (e.g. "mixed_float16").

    The copy is rebuilt under the float32 global policy (so that sublayers
    made in `build()` are float32 too), with every float16 / bfloat16 layer
    policy replaced by "float32" and the weights cast; the global policy is
    restored afterwards.

    Raises:
        ValueError: for a low-precision model that cannot be rebuilt layer
            by layer (a subclassed model), saying what to do.
    """
    policies = [layer.dtype_policy for layer in (model, *_all_layers(model)) if _low_precision(layer)]
    if not policies:
        return model, None

    def to_float32(layer, config):
        # a low-precision layer, or an operation such as the input Cast that Keras 3.6 records
        if _low_precision(layer) or config.get("dtype") in ("float16", "bfloat16"):
            config["dtype"] = "float32"

    with _global_dtype_policy("float32"):
        try:
            return _rebuilt(model, to_float32), policies[0].name
        except ValueError as error:
            raise ValueError(
                f"Model {model.name!r} computes in {policies[0].name}, which the exporters do not take, "
                f"and Keras cannot rebuild it in float32 ({error}). Build the same model under "
                "keras.mixed_precision.set_global_policy('float32'), copy the weights into it with "
                "set_weights(model.get_weights()) and export that."
            ) from error


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

    def replace(layer, config):
        if getattr(layer, "activation", None) in hard_swish:
            config["activation"] = _hard_swish_int8

    if not any(getattr(layer, "activation", None) in hard_swish for layer in _all_layers(model)):
        return model
    try:
        return _rebuilt(model, replace)
    except ValueError:  # a subclassed model: cannot be rebuilt layer by layer
        return model


@_inference_graphs
def to_tflite(model, path, *, quantize=None, representative_data=None, int8_io=False, sample=None,
              num_threads=2):
    """Export a TFLite flatbuffer and check it with the LiteRT interpreter.

    Args:
        model: a Keras model with a fixed input size (a mixed-precision
            model is exported as a float32 copy).
        path: output `.tflite` file.
        quantize: None (float32), "float16" (weights in fp16), "dynamic"
            (int8 weights, float activations) or "int8" (full integer; needs
            `representative_data`; hard-swish is written as
            (x / 6) * relu6(x + 3), which XNNPACK runs in int8).
        representative_data: for "int8": an iterable of input batches (numpy
            arrays or a tf.data.Dataset of images or (images, labels)), already
            preprocessed like the model's inputs; up to 200 examples are used.
        int8_io: with "int8", int8 input and output tensors (else float).
        sample: inputs to check with, real images preferably (default: 4
            random-noise inputs, on which int8 top-1 agreement says little).
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
        exported, policy = _float32(model)
        exported = _without_hard_swish(exported) if quantize == "int8" else exported
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
        flatbuffer = _with_tflite_metadata(converter.convert(), inputs.metadata_json(model))
        tmp = os.path.join(workdir, "model.tflite")
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
        x, checked_on = _sample(model, sample)
        output, latency, delegate, outside = run_tflite(tmp, x, num_threads=num_threads, with_delegate=True,
                                                        label=os.fspath(path))
        _replace(tmp, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report("tflite", path, model.predict(x, verbose=0), output, checked_on, latency_ms=latency,
                   quantize=quantize, delegate=delegate, outside_delegate=outside, float32_copy_of=policy)


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
    result = np.stack(outputs), (1000 * float(np.median(times)) if times else None)
    if not with_delegate:
        return result
    return result + (delegate, _outside(interpreter) if delegate == "xnnpack" else ())


@_inference_graphs
def to_onnx(model, path, *, opset=17, sample=None):
    """Export ONNX with tf2onnx and check it with onnxruntime.

    Traces the model as a tf.function, a path that works for functional,
    Sequential and wrapping models alike (tf2onnx's `from_keras` does not).

    Args:
        model: a Keras model with a fixed input size (a mixed-precision
            model is exported as a float32 copy).
        path: output `.onnx` file.
        opset: ONNX opset (default 17).
        sample: inputs to check with, real images preferably (default: 4
            random-noise inputs, on which int8 top-1 agreement says little).

    Returns:
        An `ExportReport`.
    """
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    shape = _input_shape(model)
    spec = (tf.TensorSpec((None,) + shape, tf.float32, name="images"),)
    exported, policy = _float32(model)
    function = tf.function(lambda images: exported(images, training=False))
    tmp = f"{os.fspath(path)}.partial{os.getpid()}"
    try:
        onnx_model, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset)
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = METADATA_NAME, inputs.metadata_json(model)
        with open(tmp, "wb") as f:
            f.write(onnx_model.SerializeToString())
        x, checked_on = _sample(model, sample)
        session = onnxruntime.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        output = session.run(None, {session.get_inputs()[0].name: x})[0]
        _replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return _report("onnx", path, model.predict(x, verbose=0), output, checked_on, float32_copy_of=policy)


@dataclasses.dataclass
class Predictor:
    """A model file ready to run: `predict(x)` maps a float32 batch of model
    inputs (N, H, W, C) to outputs (N, classes)."""

    path: str
    format: str
    predict: object
    input_shape: tuple  # (H, W, C); None where the file takes any size
    input_transform: object  # inputs.InputTransform, or None if the file has none
    class_names: tuple


def load_predictor(path):
    """Open a `.keras`, `.tflite` or `.onnx` file or a SavedModel folder for
    inference with its own runtime (Keras, LiteRT, onnxruntime, TensorFlow),
    with the input transform and class names stored in it.

    Raises:
        ValueError: naming the path when it is missing or of another format.
    """
    path = os.fspath(path)
    kind = model_format(path)
    transform, names = read_metadata(path)
    if kind == "keras":
        model = inputs.load_model(path, compile=False)
        predict = lambda x: keras.ops.convert_to_numpy(model.predict(x, verbose=0))  # noqa: E731
        shape = tuple(model.input_shape[1:])
    elif kind == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        shape = tuple(int(d) for d in Interpreter(model_path=path).get_input_details()[0]["shape"][1:])
        predict = lambda x: run_tflite(path, x, timing_runs=0)[0]  # noqa: E731
    elif kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        shape = tuple(session.get_inputs()[0].shape[1:])
        predict = lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]  # noqa: E731
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        spec = loaded.signatures["serving_default"].structured_input_signature[1]
        spec = next(iter(spec.values()))
        shape = tuple(spec.shape[1:])

        def predict(x):
            return next(iter(loaded.signatures["serving_default"](tf.cast(x, spec.dtype)).values())).numpy()

    shape = None if any(not isinstance(d, int) for d in shape) else shape
    return Predictor(path, kind, predict, shape, transform, tuple(names) if names else None)
