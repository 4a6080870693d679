"""Feature Store Local: a SageMaker Feature Store emulator (control plane, runtime, offline store).

Run it with `python -m featurestream.dev.feature_store`; drive it from Python with `EmulatorProcess`.
"""

from featurestream.dev.feature_store.process import EmulatorProcess, EmulatorStartError

__all__ = ["EmulatorProcess", "EmulatorStartError"]
