"""Grouped 2-D convolution with a kernel chosen per backend and device.

Same weights as `keras.layers.Conv2D(groups=g)` (kernel (kh, kw, in/g, out),
groups contiguous, as in PyTorch) whatever the kernel. On JAX and PyTorch
the layer is plain `Conv2D` (their grouped convolutions are native). On
TensorFlow, Keras runs a grouped conv through an XLA-compiled function,
slow on CPU (issue 17: 7.5 ms for 1x56x56x128 below) and not exportable by tf2onnx (a
StatefulPartitionedCall node), so the layer computes it with one of:

- "native": TensorFlow's own grouped `tf.nn.convolution` (input channels =
  kernel in-channels x groups). One op; on an oneDNN CPU build (x86 wheels,
  as shipped) 2.3-2.8x faster than the split forward, 1.5-2.1x with the
  gradients (table below); on GPUs cuDNN's grouped kernel (not measured
  here: no GPU). Exports as one TFLite CONV_2D (run whole by
  XNNPACK) and one ONNX Conv with `group`.
- "split": one convolution per group, then a concatenation. Runs wherever
  a plain convolution runs. Without oneDNN (`TF_ENABLE_ONEDNN_OPTS=0`, or
  builds without it) TensorFlow's native grouped forward is no faster than
  this and its gradient has no CPU kernel ("Gradients for grouped
  convolutions are not supported on CPU"); on oneDNN CPUs neither float16's
  gradient does.

Measured (TF 2.21, AMD EPYC with AVX2/AVX-512, 2 threads; 3x3 conv, 32
groups; `python benchmarks/grouped_conv.py`, medians of alternating runs;
2 cores shared with other jobs, so absolute times are about twice a quiet
run's: compare ratios), split / native:

    oneDNN (default)         forward                forward + gradient
    1x56x56x128              5.5 / 2.0 ms    2.8x   12.3 / 5.8 ms   2.1x
    8x28x28x256              13.9 / 5.9 ms   2.3x   22.9 / 13.0 ms  1.8x
    16x56x56x128             58.5 / 25.8 ms  2.3x   99.0 / 67.1 ms  1.5x
    TF_ENABLE_ONEDNN_OPTS=0  0.97x (all three)      no native gradient
    SE-ResNeXt-50, batch 1, TF graph: 169.5 / 128.2 ms (1.32x); over
      SE-ResNet-50 (same variant, 4.23 vs 4.09 GMACs) 1.53 split, 1.08 native
    SE-ResNeXt-50 training step, batch 8: 5.02 / 3.58 s (1.40x)
    SE-ResNeXt-50 LiteRT fp32 (XNNPACK), batch 1: 106.1 / 94.4 ms (1.12x);
      the split leaves 32 SPLIT / CONCATENATION ops outside XNNPACK

(Issue 17's quiet run: 1x56x56x128 2.39 / 0.76 ms forward, 7.2 / 2.8 ms
with gradient; SE-ResNeXt-50 / SE-ResNet-50 1.42 split, 1.14 native.)

Which one runs ("auto", the default): "native" where a probe shows that
the native op computes a tiny grouped convolution, and its gradients with
respect to the input and the kernel, equal to the split's, on the device
type the layer runs on, in its dtype, data format, strides, padding and
dilation; "split" elsewhere. The probe runs once per process for each such
combination, eagerly (lifted out of any `tf.function` or `tf.distribute`
trace with `tf.init_scope`), the first time a layer of that combination is
called; never at import. It uses small integer values, on which every
correct kernel is exact up to rounding and a wrong one is off by whole
units. Graphs that are never differentiated (`inference_graphs()`, used
by `keras_senet.export`) only need the forward: their files carry the
native op wherever its forward works.

Overrides: `set_implementation("auto" | "native" | "split")`, or the
environment variable `KERAS_SENET_GROUPED_CONV` with the same values
(`set_implementation` wins). "native" where the probe fails raises a
RuntimeError when the layer is called. The choice is no layer config key:
`.keras` files are the same whatever ran. It applies to calls and traces
made after it is set (a `tf.function` traced before keeps its graph).
"""

import contextlib
import dataclasses
import os
import threading

import keras
import numpy as np

IMPLEMENTATIONS = ("auto", "native", "split")
ENV_VAR = "KERAS_SENET_GROUPED_CONV"

_setting = None  # set_implementation's value; None: the environment variable, else "auto"
_inference_depth = 0  # > 0 inside inference_graphs()
_probes = {}  # probe key -> Capability
_lock = threading.RLock()  # tf.distribute's MirroredStrategy traces replicas in threads


@dataclasses.dataclass(frozen=True)
class Capability:
    """What the probe found for one combination: whether TensorFlow's native
    grouped forward (`forward`) and, with it, its gradients with respect to
    the input and the kernel (`gradient`) run and equal the split's; `reason`
    says what failed ("" when nothing did)."""

    forward: bool
    gradient: bool
    reason: str = ""


def set_implementation(name):
    """Choose how `GroupedConv2D` computes on TensorFlow, for this process.

    Args:
        name: "auto" (default: native where the capability probe passes,
            else split), "native" (TensorFlow's grouped conv; a layer call
            raises RuntimeError where the probe fails) or "split" (one conv
            per group). None goes back to the environment variable
            `KERAS_SENET_GROUPED_CONV` (or "auto" if unset).

    Raises:
        ValueError: if `name` is none of these.
    """
    global _setting
    if name is not None and name not in IMPLEMENTATIONS:
        raise ValueError(f"`name` must be one of {IMPLEMENTATIONS} or None. Received: name={name!r}")
    _setting = name


def get_implementation():
    """The setting in force: `set_implementation`'s, else the environment
    variable `KERAS_SENET_GROUPED_CONV`'s, else "auto".

    Raises:
        ValueError: naming the environment variable when it holds another value.
    """
    if _setting is not None:
        return _setting
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if value not in IMPLEMENTATIONS:
        raise ValueError(
            f"Environment variable {ENV_VAR}={os.environ[ENV_VAR]!r} is not one of {IMPLEMENTATIONS}; "
            "set it to one of them or unset it."
        )
    return value


@contextlib.contextmanager
def use_implementation(name):
    """`set_implementation(name)` for the duration of a `with` block."""
    previous = _setting
    set_implementation(name)
    try:
        yield
    finally:
        set_implementation(previous)


@contextlib.contextmanager
def inference_graphs():
    """Within the block, the graphs traced are never differentiated (exports):
    "auto" and "native" then need only the native forward to pass the probe,
    so that an exported file carries one grouped op per layer (one TFLite
    CONV_2D, one ONNX Conv) even on a CPU whose TensorFlow cannot train it.
    Process-wide, like `set_implementation`: do not train in another thread
    meanwhile."""
    global _inference_depth
    with _lock:
        _inference_depth += 1
    try:
        yield
    finally:
        with _lock:
            _inference_depth -= 1


def _device_type(inputs):
    """"CPU", "GPU", "TPU"...: where the convolution of `inputs` will run.

    The device of the input (eager: where it lives; in a graph: the device
    scope it was made in); with none, a GPU when TensorFlow sees one, as
    TensorFlow's placer puts a convolution there.
    """
    import tensorflow as tf

    device = getattr(inputs, "device", "") or ""
    if device:
        kind = tf.DeviceSpec.from_string(device).device_type
        if kind:
            return kind
    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def _native(x, kernel, strides, padding, dilation, data_format):
    import tensorflow as tf

    return tf.nn.convolution(x, kernel, strides=strides, padding=padding.upper(), dilations=dilation,
                             data_format="NHWC" if data_format == "channels_last" else "NCHW")


def _split(x, kernel, groups, strides, padding, dilation, data_format):
    import tensorflow as tf

    axis = -1 if data_format == "channels_last" else 1
    parts = zip(tf.split(x, groups, axis=axis), tf.split(kernel, groups, axis=-1))
    return tf.concat([_native(a, k, strides, padding, dilation, data_format) for a, k in parts], axis=axis)


def _probe(device_type, dtype, data_format, strides, padding, dilation, bias=False):
    """Run a tiny grouped convolution natively and split, eagerly and in a
    tf.function, forward and gradients, on `device_type`; return a
    `Capability`. Never raises: a failure is an answer.

    With `bias`, a bias is added as Keras' Conv2D adds it: TensorFlow's graph
    optimizer then fuses the convolution with it, and the fused CPU kernel
    without oneDNN has no grouped form ("Fused conv implementation does not
    support grouped convolutions"; found on an AVX2-only CPU)."""
    import tensorflow as tf

    groups, per_group_in, per_group_out = 2, 2, 3
    height, width = 4 * dilation[0] + 3 * strides[0], 4 * dilation[1] + 2 * strides[1]  # non-square
    rng = np.random.default_rng(0)
    # Small integers: products and sums are exact in every float format used
    # (float16, bfloat16, TF32 included), so any correct kernel agrees with
    # the split up to rounding, and a wrong grouping differs by >= 1.
    x = rng.integers(-1, 2, (1, height, width, groups * per_group_in))
    kernel = rng.integers(-2, 3, (3, 3, per_group_in, groups * per_group_out))
    offsets = rng.integers(-2, 3, (groups * per_group_out,)) if bias else None
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2)
    bias_shape = (1, -1, 1, 1) if data_format == "channels_first" else (1, 1, 1, -1)

    def with_bias(y):
        # keras.ops.add, as Conv2D adds it: on TensorFlow a tf.nn.bias_add
        return y if offsets is None else keras.ops.add(y, tf.reshape(tf.constant(offsets, y.dtype), bias_shape))

    # tf.init_scope stops every gradient tape, so gradients are taken as the
    # tape would take them: in a tf.function by tf.gradients (Conv2D's
    # registered gradient), eagerly by the two ops that gradient runs.
    def conv_native(x, k):
        return with_bias(_native(x, k, strides, padding, dilation, data_format))

    def conv_split(x, k):
        return with_bias(_split(x, k, groups, strides, padding, dilation, data_format))

    def graph_gradients(conv):
        @tf.function
        def gradients(x, kernel, upstream):
            return tf.gradients(tf.reduce_sum(tf.cast(conv(x, kernel), "float32") * upstream), [x, kernel])

        return gradients

    def eager_gradients(x, kernel, upstream):
        nhwc = data_format == "channels_last"
        args = dict(
            strides=[1, *strides, 1] if nhwc else [1, 1, *strides], padding=padding.upper(),
            dilations=[1, *dilation, 1] if nhwc else [1, 1, *dilation], data_format="NHWC" if nhwc else "NCHW",
        )
        upstream = tf.cast(upstream, x.dtype)
        return [tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel, out_backprop=upstream, **args),
                tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel), out_backprop=upstream, **args)]

    native = {"eager": (conv_native, eager_gradients),
              "tf.function": (tf.function(conv_native), graph_gradients(conv_native))}

    def agree(got, want):
        got = [np.asarray(t.numpy(), "float64") for t in got]
        return all(g.shape == w.shape and np.all(np.abs(g - w) <= 0.25) for g, w in zip(got, want))

    forward = gradient = True
    reasons = []
    with tf.init_scope():
        if not tf.executing_eagerly():  # a TF1-style graph: nothing can run here
            return Capability(False, False, "TensorFlow is not executing eagerly outside the trace")
        with tf.device(f"/device:{device_type}:0"):
            try:
                xt, kt = tf.constant(x, dtype), tf.constant(kernel, dtype)
                y = conv_split(xt, kt)
                upstream = tf.constant(rng.integers(-1, 2, y.shape), "float32")
                want = [np.asarray(y.numpy(), "float64")]
                want_gradients = [np.asarray(t.numpy(), "float64") for t in graph_gradients(conv_split)(xt, kt, upstream)]
            except Exception as error:  # noqa: BLE001 - e.g. NCHW on a CPU without oneDNN
                return Capability(False, False, f"the per-group convolutions fail too: {_first_line(error)}")
            for mode, (forward_fn, gradients_fn) in native.items():
                try:
                    if not agree([forward_fn(xt, kt)], want):
                        reasons.append(f"{mode}: the forward differs from the per-group convolutions")
                        forward = False
                except Exception as error:  # noqa: BLE001 - any failure means "not capable"
                    reasons.append(f"{mode} forward: {_first_line(error)}")
                    forward = False
                if not gradient:  # failed eagerly: TensorFlow would log the same failure again
                    continue
                try:
                    if not agree(gradients_fn(xt, kt, upstream), want_gradients):
                        reasons.append(f"{mode}: the gradients differ from the per-group convolutions'")
                        gradient = False
                except Exception as error:  # noqa: BLE001
                    reasons.append(f"{mode} gradient: {_first_line(error)}")
                    gradient = False
    return Capability(forward, forward and gradient, "; ".join(reasons))


def _first_line(error):
    return " ".join(str(error).split())[:300] or type(error).__name__


def capability(device_type, dtype, data_format, strides, padding, dilation, bias=False):
    """The probe's `Capability` for this combination, probing on first use
    (then cached for the process).

    Args:
        device_type: "CPU", "GPU"... (TensorFlow's device type).
        dtype: the compute dtype's name, e.g. "float32".
        data_format: "channels_last" or "channels_first".
        strides, dilation: pairs of ints. padding: "valid" or "same".
        bias: whether the layer adds a bias (a fused kernel may run then).
    """
    key = (device_type, str(dtype), data_format, tuple(strides), padding, tuple(dilation), bool(bias))
    with _lock:
        if key not in _probes:
            _probes[key] = _probe(*key)
        return _probes[key]


def choose(inputs, layer):
    """"native" or "split" for `layer` (a GroupedConv2D) on TensorFlow applied
    to `inputs`, per `get_implementation()` and the probe.

    Raises:
        RuntimeError: when the setting is "native" and the probe shows that
            TensorFlow cannot run it here, saying why and what to do.
    """
    setting = get_implementation()
    if setting == "split":
        return "split"
    import tensorflow as tf

    dtype = tf.as_dtype(inputs.dtype).name
    found = capability(_device_type(inputs), dtype, layer.data_format, layer.strides, layer.padding,
                       layer.dilation_rate, layer.use_bias)
    inference = _inference_depth > 0
    capable = found.forward and (inference or found.gradient)
    if capable:
        return "native"
    if setting == "native":
        needs = "forward" if inference else "forward and gradient"
        raise RuntimeError(
            f"GroupedConv2D {layer.name!r}: set_implementation('native') (or {ENV_VAR}=native), but "
            f"TensorFlow's grouped convolution {needs} does not run correctly on "
            f"{_device_type(inputs)} in {dtype}, {layer.data_format} here ({found.reason}). Use "
            "'auto' or 'split'; on CPU, TensorFlow's oneDNN build (the default on x86, "
            "TF_ENABLE_ONEDNN_OPTS unset or 1) has the gradient kernels."
        )
    return "split"


@keras.saving.register_keras_serializable(package="keras_senet")
class GroupedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with `groups > 1`, computed on TensorFlow by its
    native grouped convolution or group by group (see the module docstring).

    Takes exactly the `Conv2D` arguments and returns its `get_config`; the
    kernel layout is unchanged, so weights move between the two layers with
    `set_weights(get_weights())`.

    Example:
        >>> y = GroupedConv2D(128, 3, padding="same", groups=32)(x)
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or keras.backend.backend() != "tensorflow":
            return super().convolution_op(inputs, kernel)
        args = (list(self.strides), self.padding, list(self.dilation_rate), self.data_format)
        if choose(inputs, self) == "native":
            return _native(inputs, kernel, *args)
        return _split(inputs, kernel, self.groups, *args)
