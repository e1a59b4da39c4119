"""TensorRT: build an engine from an exported ONNX file, and run one (robot-side: numpy, tensorrt, cuda-python).

TensorRT 10 is weakly typed: an fp16 engine is the fp32 (or fp16) graph built with ``BuilderFlag.FP16``.
TensorRT 11 removed that flag and is always strongly typed: precision follows the graph's own types, so an
fp16 engine is built from the fp16 ONNX graph (``actsac-export --fp16 --trt``). fp32 engines are built without
TF32 so that they match ONNX Runtime closely. An engine only runs on the TensorRT version and GPU that built
it. Device memory and the stream come from cuda-python (``cuda.bindings.runtime``, or the older
``cuda.cudart``), so neither PyTorch nor pycuda is needed.

A camera model's engine takes the same inputs as its ONNX graph: ``observation`` (float32) and one
``image.<camera>`` per camera (uint8 (B, H, W, 3) RGB; the cast and normalisation are layers of the engine).
Every input gets an optimisation profile from the metadata's shapes; with image inputs the profile's largest
batch is ``IMAGE_MAX_BATCH``, not ``MAX_BATCH``: TensorRT sizes the context's activation memory for the largest
batch of the profile, and a thousand camera frames through a ResNet would not fit on a Jetson.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from actsac._cli import first_line
from actsac.files import atomic_write
from actsac.onnx_runtime import ort_session
from actsac.timing import time_calls

from .metadata import INPUT_NAME, MAX_BATCH, ModelMetadata
from .verify import (TRT_TOLERANCE, Inputs, batch_size, check, compare, first_rows, run_batched, session_runner,
                     tolerances, verification_inputs)

WORKSPACE_BYTES = 1 << 30
IMAGE_MAX_BATCH = 32  # the profile's largest batch when the engine takes images (the verification set fits)
NEEDED = "TensorRT and a CUDA GPU are needed"


class TensorRTError(RuntimeError):
    """A TensorRT build or run failure, in one line."""


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart  # cuda-python < 12.6
    return cudart


def _cuda(result, what: str):
    """Unpack a cuda-python ``(error, *values)`` tuple, raising TensorRTError on a CUDA error."""
    err, *values = result
    if int(err) != 0:
        raise TensorRTError(f"CUDA {what} failed: {err}")
    return values[0] if len(values) == 1 else values


def missing_tensorrt_reason() -> str | None:
    """None when TensorRT can run here, else one line saying what is missing."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return f"{NEEDED}: the tensorrt Python package is not installed"
    except Exception as exc:  # installed, but its shared libraries do not load (OSError, RuntimeError...)
        return f"{NEEDED}: TensorRT is installed but does not load ({first_line(exc, 200)})"
    try:
        cudart = _cudart()
    except ImportError:
        return f"{NEEDED}: the cuda-python package (cuda.bindings / cuda.cudart) is not installed"
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception as exc:  # no CUDA runtime library
        return f"{NEEDED}: the CUDA runtime does not load ({first_line(exc, 200)})"
    if int(err) != 0 or count == 0:
        return f"{NEEDED}: no CUDA GPU found" + (f" ({err})" if int(err) != 0 else "")
    return None


def tensorrt_version() -> str:
    import tensorrt as trt

    return trt.__version__


def profile_batches(batch: int | None, max_batch: int) -> tuple[int, int, int]:
    """(min, opt, max) batch of the optimisation profile: ``batch`` fixed, or 1..max_batch optimised for 1."""
    return (batch, batch, batch) if batch else (1, 1, max_batch)


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, *,
                 input_shapes: dict[str, tuple[int, ...]] | None = None, fp16: bool, batch: int | None,
                 max_batch: int | None = None, observation_shape: tuple[int, ...] | None = None,
                 input_name: str = INPUT_NAME) -> None:
    """Build and serialise an engine with one optimisation profile that covers every input: batch fixed, or
    1..max_batch (opt 1). ``input_shapes``: {input name: shape without the batch dim} for every graph input
    (``ModelMetadata.input_shapes``); a state-only model may give ``observation_shape`` (and ``input_name``)
    instead. ``max_batch`` defaults to MAX_BATCH, or IMAGE_MAX_BATCH when there are inputs beside the
    observation (images)."""
    import tensorrt as trt

    if input_shapes is None:
        if observation_shape is None:
            raise ValueError("build_engine needs input_shapes (or observation_shape for a state-only model)")
        input_shapes = {input_name: tuple(observation_shape)}
    if max_batch is None:
        max_batch = MAX_BATCH if len(input_shapes) == 1 else IMAGE_MAX_BATCH
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network()  # explicit batch (10); strongly typed (11)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"{onnx_path}: TensorRT cannot parse it: {errors[:300]}")
    network_inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    if sorted(network_inputs) != sorted(input_shapes):
        raise TensorRTError(f"{onnx_path}: the graph's inputs {network_inputs} are not the metadata's "
                            f"{list(input_shapes)}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    weakly_typed = hasattr(trt.BuilderFlag, "FP16")  # TensorRT 10; 11 has no precision flags
    if weakly_typed and fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if not fp16 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    low, opt, high = profile_batches(batch, max_batch)
    profile = builder.create_optimization_profile()
    for name, shape in input_shapes.items():
        profile.set_shape(name, (low, *shape), (opt, *shape), (high, *shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    Path(engine_path).write_bytes(bytes(serialized))


class TensorRTRunner:
    """Run a serialised engine: ``run({input name: array (B, ...)}) -> {output name: array}``, via
    execute_async_v3. Every engine input must be given, in the engine's own dtype (uint8 images stay uint8; a
    float observation is converted to float32); an engine with the one input ``observation`` also takes the
    bare array, ``run(observation)``.

    Device buffers are allocated for the largest batch seen so far and reused.
    """

    def __init__(self, engine_path: str | os.PathLike):
        import tensorrt as trt

        self._trt, self._cudart = trt, _cudart()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise TensorRTError(f"{engine_path}: cannot load the engine (built by another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if not self.input_names:
            raise TensorRTError(f"{engine_path}: the engine has no input tensor")
        self.input_name = INPUT_NAME if INPUT_NAME in self.input_names else self.input_names[0]
        self.input_dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in self.input_names}
        self.output_names = [n for n in names if n not in self.input_names]
        self._stream = _cuda(self._cudart.cudaStreamCreate(), "stream creation")
        self._device: dict[str, tuple[int, int]] = {}  # name -> (pointer, capacity in bytes)

    def _buffer(self, name: str, nbytes: int) -> int:
        pointer, capacity = self._device.get(name, (0, 0))
        if nbytes > capacity:
            if pointer:
                _cuda(self._cudart.cudaFree(pointer), "free")
            pointer, capacity = int(_cuda(self._cudart.cudaMalloc(nbytes), "malloc")), nbytes
            self._device[name] = (pointer, capacity)
        return pointer

    def host_inputs(self, inputs: Inputs | np.ndarray) -> Inputs:
        """Each engine input as a contiguous host array of the engine's dtype; TensorRTError (one line) for a
        missing or unknown input, or an image that is not uint8."""
        if not isinstance(inputs, dict):
            if len(self.input_names) != 1:
                raise TensorRTError(f"this engine takes the inputs {self.input_names}: pass a dict of them")
            inputs = {self.input_names[0]: inputs}
        missing = [n for n in self.input_names if n not in inputs]
        unknown = sorted(set(inputs) - set(self.input_names))
        if missing or unknown:
            raise TensorRTError(f"inputs {sorted(inputs)} given, the engine takes {self.input_names}")
        host = {}
        for name in self.input_names:
            value, dtype = np.asarray(inputs[name]), self.input_dtypes[name]
            if dtype.kind in "iub" and value.dtype != dtype:  # images: never a silent cast from float
                raise TensorRTError(f"input '{name}': {value.dtype} given, the engine takes {dtype}")
            host[name] = np.ascontiguousarray(value, dtype=dtype)
        try:
            batch_size(host)
        except ValueError as exc:
            raise TensorRTError(str(exc)) from None
        return host

    def run(self, inputs: Inputs | np.ndarray) -> dict[str, np.ndarray]:
        trt, cudart = self._trt, self._cudart
        host_in = self.host_inputs(inputs)  # alive until the stream is synchronised
        to_device, to_host = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, host in host_in.items():
            if not self.context.set_input_shape(name, host.shape):
                raise TensorRTError(f"input '{name}' of shape {host.shape} is outside the engine's optimisation "
                                    f"profile")
            pointer = self._buffer(name, max(host.nbytes, 1))
            _cuda(cudart.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, to_device, self._stream), "copy in")
            self.context.set_tensor_address(name, pointer)
        outputs = {}
        for name in self.output_names:
            dtype = trt.nptype(self.engine.get_tensor_dtype(name))
            outputs[name] = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype)
            self.context.set_tensor_address(name, self._buffer(name, max(outputs[name].nbytes, 1)))
        if not self.context.execute_async_v3(int(self._stream)):
            raise TensorRTError("execute_async_v3 failed")
        for name, host in outputs.items():
            _cuda(cudart.cudaMemcpyAsync(host.ctypes.data, self._device[name][0], host.nbytes, to_host,
                                         self._stream), "copy out")
        _cuda(cudart.cudaStreamSynchronize(self._stream), "stream synchronize")
        return {name: host.astype(np.float32, copy=False) for name, host in outputs.items()}

    def close(self) -> None:
        for pointer, _ in self._device.values():
            self._cudart.cudaFree(pointer)
        self._device.clear()
        if self._stream is not None:
            self._cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __enter__(self) -> "TensorRTRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def export_engine(onnx_path: str | os.PathLike, metadata: ModelMetadata, *, batch: int | None,
                  log=print) -> Path:
    """Build ``<onnx stem>.engine`` beside the ONNX file and check it against ONNX Runtime on the verification
    inputs (observations, and images for a camera model); the engine is renamed into place only when it passes
    (raises VerificationError)."""
    onnx_path = Path(onnx_path)
    engine_path = onnx_path.with_suffix(".engine")
    fp16 = metadata.precision == "fp16"
    inputs, described = verification_inputs(metadata, multiple_of=batch or 1)
    rows = batch_size(inputs)
    reference = run_batched(session_runner(ort_session(onnx_path)), inputs, batch or rows)
    tolerance = tolerances(metadata, TRT_TOLERANCE[metadata.precision])
    max_batch = MAX_BATCH if not metadata.cameras else max(IMAGE_MAX_BATCH, rows)

    def build_and_verify(tmp: str) -> None:
        build_engine(onnx_path, tmp, input_shapes=metadata.input_shapes, fp16=fp16, batch=batch,
                     max_batch=max_batch)
        with TensorRTRunner(tmp) as runner:
            log(f"verify TensorRT {tensorrt_version()} ({metadata.precision}) vs ONNX Runtime on {described}")
            for size in [batch] if batch else [1, rows]:
                errors = compare(reference, run_batched(runner.run, inputs, size), tolerance)
                log(f" batch {size}:")
                for error in errors:
                    log(error.line())
                check(errors, f"TensorRT vs ONNX Runtime at batch {size}")
            one = first_rows(inputs, batch or 1)
            latency = time_calls(lambda: runner.run(one), runs=50)
            log(f"TensorRT latency at batch {batch or 1}: {latency.summary()}")

    return atomic_write(engine_path, build_and_verify)
