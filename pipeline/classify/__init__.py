"""Classification of raw events into smart codes, with calibrated confidence and org learning.

    Classifier     rules (structured kinds) + org memory + text model (feed lines)
    Classification the result value
    OrgMemory      per-organisation learning from reviewer decisions
    decide         post or review, with one reason

Exceptions: ``ModelArtifactError`` (missing or incompatible model files), ``MemoryError_``
(malformed persisted memory state). Expected business outcomes (suspense, low confidence,
incomplete events) are data in ``Classification``, never exceptions.
"""

from pipeline.classify.classifier import Classifier
from pipeline.classify.decide import decide
from pipeline.classify.memory import MemoryError_, OrgMemory
from pipeline.classify.model import ModelArtifactError
from pipeline.classify.types import Classification

__all__ = ["Classification", "Classifier", "MemoryError_", "ModelArtifactError", "OrgMemory", "decide"]
