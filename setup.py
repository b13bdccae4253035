"""Packaging for interest-tracker: one distribution, the library lives in lib/."""
from setuptools import find_packages, setup

# Runtime needs of the Spark stages (clean/sessionize and score). Versions are pinned
# in requirements/constraints.txt; here we state compatibility ranges only.
SPARK = [
    "pyspark>=3.5,<3.6",
    "pyarrow>=14,<15",
    "numpy>=1.26,<2",
    "pandas>=2,<3",
]
# petastorm 0.13.1 pins setuptools<70, which conflicts with torch; install petastorm
# with --no-deps (scripts/bootstrap_env.sh) and list its real dependencies here.
PETASTORM = ["dill", "diskcache", "future", "fsspec", "pyzmq", "psutil", "six", "packaging"]

setup(
    name="interest-tracker",
    version="0.1.0",
    description="Distributed pipeline that tracks how each user's interests move: "
    "Spark cleaning/sessionization, Horovod-trained recurrent model, Spark scoring.",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    package_data={"interest_tracker": ["schemas/*.json"]},
    python_requires=">=3.11,<3.12",
    install_requires=SPARK + PETASTORM,
    extras_require={
        # the model and its training loop (torch CPU wheel pinned in constraints)
        "train": ["torch==2.13.0", "matplotlib"],
        # scoring builds the model inside the executors' Python workers
        "score": ["torch==2.13.0"],
        # horovod is built from its sdist by scripts/build_horovod.sh (no wheel exists)
        "horovod": ["horovod==0.28.1", "cffi", "cloudpickle", "pyyaml"],
        "dev": ["pytest", "pytest-timeout", "duckdb", "matplotlib"],
        "all": ["torch==2.13.0", "matplotlib", "horovod==0.28.1", "cffi", "cloudpickle", "pyyaml",
                "pytest", "pytest-timeout", "duckdb"],
    },
    entry_points={},
)
