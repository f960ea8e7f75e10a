"""Public names of a package that load on first use (PEP 562).

A package's `__init__` lists which module defines each public name; the
module is imported when the name is first read, so importing the package
(or a light submodule such as `keras_senet.cli`) does not import Keras,
TensorFlow or JAX.
"""

import importlib
import importlib.util
import sys


def attach(package, exports, computed=None):
    """Module-level `__getattr__`, `__dir__` and `__all__` for `package`.

    Args:
        package: the package's `__name__`.
        exports: module path -> tuple of the public names read from it (its
            attributes or its submodules).
        computed: public name -> function of no arguments that makes its value
            (e.g. a table built from several names), called once.

    Returns:
        `(__getattr__, __dir__, __all__)`, to assign in the package's `__init__`.
        A value is cached in the package's namespace once read; a submodule
        name (e.g. `keras_senet.weights`) imports that submodule.
    """
    namespace = sys.modules[package].__dict__
    origin = {name: module for module, names in exports.items() for name in names}
    computed = dict(computed or {})

    def __getattr__(name):
        if name in computed:
            value = computed[name]()
        elif name in origin:
            module = importlib.import_module(origin[name])
            try:
                value = getattr(module, name)
            except AttributeError:  # a submodule, as `from module import name` finds it
                value = importlib.import_module(f"{origin[name]}.{name}")
        elif not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(origin) | set(computed))

    return __getattr__, __dir__, sorted([*origin, *computed])


def import_with_keras(*modules):
    """Imports `modules` as soon as Keras is imported, at once if it already is.

    For modules whose classes register with Keras' serialization on import:
    `keras.saving.load_model` then finds them without any of the package's
    names being read first, and the package itself still does not import Keras.

    Args:
        *modules: module paths, e.g. "keras_senet.layers".
    """

    def load(_keras=None):
        for module in modules:
            importlib.import_module(module)

    try:  # wrapt comes with TensorFlow; its post-import hook runs at once if Keras is loaded
        from wrapt import when_imported
    except ImportError:
        load()
    else:
        when_imported("keras")(load)
