"""actsac.export: checkpoint -> verified ONNX (and TensorRT) with the metadata the robot side relies on.

Importing this package is robot-side safe (numpy, and onnx or onnxruntime when reading metadata): the torch
export code lives in ``actsac.export.onnx_export`` and the TensorRT code in ``actsac.export.tensorrt``, both
imported only when used.
"""

from .metadata import FORMAT_VERSION, MetadataError, ModelMetadata, read_metadata

__all__ = ["FORMAT_VERSION", "MetadataError", "ModelMetadata", "read_metadata"]
