"""`keras-senet presets` prints plain data (keras_senet/weights/presets.py)
without importing Keras or TensorFlow, and `keras_senet.weights` keeps every
public name it had when it imported its Keras modules eagerly.

Next to tests/test_cli_quiet.py, which checks the same for `--help`.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import keras_senet.weights
from keras_senet.weights import cache, convert, presets

HEAVY = ("tensorflow", "keras")


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_presets_command_imports_no_framework():
    """In a fresh process: the table of every preset, then `presets --help`;
    after each, sys.modules holds neither keras nor tensorflow."""
    script = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from keras_senet.cli import main
        report = {{}}
        for argv in (["presets"], ["presets", "--markdown"], ["presets", "--help"]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    code = main(argv)
                except SystemExit as e:
                    code = e.code
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
            report[" ".join(argv)] = [code, out.getvalue(), heavy[:3]]
        print(json.dumps(report))
    """)
    result = _run("-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    report = json.loads(result.stdout)
    for argv, (code, out, heavy) in report.items():
        assert (code, heavy) == (0, []), argv
    # the table lists the data of presets.py: each preset on its own row
    rows = report["presets"][1].splitlines()
    for name, preset in presets.PRESETS.items():
        row = next(r for r in rows if r.split()[0] == name)
        assert preset["constructor"] in row.split()
    assert sum(r.startswith("| `") for r in report["presets --markdown"][1].splitlines()) == len(presets.PRESETS)
    assert report["presets --help"][1].startswith("usage: keras-senet presets")


def test_console_script_presets_imports_no_framework():
    """The installed `keras-senet presets`, with Python's import log."""
    script = os.path.join(os.path.dirname(sys.executable), "keras-senet")
    result = _run("-X", "importtime", script, "presets")
    assert result.returncode == 0, result.stderr[-3000:]
    imported = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines()]
    assert "keras_senet.weights.presets" in imported
    assert [m for m in imported if m.split(".")[0] in HEAVY] == []
    assert len(result.stdout.splitlines()) == len(presets.PRESETS) + 2  # header, rows, footnote


def test_weights_public_names_as_before():
    """The names the package imported from its Keras modules are those
    modules' objects, listed by dir() and importable with `from ... import`."""
    moved = {
        "cache_dir": cache, "converted_path": cache, "load_preset": cache,
        "check_variant": convert, "load_timm_state_dict": convert, "read_checkpoint": convert,
    }
    namespace = {}
    exec(f"from keras_senet.weights import {', '.join(moved)}", namespace)
    for name, module in moved.items():
        assert namespace[name] is getattr(module, name) is getattr(keras_senet.weights, name), name
        assert name in dir(keras_senet.weights)
    assert keras_senet.weights.cache is cache and keras_senet.weights.convert is convert
    assert keras_senet.weights.PRESETS is presets.PRESETS
    with pytest.raises(AttributeError, match="has no attribute 'load_presets'"):
        keras_senet.weights.load_presets  # noqa: B018


def test_weights_package_alone_imports_no_framework():
    result = _run("-c", "import sys, keras_senet.weights as w; "
                        f"print(len(w.PRESETS), [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [str(len(presets.PRESETS)), "[]"]
