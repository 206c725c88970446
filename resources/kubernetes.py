"""Kubernetes: trainer and evaluator pods on GPU nodes, launched through Dagster Pipes.

`KubernetesGpuLauncher` stands in for the `gpu` resource when the code location runs on a cluster
(TR_GEMMA_DEPLOYMENT=kubernetes, see `resources.build_resources`). It answers the same calls as
`GpuResource` (`resolve_device`, `preflight`, `run_module`), but instead of a child process it
submits one pod per step through `dagster_k8s.PipesK8sClient`; logs and metrics stream back into
the run exactly as they do locally. The run pods themselves stay on CPU nodes; only these pods
request GPUs.

A pod's size comes from the recipe and the memory estimate (`tr_gemma.training.memory`):

  GPUs         training: the fewest GPUs of `gpu_memory_gib` on which the step fits. Every GPU
               holds its own micro-batch (activations, the 262k-vocabulary logits, CUDA context);
               only the base weights and LoRA are split when there are several (FSDP, launched
               with torchrun). A step whose per-GPU part alone does not fit fails before any pod
               is created. `gpus_per_size` asks for more GPUs (throughput), never fewer.
               evaluation: one GPU holding the weights (NF4, or bf16 without load_in_4bit).
               any other Pipes module: one GPU with bf16 weights when its extras ask for
               device "cuda", else a CPU pod (two bf16 copies in host memory, e.g. a merge).
  host memory  the bf16 checkpoint (read on the host before quantising) + 8 GiB per process
               + the /dev/shm volume; request = limit, so a multi-hour run is never evicted for a
               neighbour's burst.
  CPUs         `cpus_per_gpu` per process (request only: no CPU limit, no throttling).

dagster_k8s and the kubernetes client are imported only when a pod is launched, so loading the
code location stays fast in every deployment.
"""

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from tr_gemma.gemma3_shapes import SHAPES as GEMMA3_SHAPES
from tr_gemma.gemma3_shapes import text_config as published_text_config
from tr_gemma.training.distributed import STRATEGY_ENV, unless_sharded
from tr_gemma.training.kept_outputs import KEPT_PROJECTIONS

GIB = 2**30
DEPLOYMENT_ENV = "TR_GEMMA_DEPLOYMENT"
PER_PROCESS_HOST_BYTES = 8 * GIB  # Python, CUDA context, tokenizer, data loading, Pipes
EVALUATION_WORKING_BYTES = 4 * GIB  # lm-eval's scoring batches ('auto' batch size fills what is left)
MIN_HOST_MEMORY_GIB = 16

# Published shapes, so a pod can be sized before its checkpoint is on disk (its config.json wins).
GEMMA3_TEXT_CONFIGS: dict[str, dict] = {size: published_text_config(size) for size in GEMMA3_SHAPES}


class KubernetesGpuLauncher(dg.ConfigurableResource):
    """The `gpu` resource on Kubernetes: each training or evaluation step runs in its own pod on a
    GPU node (dagster_k8s PipesK8sClient), sized from the recipe and the memory estimate.

    The trainer pod mounts the same volumes as the run pod (artifacts and model cache, at the same
    paths), reads HF_TOKEN from a Kubernetes Secret (never from this config) and reports back
    through Pipes. The run pod's service account needs create/get/delete on pods and get on
    pods/log in `namespace` (docs/deployment.md, RBAC).
    """

    namespace: str = Field(default="", description="Namespace of the GPU pods ('' = the run pod's own namespace).")
    image: str = Field(default="", description="Image of the GPU pods ('' = the image of the code location that launched the run).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(default="IfNotPresent")
    image_pull_secrets: list[str] = Field(default=[], description="Secrets for a private registry.")
    service_account_name: str = Field(default="", description="Service account of the GPU pods ('' = the namespace default; they need no API access).")
    gpu_resource_name: str = Field(default="nvidia.com/gpu", description="Extended resource the NVIDIA device plugin advertises.")
    gpu_memory_gib: float = Field(default=80.0, gt=0, description="Memory of one GPU of the GPU node pool (H100/A100 80GB: 80).")
    usable_memory_fraction: float = Field(default=0.92, gt=0, le=1, description="Share of a GPU's memory a step may plan to use.")
    max_gpus_per_pod: int = Field(default=8, gt=0, description="GPUs of the largest GPU node.")
    gpus_per_size: dict[str, int] = Field(default={}, description="Training GPUs per model size, when more than needed are wanted (e.g. {'27b': 4}).")
    cpus_per_gpu: int = Field(default=8, gt=0, description="CPU request per GPU (no CPU limit).")
    shm_size_gib: int = Field(default=8, gt=0, description="/dev/shm (memory-backed) for data loading and NCCL; counts toward host memory.")
    gpu_node_selector: dict[str, str] = Field(
        default={"nvidia.com/gpu.present": "true"},
        description="Labels of the GPU nodes (GPU feature discovery sets nvidia.com/gpu.present).",
    )
    gpu_tolerations: list[str] = Field(
        default=["nvidia.com/gpu:NoSchedule"],
        description="Taints of the GPU nodes to tolerate, kubectl syntax key[=value][:Effect].",
    )
    hf_token_secret_name: str = Field(default="tr-gemma-hf-token", description="Secret holding the Hugging Face token.")
    hf_token_secret_key: str = Field(default="HF_TOKEN", description="Key of the token in that Secret.")
    artifacts_claim_name: str = Field(default="tr-gemma-artifacts", description="ReadWriteMany PVC of the artifact store.")
    artifacts_mount_path: str = Field(default="/data/artifacts", description="Where run and GPU pods mount it (the artifact root).")
    cache_claim_name: str = Field(default="tr-gemma-cache", description="ReadWriteMany PVC of the model cache (checkpoints, HF cache).")
    cache_mount_path: str = Field(default="/data/cache", description="Where run and GPU pods mount it.")
    extra_env: dict[str, str] = Field(default={}, description="More environment variables of the GPU pods (no secrets).")
    run_as_user: int = Field(default=1000, ge=0, description="UID/GID of the GPU pods and fsGroup of their volumes (the image's user).")
    kubeconfig_file: str = Field(default="", description="'' = in-cluster config inside a pod, else ~/.kube/config.")
    poll_interval_s: float = Field(default=10.0, gt=0, description="Seconds between pod status polls.")
    pod_wait_timeout_s: float = Field(default=86_400.0, ge=0, description="Give up on a pod after this many seconds (0 = never).")

    # --- the GpuResource calls the assets make ---------------------------------------------------

    def resolve_device(self) -> str:
        """The pods run on GPU nodes: always cuda (no nvidia-smi in the CPU run pod)."""
        return "cuda"

    @property
    def shards_training(self) -> bool:
        """The pod plan decides the GPU count (and with it FSDP) itself; the preflight estimate is one GPU's."""
        return False

    def preflight(self, estimate_bytes: float, described: str, what: str, shardable_bytes: float = 0.0) -> str:
        """Whether the step can fit at all is decided when its pod is planned (`run_module`),
        before any pod is created or weights load; here only the device is named."""
        return "cuda"

    @contextlib.contextmanager
    def reserved(self, context: dg.AssetExecutionContext) -> Iterator[None]:
        """Nothing to hold here: each step gets its own pod, and the scheduler gives a GPU to one pod at a time."""
        yield

    def run_module(self, context: dg.AssetExecutionContext, module: str, extras: dict) -> dg.PipesClientCompletedInvocation:
        """Run `python -m module` (torchrun on several GPUs) in its own pod as a Pipes session."""
        from dagster_k8s import PipesK8sClient
        from kubernetes.client.exceptions import ApiException

        size = context.partition_key
        self._refuse_unmounted_paths(extras)
        plan = plan_pod(self, size, module, recipe=extras.get("recipe"),
                        text_config=_checkpoint_text_config(extras.get("model_dir") or extras.get("base_model_dir")),
                        load_in_4bit=bool(extras.get("load_in_4bit", True)), device=extras.get("device", "cpu"))
        image = self.image or _code_location_image(context)
        if not image:
            raise dg.Failure("Kubernetes launcher: no image for the GPU pod. Set TR_GEMMA_K8S_IMAGE "
                             "(the run has no code-location image to reuse).", allow_retries=False)
        context.log.info(f"Pod for {plan.role} ({module}) of Gemma 3 {size}: {plan.describe()}; image {image}.")
        client = PipesK8sClient(kubeconfig_file=self.kubeconfig_file or None, poll_interval=self.poll_interval_s)
        try:
            return client.run(
                context=context,
                extras=extras,
                namespace=self.namespace or None,
                base_pod_meta=pod_meta(plan),
                base_pod_spec=pod_spec(self, plan, image),
                pod_wait_timeout=self.pod_wait_timeout_s,
            )
        except ApiException as exc:
            if exc.status in (401, 403):
                raise dg.Failure(
                    f"Kubernetes refused to create the {plan.role} pod ({exc.status} {exc.reason}): "
                    f"{_api_message(exc)}. The run pod's service account needs create, get, list, "
                    "watch and delete on pods and get on pods/log in namespace "
                    f"'{self.namespace or 'of the run'}' (deploy/k8s/rbac.yaml).",
                    allow_retries=False,
                ) from None
            raise

    # --- helpers ---------------------------------------------------------------------------------

    def checkpoint_cache_dir(self) -> str:
        """Where the run pods keep converted and downloaded checkpoints (on the cache volume)."""
        return str(PurePosixPath(self.cache_mount_path) / "tr_gemma")

    def _refuse_unmounted_paths(self, extras: dict) -> None:
        """Every file the pod reads or writes must be on a volume it mounts, at the same path."""
        mounts = [PurePosixPath(self.artifacts_mount_path), PurePosixPath(self.cache_mount_path)]
        outside = {key: value for key, value in extras.items()
                   if key.endswith(("_dir", "_path")) and isinstance(value, str) and value
                   and not any(PurePosixPath(value).is_relative_to(m) for m in mounts)}
        if outside:
            raise dg.Failure(
                f"Kubernetes launcher: the GPU pod would not see {outside}: only "
                f"{self.artifacts_mount_path} (artifacts) and {self.cache_mount_path} (model cache) are "
                "mounted. Keep the artifact root and the checkpoint cache on those volumes "
                "(build_resources does so when TR_GEMMA_DEPLOYMENT=kubernetes).",
                allow_retries=False,
            )


@dataclass(frozen=True)
class PodPlan:
    """What one GPU pod asks the cluster for, and why."""

    size: str
    module: str
    role: Literal["training", "evaluation", "worker"]
    gpus: int
    per_gpu_bytes: float
    host_memory_gib: int
    cpus: int
    estimate: str

    @property
    def command(self) -> list[str]:
        from tr_gemma.training.distributed import launch_command  # the launch GpuResource uses too

        return launch_command("python", self.module, self.gpus if self.role == "training" else 1)

    @property
    def component(self) -> str:
        return {"training": "trainer", "evaluation": "evaluator"}.get(self.role, "worker")

    def describe(self) -> str:
        gpus = f"{self.gpus} GPU(s) at about {self.per_gpu_bytes / GIB:.1f} GiB each" if self.gpus else "no GPU"
        return f"{gpus}, {self.host_memory_gib} GiB host memory, {self.cpus} CPUs (estimate {self.estimate})"


def step_role(module: str) -> str:
    """training (tr_gemma.training.*), evaluation (tr_gemma.evaluation.*), else worker."""
    for role in ("training", "evaluation"):
        if module.startswith(f"tr_gemma.{role}."):
            return role
    return "worker"


def plan_pod(launcher: KubernetesGpuLauncher, size: str, module: str, recipe=None,
             text_config: Optional[dict] = None, load_in_4bit: bool = True, device: str = "cuda") -> PodPlan:
    """Size the pod of one step from the recipe and the memory estimate (module docstring).

    `recipe`: a Recipe, its model_dump() (as the training asset passes it) or None (the size's
    recipe file). `text_config`: the checkpoint's config, else the published shapes of `size`.
    `device`: what the step asked for in its extras; other modules (worker) get a GPU only for
    "cuda" and then hold the bf16 weights, and otherwise run as a CPU pod.
    """
    from tr_gemma.training.memory import estimate_training_memory

    config = text_config or GEMMA3_TEXT_CONFIGS.get(size)
    if config is None:
        raise dg.Failure(f"Kubernetes launcher: no model shapes for size '{size}'.", allow_retries=False)
    training, lora = _recipe_sections(size, recipe)

    def estimate_with(sharded: bool):
        def lever(name: str) -> bool:  # off under FSDP, as in the trainer
            return unless_sharded(bool(training.get(name, False)), sharded)

        return estimate_training_memory(config, training["per_device_train_batch_size"],
                                        training["max_length"], lora["r"],
                                        attention=training.get("attn_implementation", "sdpa"),
                                        offloading=lever("activation_offloading"),
                                        fused_norms=lever("fused_norm_activation"),
                                        checkpointing=bool(training.get("gradient_checkpointing", True)),
                                        lora_dropout=float(lora.get("lora_dropout", 0.05)) > 0,
                                        offloaded_layers=training.get("offloaded_layers"),
                                        compact_masks=lever("compact_dropout_masks"),
                                        cuda_graphs=lever("cuda_graph_layers"),
                                        dropout_kept=None if lever("fused_lora") else "copy",
                                        kept_outputs=lever("keep_projection_outputs"),
                                        kernel_dropout=lever("dropout_in_lora_kernels"),
                                        kept_projections=tuple(training.get("kept_projections", KEPT_PROJECTIONS)),
                                        kernel_bits=lever("kernel_dropout_bitmask"))

    estimate = estimate_with(sharded=False)
    bf16_bytes = _parameter_count(config) * 2
    usable = launcher.gpu_memory_gib * GIB * launcher.usable_memory_fraction
    gpu_text = f"{launcher.gpu_memory_gib:g} GiB GPUs ({launcher.usable_memory_fraction:.0%} usable)"
    role = step_role(module)
    host_copies = 1
    if role == "training":
        if estimate.total > usable:  # several GPUs: the pod trains under FSDP
            estimate = estimate_with(sharded=True)
        replicated = estimate.activations + estimate.logits + estimate.fixed  # every GPU's own micro-batch
        sharded = estimate.weights + estimate.lora  # split across the pod's GPUs (FSDP)
        if replicated >= usable:
            raise dg.Failure(
                f"QLoRA of Gemma 3 {size} needs about {replicated / GIB:.1f} GiB per GPU for its micro-batch "
                f"alone ({estimate.describe()}), more than {gpu_text}: more GPUs do not help. Lower "
                "per_device_train_batch_size or max_length (the 262k-vocabulary logits grow with batch x "
                "length), or use larger GPUs.", allow_retries=False)
        needed = 1 if replicated + sharded <= usable else math.ceil(sharded / (usable - replicated))
        gpus = max(needed, launcher.gpus_per_size.get(size, needed))
        per_gpu = replicated + sharded / gpus
        described = estimate.describe()
    elif role == "evaluation" or device == "cuda":
        weights = estimate.weights if role == "evaluation" and load_in_4bit else bf16_bytes
        per_gpu = weights + estimate.fixed + EVALUATION_WORKING_BYTES
        if per_gpu > usable:
            hint = "Score in 4-bit (load_in_4bit) or use larger GPUs." if role == "evaluation" else "Use larger GPUs."
            raise dg.Failure(f"{module} for Gemma 3 {size} needs about {per_gpu / GIB:.1f} GiB on one GPU; "
                             f"{gpu_text} are too small. {hint}", allow_retries=False)
        gpus = 1
        precision = "NF4" if weights is estimate.weights else "bf16"
        described = (f"{per_gpu / GIB:.1f} GiB (weights {weights / GIB:.1f} {precision}, fixed "
                     f"{estimate.fixed / GIB:.1f}, batches {EVALUATION_WORKING_BYTES / GIB:.1f})")
    else:  # a CPU step (e.g. merging an adapter into a bf16 copy): base and result in host memory
        gpus, per_gpu, host_copies = 0, 0.0, 2
        described = f"CPU, {host_copies} bf16 copies of {bf16_bytes / GIB:.1f} GiB in host memory"
    if gpus > launcher.max_gpus_per_pod:
        raise dg.Failure(f"Gemma 3 {size} needs {gpus} of the {gpu_text} in one pod, more than "
                         f"max_gpus_per_pod={launcher.max_gpus_per_pod}.", allow_retries=False)
    processes = max(gpus, 1)
    host_bytes = bf16_bytes * host_copies + PER_PROCESS_HOST_BYTES * processes + launcher.shm_size_gib * GIB
    return PodPlan(
        size=size, module=module, role=role, gpus=gpus, per_gpu_bytes=per_gpu,
        host_memory_gib=max(MIN_HOST_MEMORY_GIB, math.ceil(host_bytes / GIB)),
        cpus=launcher.cpus_per_gpu * processes, estimate=described,
    )


def pod_spec(launcher: KubernetesGpuLauncher, plan: PodPlan, image: str) -> dict:
    """The PodSpec (Kubernetes API field names) of a planned GPU pod. PipesK8sClient adds the
    pod name, Dagster's labels and the Pipes bootstrap variables to the first container."""
    env = [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
        {"name": "HF_HOME", "value": str(PurePosixPath(launcher.cache_mount_path) / "huggingface")},
        {"name": "TR_GEMMA_CACHE", "value": launcher.checkpoint_cache_dir()},
        # The token comes from the Secret at container start; it never passes through Dagster.
        # optional: the embedded 270m and local checkpoints need no token, and a missing Secret
        # would otherwise leave the pod waiting in CreateContainerConfigError.
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": launcher.hf_token_secret_name, "key": launcher.hf_token_secret_key, "optional": True}}},
    ]
    if plan.gpus > 1 and plan.role == "training":
        env.append({"name": STRATEGY_ENV, "value": "fsdp"})  # the weights are what is split
    env += [{"name": key, "value": value} for key, value in launcher.extra_env.items()]
    memory = f"{plan.host_memory_gib}Gi"
    requests, limits = {"memory": memory, "cpu": str(plan.cpus)}, {"memory": memory}
    if plan.gpus:
        requests[launcher.gpu_resource_name] = limits[launcher.gpu_resource_name] = str(plan.gpus)
    spec = {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": launcher.run_as_user, "runAsGroup": launcher.run_as_user,
                            "fsGroup": launcher.run_as_user},
        "containers": [{
            "name": plan.component,
            "image": image,
            "imagePullPolicy": launcher.image_pull_policy,
            "command": plan.command,
            "env": env,
            "resources": {"requests": requests, "limits": limits},
            "volumeMounts": [
                {"name": "artifacts", "mountPath": launcher.artifacts_mount_path},
                {"name": "model-cache", "mountPath": launcher.cache_mount_path},
                {"name": "dshm", "mountPath": "/dev/shm"},
            ],
            "securityContext": {"allowPrivilegeEscalation": False},
        }],
        "volumes": [
            {"name": "artifacts", "persistentVolumeClaim": {"claimName": launcher.artifacts_claim_name}},
            {"name": "model-cache", "persistentVolumeClaim": {"claimName": launcher.cache_claim_name}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{launcher.shm_size_gib}Gi"}},
        ],
    }
    if plan.gpus:  # CPU pods go wherever the scheduler puts them, never onto the GPU pool
        spec["nodeSelector"] = dict(launcher.gpu_node_selector)
        spec["tolerations"] = [parse_toleration(t) for t in launcher.gpu_tolerations]
    if launcher.service_account_name:
        spec["serviceAccountName"] = launcher.service_account_name
    if launcher.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in launcher.image_pull_secrets]
    return spec


def pod_meta(plan: PodPlan) -> dict:
    return {"labels": {
        "app.kubernetes.io/name": "tr-gemma",
        "app.kubernetes.io/component": plan.component,
        "tr-gemma/model-size": plan.size,
    }}


def build_trainer_pod_spec(launcher: KubernetesGpuLauncher, size: str, module: str, recipe=None,
                           text_config: Optional[dict] = None, load_in_4bit: bool = True,
                           image: Optional[str] = None, device: str = "cuda") -> dict:
    """The PodSpec the launcher would submit for `module` on `size` (no cluster needed)."""
    plan = plan_pod(launcher, size, module, recipe, text_config, load_in_4bit, device)
    return pod_spec(launcher, plan, image or launcher.image)


def parse_toleration(text: str) -> dict:
    """kubectl taint syntax: 'key[=value][:Effect]' -> a Toleration ('Exists' when no value)."""
    key_value, _, effect = text.partition(":")
    key, has_value, value = key_value.partition("=")
    toleration = {"key": key.strip(), "operator": "Equal" if has_value else "Exists"}
    if has_value:
        toleration["value"] = value.strip()
    if effect:
        toleration["effect"] = effect.strip()
    return toleration


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _pairs(text: str) -> dict[str, str]:
    bad = [item for item in _items(text) if "=" not in item]
    if bad:
        raise ValueError(f"{bad} are not key=value pairs")
    return {key.strip(): value.strip() for key, value in (item.split("=", 1) for item in _items(text))}


def _counts(text: str) -> dict[str, int]:
    return {key: int(value) for key, value in _pairs(text).items()}


# TR_GEMMA_K8S_<NAME> -> (launcher field, parser). Lists are comma-separated, maps key=value pairs.
ENV_SETTINGS: dict[str, tuple] = {
    "NAMESPACE": ("namespace", str),
    "IMAGE": ("image", str),
    "IMAGE_PULL_POLICY": ("image_pull_policy", str),
    "IMAGE_PULL_SECRETS": ("image_pull_secrets", _items),
    "SERVICE_ACCOUNT": ("service_account_name", str),
    "GPU_RESOURCE": ("gpu_resource_name", str),
    "GPU_MEMORY_GIB": ("gpu_memory_gib", float),
    "MAX_GPUS_PER_POD": ("max_gpus_per_pod", int),
    "GPUS_PER_SIZE": ("gpus_per_size", _counts),
    "CPUS_PER_GPU": ("cpus_per_gpu", int),
    "SHM_GIB": ("shm_size_gib", int),
    "GPU_NODE_SELECTOR": ("gpu_node_selector", _pairs),  # set but empty: no selector
    "GPU_TOLERATIONS": ("gpu_tolerations", _items),  # set but empty: no tolerations
    "HF_TOKEN_SECRET": ("hf_token_secret_name", str),
    "HF_TOKEN_SECRET_KEY": ("hf_token_secret_key", str),
    "ARTIFACTS_PVC": ("artifacts_claim_name", str),
    "ARTIFACTS_MOUNT": ("artifacts_mount_path", str),
    "CACHE_PVC": ("cache_claim_name", str),
    "CACHE_MOUNT": ("cache_mount_path", str),
}


def launcher_from_env(environ) -> KubernetesGpuLauncher:
    """The launcher configured by TR_GEMMA_K8S_* variables (ENV_SETTINGS); unset = the default.

    None of them is a secret: the token is referenced by Secret name only. Read when the code
    location loads; the Helm values give the code server and its run pods the same variables.
    """
    settings = {}
    for name, (field, parse) in ENV_SETTINGS.items():
        value = environ.get(f"TR_GEMMA_K8S_{name}")
        if value is None or (not value.strip() and parse not in (_pairs, _items)):
            continue
        try:
            settings[field] = parse(value.strip())
        except ValueError as exc:
            raise ValueError(f"TR_GEMMA_K8S_{name}={value!r}: {exc}") from None
    return KubernetesGpuLauncher(**settings)


def _recipe_sections(size: str, recipe) -> tuple[dict, dict]:
    if recipe is None:
        from tr_gemma.training.recipe import load_recipe

        recipe = load_recipe(size)
    values = recipe if isinstance(recipe, dict) else recipe.model_dump()
    return values["training"], values["lora"]


def _parameter_count(config: dict) -> int:
    """Parameters of the text model (same shapes as the memory estimate)."""
    text = config.get("text_config", config)
    hidden, inter, layers = text["hidden_size"], text["intermediate_size"], text["num_hidden_layers"]
    head_dim = text.get("head_dim") or hidden // text["num_attention_heads"]
    q_out, kv_out = text["num_attention_heads"] * head_dim, text["num_key_value_heads"] * head_dim
    per_layer = hidden * q_out * 2 + hidden * kv_out * 2 + 3 * hidden * inter
    return layers * per_layer + text["vocab_size"] * hidden


def _checkpoint_text_config(model_dir: Optional[str]) -> Optional[dict]:
    if not model_dir:
        return None
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _code_location_image(context: dg.AssetExecutionContext) -> Optional[str]:
    origin = context.run.job_code_origin
    return origin.repository_origin.container_image if origin else None


def _api_message(exc) -> str:
    try:
        return json.loads(exc.body).get("message", exc.body)
    except (TypeError, ValueError):
        return str(exc.body)
