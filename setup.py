"""lotr-gluon: LOTR (Watchareeruetai et al.) and the Earp et al. heatmap baseline in MXNet/Gluon."""
from setuptools import find_packages, setup

setup(
    name="lotr-gluon",
    version="0.1.0",
    description="LOTR face landmark localization transformer and the Earp et al. heatmap baseline in MXNet Gluon",
    packages=find_packages(include=["lotr_gluon", "lotr_gluon.*", "heatmap_baseline", "heatmap_baseline.*"]),
    package_data={"lotr_gluon": ["data/*.json", "tables/paper/*.json"]},
    python_requires=">=3.8,<3.12",
    # Ranges here; the exact, tested set is requirements.txt + constraints.txt.
    install_requires=[
        "numpy>=1.21,<1.24",  # MXNet 1.9.1 breaks on numpy >= 1.24 (np.bool) and numpy 2 (np.PZERO)
        "gluoncv>=0.10.5,<0.12",
        "opencv-python-headless>=4.5,<4.12",
        "matplotlib>=3.5,<3.9",
        "scipy>=1.7,<1.12",
        "scikit-image>=0.19,<0.23",
        "pyyaml>=5.4",
        "yacs>=0.1.8",
        "tqdm>=4.60",
        "pillow>=9",  # EXIF orientation and image headers
        "pooch>=1.6",  # model download, cache and checksum (lotr_gluon.detectors)
    ],
    extras_require={
        # MXNet is an extra so that users choose the CPU or the CUDA wheel (both import as `mxnet`).
        "cpu": ["mxnet==1.9.1"],
        "gpu": ["mxnet-cu112==1.9.1"],
        "deploy": ["insightface==0.7.3", "onnx==1.14.1", "onnxruntime>=1.17"],
        "test": ["pytest>=7.4"],
    },
)
