"""TensorRT: build an engine from an exported ONNX file, and run one (robot-side: numpy, tensorrt, cuda-python).

TensorRT 10 is weakly typed: an fp16 engine is the fp32 (or fp16) graph built with ``BuilderFlag.FP16``.
TensorRT 11 removed that flag and is always strongly typed: precision follows the graph's own types, so an
fp16 engine is built from the fp16 ONNX graph (``actsac-export --fp16 --trt``). fp32 engines are built without
TF32 so that they match ONNX Runtime closely. An engine only runs on the TensorRT version and GPU that built
it. Device memory and the stream come from cuda-python (``cuda.bindings.runtime``, or the older
``cuda.cudart``), so neither PyTorch nor pycuda is needed.
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
from .verify import TRT_TOLERANCE, check, compare, run_batched, session_runner, tolerances, verification_observations

WORKSPACE_BYTES = 1 << 30
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


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, *, observation_shape: tuple[int, ...],
                 fp16: bool, batch: int | None, max_batch: int = MAX_BATCH, input_name: str = INPUT_NAME) -> None:
    """Build and serialise an engine with one optimisation profile: batch fixed, or 1..max_batch (opt 1)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network()  # explicit batch (10); strongly typed (11)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"{onnx_path}: TensorRT cannot parse it: {errors[:300]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    weakly_typed = hasattr(trt.BuilderFlag, "FP16")  # TensorRT 10; 11 has no precision flags
    if weakly_typed and fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if not fp16 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    low, opt, high = (batch, batch, batch) if batch else (1, 1, max_batch)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, (low, *observation_shape), (opt, *observation_shape), (high, *observation_shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    Path(engine_path).write_bytes(bytes(serialized))


class TensorRTRunner:
    """Run a serialised engine: ``run(observation (B, ...)) -> {output name: array}``, via execute_async_v3.

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
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise TensorRTError(f"{engine_path}: expected one input tensor, found {inputs}")
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n != self.input_name]
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

    def run(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        trt, cudart = self._trt, self._cudart
        host_in = np.ascontiguousarray(observation, dtype=np.float32)
        if not self.context.set_input_shape(self.input_name, host_in.shape):
            raise TensorRTError(f"input shape {host_in.shape} is outside the engine's optimisation profile")
        to_device, to_host = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        pointer = self._buffer(self.input_name, host_in.nbytes)
        _cuda(cudart.cudaMemcpyAsync(pointer, host_in.ctypes.data, host_in.nbytes, to_device, self._stream), "copy in")
        self.context.set_tensor_address(self.input_name, pointer)
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
    observations; the engine is renamed into place only when it passes (raises VerificationError)."""
    onnx_path = Path(onnx_path)
    engine_path = onnx_path.with_suffix(".engine")
    fp16 = metadata.precision == "fp16"
    observations, described = verification_observations(metadata, multiple_of=batch or 1)
    reference = run_batched(session_runner(ort_session(onnx_path)), observations, batch or len(observations))
    tolerance = tolerances(metadata, TRT_TOLERANCE[metadata.precision])

    def build_and_verify(tmp: str) -> None:
        build_engine(onnx_path, tmp, observation_shape=metadata.observation_shape, fp16=fp16, batch=batch)
        with TensorRTRunner(tmp) as runner:
            log(f"verify TensorRT {tensorrt_version()} ({metadata.precision}) vs ONNX Runtime on {described}")
            for size in [batch] if batch else [1, len(observations)]:
                errors = compare(reference, run_batched(runner.run, observations, size), tolerance)
                log(f" batch {size}:")
                for error in errors:
                    log(error.line())
                check(errors, f"TensorRT vs ONNX Runtime at batch {size}")
            latency = time_calls(lambda: runner.run(observations[:batch or 1]), runs=50)
            log(f"TensorRT latency at batch {batch or 1}: {latency.summary()}")

    return atomic_write(engine_path, build_and_verify)
