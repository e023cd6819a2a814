"""The native part of the package: the Kafka drain (src/sluice/native/kafkadrain.c), built as an
optional extension — if it cannot be built, Sluice reads Kafka through confluent-kafka alone."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sluice.native._kafkadrain",
            ["src/sluice/native/kafkadrain.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        )
    ]
)
