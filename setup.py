from setuptools import find_packages, setup

setup(
    name="keras-senet",
    version="0.1.0",
    description="Squeeze-and-Excitation networks (SE-ResNet, SE-ResNeXt, SENet-154, SE-MobileNet) for Keras 3",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_senet", "keras_senet.*"]),
    package_data={"keras_senet.models": ["imagenet_class_index.json"]},
    install_requires=[
        # Keras tested: 3.15.1 (CI, the newest release); 3.6.0 passes the mixed-precision export, saving and
        # multi-worker fix tests. No upper bound: the multi-worker fix follows Keras' behaviour, not its version.
        "keras>=3.6", "tensorflow>=2.16", "numpy", "safetensors>=0.4",
        # model.fit logs and tfds input pipelines (keras_senet.training);
        # tfds 4.9's download/prepare path imports importlib_resources, which
        # its own requirements only list for Python < 3.9 (etils no longer brings it)
        "tensorboard", "tensorflow-datasets", "importlib_resources",
    ],
    extras_require={
        # PyTorch and timm for reading .pth checkpoints and parity checks.
        "convert": ["torch", "timm"],
        # the other Keras backends the layers and models run on
        "jax": ["jax"],
        # training-curve plots in the examples and notebooks
        "plot": ["matplotlib"],
        "export": ["tf2onnx", "onnxruntime", "ai-edge-litert"],
        "test": [
            "pytest", "pytest-xdist", "torch", "timm", "jax", "tf2onnx", "onnxruntime", "ai-edge-litert", "matplotlib",
            # executes notebooks/ end to end
            "nbclient", "nbformat", "ipykernel",
        ],
    },
    entry_points={"console_scripts": ["keras-senet=keras_senet.cli:main"]},
)
