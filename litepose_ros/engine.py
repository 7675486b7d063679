"""Inference engines: an image batch in, the two LitePose output maps out.

Two implementations of one small interface (:class:`InferenceEngine`):

- ``onnxruntime`` (default): an ONNX Runtime session over a ``.onnx`` file written by ``litepose export``.
  Execution providers are tried in the order given (TensorRT, CUDA, CPU, ...); thread counts and the
  TensorRT / CUDA options that matter on a Jetson (FP16, engine cache directory, device) are
  configurable. This path does not import torch.
- ``torch``: PyTorch eager over any checkpoint form :mod:`litepose_ros.model.checkpoint` accepts, with
  BatchNorm folded, in eval mode under ``torch.inference_mode``.

Given a PyTorch checkpoint (``.pth`` / ``.pt`` / ``.pth.tar`` / ``.ckpt``), the ONNX Runtime engine
exports it in memory on the fly when torch is installed (the export takes about a second); without torch
it raises an error that says to run ``litepose export`` where torch is available.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from litepose_ros.model.architecture import (
    INPUT_MULTIPLE,
    ArchitectureSpec,
    model_facts,
    resolve_architecture,
)

LOGGER = logging.getLogger(__name__)

ENGINE_NAMES = ("onnxruntime", "torch")
_ENGINE_ALIASES = {
    "onnxruntime": "onnxruntime",
    "ort": "onnxruntime",
    "onnx": "onnxruntime",
    "torch": "torch",
    "pytorch": "torch",
}
# ONNX Runtime's worker threads spin-wait between runs only when asked: the one default of the
# library (Estimator, create_engine), `litepose infer` and the node (`engine_spinning`). Spinning
# cuts a little latency on an idle machine; on a shared one (a robot, a busy CPU) 2 spinning
# threads measured about 2x slower than 1, and they burn cores between frames.
DEFAULT_ALLOW_SPINNING = False
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".bin")
METADATA_PREFIX = "litepose."

# Short names accepted in configuration, mapped to ONNX Runtime's provider names.
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}


@runtime_checkable
class InferenceEngine(Protocol):
    """The interface the estimator builds on (keep it stable)."""

    name: str  # "onnxruntime" or "torch"
    num_joints: int
    metadata: dict[str, str]  # variant, num_joints, layout, input_size, architecture (JSON), ...

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """batch: float32 (N, 3, H, W), RGB, ImageNet-normalised, H and W multiples of 64 (16 suffices
        for the network). Returns (stride-4 output (N, 2K, H/4, W/4): K heatmaps then K tags,
        stride-2 output (N, K, H/2, W/2)) as float32 numpy arrays."""
        ...

    def describe(self) -> str:
        """One line for logs: engine, providers, threads, model file."""
        ...


def check_batch(batch: np.ndarray) -> np.ndarray:
    """Validate an input batch; return it as a C-contiguous float32 array (ValueError/TypeError otherwise)."""
    if not isinstance(batch, np.ndarray):
        raise TypeError(f"batch must be a numpy array (N, 3, H, W), got {type(batch).__name__}")
    if not np.issubdtype(batch.dtype, np.floating):
        raise TypeError(
            f"batch must be float32 and ImageNet-normalised, got dtype {batch.dtype} (convert "
            f"with litepose's preprocessing: RGB, /255, minus mean, divided by std)"
        )
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"batch must have shape (N, 3, H, W) (channels first, RGB), got {batch.shape}")
    height, width = batch.shape[2:]
    if batch.shape[0] == 0 or height == 0 or width == 0 or height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise ValueError(
            f"batch height and width must be positive multiples of {INPUT_MULTIPLE} (the pipeline "
            f"pads to multiples of 64) and N >= 1, got {batch.shape}; pad or resize the image"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)


def _check_outputs(stride4: np.ndarray, stride2: np.ndarray, batch: np.ndarray, num_joints: int) -> None:
    n, _, h, w = batch.shape
    expected = ((n, 2 * num_joints, h // 4, w // 4), (n, num_joints, h // 2, w // 2))
    if (stride4.shape, stride2.shape) != expected:
        raise RuntimeError(
            f"model produced outputs {stride4.shape} and {stride2.shape}, expected {expected[0]} "
            f"and {expected[1]}: the model file is not a LitePose network with {num_joints} joints"
        )


def _is_checkpoint_path(path: Path) -> bool:
    return path.suffix.lower() in CHECKPOINT_SUFFIXES


# --- ONNX Runtime --------------------------------------------------------------------------------------
def available_providers() -> list[str]:
    """ONNX Runtime execution providers usable in this installation."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def resolve_providers(providers: Sequence[str] | str | None, allow_fallback: bool = False) -> list[str]:
    """Map provider names / aliases to ONNX Runtime names, checking they are available here.

    A requested provider that this onnxruntime build lacks is an error naming the available ones, unless
    ``allow_fallback`` (then it is skipped with a warning, as long as one requested provider remains).
    Default (None): CPU only.
    """
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [part.strip() for part in providers.split(",") if part.strip()]
    if not providers:
        raise ValueError(
            "providers is empty; give e.g. ['tensorrt', 'cuda', 'cpu'] or leave it unset for CPU"
        )
    available = available_providers()
    resolved, missing = [], []
    for provider in providers:
        name = PROVIDER_ALIASES.get(str(provider).lower(), str(provider))
        if name not in available:
            missing.append(f"{provider} ({name})" if name != provider else name)
        elif name not in resolved:
            resolved.append(name)
    if missing:
        message = (
            f"ONNX Runtime execution provider(s) {missing} are not available in this onnxruntime "
            f"installation; available: {available}. TensorRT/CUDA need the onnxruntime-gpu build (on "
            f"Jetson: the JetPack wheel) and the matching CUDA/TensorRT libraries"
        )
        if not allow_fallback or not resolved:
            raise ValueError(message)
        LOGGER.warning("%s; continuing with %s", message, resolved)
    return resolved


def provider_options_for(
    providers: Sequence[str],
    *,
    fp16: bool = False,
    trt_cache_dir: str | Path | None = None,
    device_id: int = 0,
    trt_workspace_bytes: int | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Provider options, one dict per provider, for the options that matter on a Jetson.

    TensorRT: ``trt_fp16_enable`` (``fp16``), ``trt_engine_cache_enable`` / ``trt_engine_cache_path`` and
    the timing cache (``trt_cache_dir``; building an engine takes minutes on a Nano, the cache makes later
    starts fast), ``trt_max_workspace_size``, ``device_id``. CUDA: ``device_id``,
    ``cudnn_conv_algo_search=HEURISTIC`` (the exhaustive search stalls the first frames),
    ``arena_extend_strategy=kSameAsRequested`` (memory is shared with the CPU on Jetson). ``overrides``
    maps a provider name or alias to extra options that win over these.
    """
    options: list[dict[str, Any]] = []
    for provider in providers:
        if provider == "TensorrtExecutionProvider":
            opts: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": bool(fp16)}
            if trt_cache_dir is not None:
                cache = Path(trt_cache_dir).expanduser()
                cache.mkdir(parents=True, exist_ok=True)
                opts.update(
                    {
                        "trt_engine_cache_enable": True,
                        "trt_engine_cache_path": str(cache),
                        "trt_timing_cache_enable": True,
                        "trt_timing_cache_path": str(cache),
                    }
                )
            if trt_workspace_bytes is not None:
                opts["trt_max_workspace_size"] = int(trt_workspace_bytes)
        elif provider == "CUDAExecutionProvider":
            opts = {
                "device_id": device_id,
                "cudnn_conv_algo_search": "HEURISTIC",
                "arena_extend_strategy": "kSameAsRequested",
            }
        else:
            opts = {}
        for key, extra in (overrides or {}).items():
            if PROVIDER_ALIASES.get(key.lower(), key) == provider:
                opts.update(extra)
        options.append(opts)
    return options


class OnnxRuntimeEngine:
    """ONNX Runtime session over an exported LitePose model."""

    name = "onnxruntime"

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        providers: Sequence[str] | str | None = None,
        threads: int | None = None,
        fp16: bool = False,
        trt_cache_dir: str | Path | None = None,
        device_id: int = 0,
        inter_op_threads: int | None = None,
        allow_provider_fallback: bool = False,
        provider_options: Mapping[str, Mapping[str, Any]] | None = None,
        trt_workspace_bytes: int | None = None,
        allow_spinning: bool | None = DEFAULT_ALLOW_SPINNING,
        source: str | None = None,
    ):
        import onnxruntime

        self.providers_requested = resolve_providers(providers, allow_provider_fallback)
        self.threads = threads
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1 (or None for ONNX Runtime's default), got {threads}")
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = int(inter_op_threads or 1)
        if allow_spinning is not None:
            # Spinning threads cut latency but burn CPU between frames; robots often prefer off.
            options.add_session_config_entry(
                "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
            )
        provider_opts = provider_options_for(
            self.providers_requested,
            fp16=fp16,
            trt_cache_dir=trt_cache_dir,
            device_id=device_id,
            trt_workspace_bytes=trt_workspace_bytes,
            overrides=provider_options,
        )
        if isinstance(model, (bytes, bytearray)):
            model_arg, self.model_path = bytes(model), None
        else:
            path = Path(model)
            if not path.is_file():
                raise ValueError(f"ONNX model file {path} does not exist (create one with `litepose export`)")
            model_arg, self.model_path = str(path), path
        self.source = source or (str(self.model_path) if self.model_path else "<in-memory model>")
        try:
            self.session = onnxruntime.InferenceSession(
                model_arg,
                sess_options=options,
                providers=self.providers_requested,
                provider_options=provider_opts,
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(f"ONNX Runtime could not load {self.source}: {error}") from error
        self.providers = list(self.session.get_providers())
        self.fp16 = fp16
        raw_meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata = {
            key[len(METADATA_PREFIX) :]: value
            for key, value in raw_meta.items()
            if key.startswith(METADATA_PREFIX)
        }
        self.input_name = self.session.get_inputs()[0].name
        outputs = self.session.get_outputs()
        if len(outputs) != 2:
            raise ValueError(
                f"{self.source} has {len(outputs)} outputs; a LitePose model has 2 (stride 4, stride 2)"
            )
        self.output_names = [output.name for output in outputs]
        channels = outputs[1].shape[1] if len(outputs[1].shape) == 4 else None
        if "num_joints" in self.metadata:
            self.num_joints = int(self.metadata["num_joints"])
        elif isinstance(channels, int):
            self.num_joints = channels
            self.metadata["num_joints"] = str(channels)
            LOGGER.warning(
                "%s has no litepose.* metadata (not written by `litepose export`); num_joints %d "
                "taken from its output shape",
                self.source,
                channels,
            )
        else:
            raise ValueError(
                f"{self.source}: cannot tell the joint count (no litepose.num_joints metadata and no "
                f"static channel dimension); re-export it with `litepose export`"
            )
        self.metadata.setdefault("engine", self.name)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = check_batch(batch)
        try:
            stride4, stride2 = self.session.run(self.output_names, {self.input_name: batch})
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(
                f"ONNX Runtime failed on a batch of shape {batch.shape} with {self.source}: {error}. "
                f"(A model exported with --static accepts only its export size.)"
            ) from error
        stride4 = np.asarray(stride4, dtype=np.float32)
        stride2 = np.asarray(stride2, dtype=np.float32)
        _check_outputs(stride4, stride2, batch, self.num_joints)
        return stride4, stride2

    def describe(self) -> str:
        threads = self.threads if self.threads is not None else "default"
        return (
            f"onnxruntime {_ort_version()} providers={','.join(self.providers)} threads={threads} "
            f"model={self.source} variant={self.metadata.get('variant', '?')} joints={self.num_joints} "
            f"precision={self.metadata.get('precision', '?')}"
        )


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


# --- PyTorch -------------------------------------------------------------------------------------------
class TorchEngine:
    """PyTorch eager inference over a checkpoint (BatchNorm folded, eval mode, inference_mode)."""

    name = "torch"

    def __init__(
        self,
        model_path: str | Path | Any,
        *,
        variant: Any = None,
        num_joints: int | None = None,
        threads: int | None = None,
        device: str = "cpu",
        fp16: bool = False,
        fold: bool = True,
        trusted: bool = False,
        input_size: int | None = None,
    ):
        import torch

        from litepose_ros.model.checkpoint import load_checkpoint
        from litepose_ros.model.folding import fold_batch_norm
        from litepose_ros.model.network import LitePoseNet

        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1 (or None for PyTorch's default), got {threads}")
            # Process-wide setting in PyTorch: it applies to every torch model in this process.
            torch.set_num_threads(int(threads))
        if isinstance(model_path, LitePoseNet):
            model, self.source = model_path, "<in-memory model>"
        else:
            model, info = load_checkpoint(model_path, variant=variant, num_joints=num_joints, trusted=trusted)
            self.source = str(model_path)
        model = fold_batch_norm(model) if fold else model.eval()
        if fp16 and device == "cpu":
            raise ValueError("fp16 with the torch engine needs a CUDA device; on CPU use fp32 (the default)")
        self.device = torch.device(device)
        model = model.to(self.device)
        if fp16:
            model = model.half()
        self.model = model
        self.fp16 = fp16
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.num_joints = model.num_joints
        self.metadata = model_facts(model.spec, model.num_joints, input_size or model.spec.img_size)
        self.metadata.update(
            {
                "engine": self.name,
                "precision": "fp16" if fp16 else "fp32",
                "bn_folded": "true" if fold else "false",
            }
        )
        self._torch = torch

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = check_batch(batch)
        torch = self._torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device)
            if self.fp16:
                tensor = tensor.half()
            stride4, stride2 = self.model(tensor)
            stride4 = stride4.float().cpu().numpy()
            stride2 = stride2.float().cpu().numpy()
        _check_outputs(stride4, stride2, batch, self.num_joints)
        return stride4, stride2

    def describe(self) -> str:
        return (
            f"torch {self._torch.__version__} device={self.device} threads={self.threads} "
            f"model={self.source} variant={self.metadata['variant']} joints={self.num_joints} "
            f"precision={self.metadata['precision']}"
        )


# --- factory -------------------------------------------------------------------------------------------
def create_engine(  # noqa: PLR0917 - positional order is the agreed interface
    model_path: str | Path,
    engine: str = "onnxruntime",
    providers: Sequence[str] | str | None = None,
    threads: int | None = None,
    variant: str | Path | Mapping[str, Any] | ArchitectureSpec | None = None,
    num_joints: int | None = None,
    fp16: bool = False,
    trt_cache_dir: str | Path | None = None,
    device: str = "cpu",
    device_id: int = 0,
    allow_provider_fallback: bool = False,
    provider_options: Mapping[str, Mapping[str, Any]] | None = None,
    trusted: bool = False,
    input_size: int | None = None,
    allow_spinning: bool | None = DEFAULT_ALLOW_SPINNING,
) -> InferenceEngine:
    """Create an inference engine for a model file.

    ``engine``: ``"onnxruntime"`` (default; ``.onnx`` files, or a checkpoint exported on the fly when torch
    is installed) or ``"torch"`` (checkpoints in any accepted form). ``providers``: ONNX Runtime providers in
    order of preference, names or aliases (``["tensorrt", "cuda", "cpu"]``); default CPU; a provider this
    installation lacks is an error naming the available ones unless ``allow_provider_fallback``.
    ``threads``: intra-op threads (None: the library default). ``variant`` / ``num_joints``: what the model
    must be (checked against the file; needed only for checkpoints whose architecture cannot be inferred).
    ``fp16``: TensorRT FP16 (ORT) or half precision on CUDA (torch). ``trt_cache_dir``: TensorRT engine
    and timing cache directory. ``trusted``: allow checkpoints that need full unpickling.
    """
    engine_name = _ENGINE_ALIASES.get(str(engine).lower())
    if engine_name is None:
        raise ValueError(f"unknown engine {engine!r}; use one of {list(ENGINE_NAMES)}")
    path = Path(model_path)
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist")

    if engine_name == "torch":
        if path.suffix.lower() == ".onnx":
            raise ValueError(
                f"{path} is an ONNX model; the torch engine needs a PyTorch checkpoint. Use "
                f"engine='onnxruntime' for .onnx files"
            )
        if importlib.util.find_spec("torch") is None:
            raise ValueError(
                "the torch engine needs PyTorch, which is not installed; use engine='onnxruntime' "
                "with an exported .onnx model"
            )
        return TorchEngine(
            path,
            variant=variant,
            num_joints=num_joints,
            threads=threads,
            device=device,
            fp16=fp16,
            trusted=trusted,
            input_size=input_size,
        )

    ort_kwargs = dict(
        providers=providers,
        threads=threads,
        fp16=fp16,
        trt_cache_dir=trt_cache_dir,
        device_id=device_id,
        allow_provider_fallback=allow_provider_fallback,
        provider_options=provider_options,
        allow_spinning=allow_spinning,
    )
    if _is_checkpoint_path(path) or path.suffix.lower() != ".onnx":
        if importlib.util.find_spec("torch") is None:
            raise ValueError(
                f"{path} is not an .onnx file. Convert it where PyTorch is installed with "
                f"`litepose export {path} -o model.onnx`, then use the .onnx file"
            )
        model_bytes = _export_in_memory(path, variant, num_joints, trusted, input_size)
        result: InferenceEngine = OnnxRuntimeEngine(
            model_bytes, source=f"{path} (exported on the fly)", **ort_kwargs
        )
        return result
    onnx_engine = OnnxRuntimeEngine(path, **ort_kwargs)
    _check_expected(onnx_engine, variant, num_joints)
    return onnx_engine


def _export_in_memory(
    path: Path, variant: Any, num_joints: int | None, trusted: bool, input_size: int | None
) -> bytes:
    from litepose_ros.model.checkpoint import load_checkpoint
    from litepose_ros.model.onnx_export import export_onnx

    LOGGER.info("exporting %s to ONNX in memory (run `litepose export` once to skip this step)", path)
    model, _ = load_checkpoint(path, variant=variant, num_joints=num_joints, trusted=trusted)
    proto, result = export_onnx(model, None, input_size=input_size)
    if not result.checker_ok:
        raise ValueError(f"exporting {path} produced an invalid ONNX model: {result.checker_message}")
    return proto.SerializeToString()


def _check_expected(engine: OnnxRuntimeEngine, variant: Any, num_joints: int | None) -> None:
    if num_joints is not None and int(num_joints) != engine.num_joints:
        raise ValueError(
            f"{engine.source} has {engine.num_joints} joints but {num_joints} were requested "
            f"(layout {engine.metadata.get('layout', '?')})"
        )
    if variant is not None and "architecture" in engine.metadata:
        wanted = resolve_architecture(variant)
        actual = ArchitectureSpec.from_dict(json.loads(engine.metadata["architecture"]))
        if not wanted.same_network(actual):
            raise ValueError(
                f"{engine.source} is variant {actual.released_name() or 'custom'}, not the requested "
                f"{wanted.released_name() or 'architecture'}"
            )
    elif variant is not None:
        _check_variant_from_graph(engine, resolve_architecture(variant))


def graph_weight_count(model_path: Path) -> int | None:
    """Elements of every convolution kernel in an ONNX file (what identifies a LitePose variant
    without metadata), or None when it cannot be read (the onnx package is missing, or a kernel
    is not a stored initializer)."""
    try:
        import onnx
    except ImportError:
        return None
    proto = onnx.load(str(model_path))
    shapes = {init.name: tuple(init.dims) for init in proto.graph.initializer}
    total = 0
    for node in proto.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            if len(node.input) < 2 or node.input[1] not in shapes:
                return None
            total += int(np.prod(shapes[node.input[1]], dtype=np.int64))
    return total


def _check_variant_from_graph(engine: OnnxRuntimeEngine, wanted: ArchitectureSpec) -> None:
    """The requested variant against a file without litepose.architecture metadata: its
    convolution weight count must be the variant's (every released variant differs)."""
    from litepose_ros.model.architecture import RELEASED_VARIANTS, released_architecture
    from litepose_ros.model.cost import count_cost

    def weights(spec: ArchitectureSpec) -> tuple[int, int]:
        """The kernel elements of the plain export and of one with the deconv-as-conv rewrite,
        which turns each 4x4 transposed convolution (16 taps) into a 3x3 one with 4 phases (36)."""
        layers = count_cost(spec, engine.num_joints).layers
        deconv = sum(layer.weights for layer in layers if layer.kind == "deconv")
        plain = sum(layer.weights for layer in layers)
        return plain, plain - deconv + deconv * 36 // 16

    name = wanted.released_name() or "architecture"
    found = graph_weight_count(engine.model_path) if engine.model_path is not None else None
    if found is None:
        raise ValueError(
            f"cannot check that {engine.source} is variant {name}: the file has no litepose.* metadata "
            "and its graph could not be read (install the onnx package, or re-export the model with "
            "`litepose export`); set variant:=auto (or leave --variant out) to use it unchecked"
        )
    if found in weights(wanted):
        return
    actual = next((v for v in RELEASED_VARIANTS if found in weights(released_architecture(v))), None)
    raise ValueError(
        f"{engine.source} has no litepose.* metadata; its graph holds {found} convolution weights, "
        + (f"which is variant {actual}" if actual else "which is no released variant")
        + f", not the requested {name} ({' or '.join(map(str, weights(wanted)))} for {engine.num_joints} "
        "joints, without or with the export rewrites)"
    )
