"""Kubernetes deployment without a cluster: the GPU pods the project would submit for every model
size, the deployment selection, the Helm values and manifests. The pod specs are checked as the
project builds them, as dagster_k8s turns them into a V1Pod, and as PipesK8sClient sends them over
HTTP to a local stand-in API server that refuses them (as a cluster without RBAC would)."""

import json
import math
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import yaml

from resources.kubernetes import (
    ENV_SETTINGS,
    GEMMA3_TEXT_CONFIGS,
    GIB,
    KubernetesGpuLauncher,
    build_trainer_pod_spec,
    launcher_from_env,
    parse_toleration,
    plan_pod,
    pod_meta,
)
from tests.conftest import step_failure_message
from tr_gemma.training.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
TRAIN, EVAL = "tr_gemma.training.pipes_main", "tr_gemma.evaluation.pipes_main"
IMAGE = "registry.example.com/tr-gemma:test"
PLANTED_TOKEN = "hf_PlantedTokenThatMustNeverReachAPodSpec"
HF_TOKEN_REF = {"secretKeyRef": {"name": "tr-gemma-hf-token", "key": "HF_TOKEN", "optional": True}}

# dagster-k8s 0.29.27 runs beside dagster 1.13.28 (0.29.28 is not on the package index): dagster
# warns about the pair when dagster_k8s is imported. docs/deployment.md (Versions) explains it.
pytestmark = pytest.mark.filterwarnings("ignore:Found version mismatch:UserWarning")


def _bf16_checkpoint_bytes(size: str) -> int:
    from resources.kubernetes import _parameter_count

    return _parameter_count(GEMMA3_TEXT_CONFIGS[size]) * 2


def _gib(quantity: str) -> int:
    assert quantity.endswith("Gi"), quantity
    return int(quantity.removesuffix("Gi"))


# --- the pod spec of every size ------------------------------------------------------------------


def test_every_model_size_has_shapes_for_pod_sizing():
    from assets.partitions import model_sizes

    assert set(model_sizes.get_partition_keys()) == set(GEMMA3_TEXT_CONFIGS)


@pytest.mark.parametrize("module", [TRAIN, EVAL])
@pytest.mark.parametrize("size", list(GEMMA3_TEXT_CONFIGS))
def test_gpu_pod_spec_for_each_size(size, module, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    launcher = KubernetesGpuLauncher(image=IMAGE)
    spec = build_trainer_pod_spec(launcher, size, module)

    (container,) = spec["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python", "-m", module]
    assert spec["restartPolicy"] == "Never"

    # 80 GiB GPUs: every size trains (2 x 4096 tokens) and scores on one GPU.
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert requests["nvidia.com/gpu"] == limits["nvidia.com/gpu"] == "1"
    assert requests["memory"] == limits["memory"]  # never evicted for a neighbour's burst
    host = _gib(limits["memory"])
    assert host * GIB >= _bf16_checkpoint_bytes(size) + 8 * GIB + launcher.shm_size_gib * GIB
    assert requests["cpu"] == "8" and "cpu" not in limits

    env = {item["name"]: item for item in container["env"]}
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": HF_TOKEN_REF}
    assert PLANTED_TOKEN not in json.dumps(spec)
    assert env["TR_GEMMA_CACHE"]["value"] == "/data/cache/tr_gemma"
    assert env["HF_HOME"]["value"] == "/data/cache/huggingface"
    assert "TR_GEMMA_DISTRIBUTED_STRATEGY" not in env  # one GPU, one process

    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["artifacts"]["persistentVolumeClaim"] == {"claimName": "tr-gemma-artifacts"}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "tr-gemma-cache"}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"artifacts": "/data/artifacts", "model-cache": "/data/cache", "dshm": "/dev/shm"}

    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["securityContext"]["fsGroup"] == 1000


@pytest.mark.parametrize("size", list(GEMMA3_TEXT_CONFIGS))
def test_dagster_k8s_builds_a_valid_pod_from_the_spec(size):
    """dagster_k8s's own builder rejects any key that is not a Kubernetes field."""
    from dagster_k8s.pipes import build_pod_body

    launcher = KubernetesGpuLauncher(image=IMAGE)
    plan = plan_pod(launcher, size, TRAIN)
    pod = build_pod_body(pod_name="dagster-pipes-test", image=None, command=None,
                         env_vars={"DAGSTER_PIPES_CONTEXT": "ctx", "DAGSTER_PIPES_MESSAGES": "msg"},
                         base_pod_meta=pod_meta(plan), base_pod_spec=build_trainer_pod_spec(launcher, size, TRAIN))
    container = pod.spec.containers[0]
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.command == ["python", "-m", TRAIN]
    token = next(e for e in container.env if e.name == "HF_TOKEN")
    assert token.value is None and token.value_from.secret_key_ref.name == "tr-gemma-hf-token"
    assert {e.name for e in container.env} >= {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "tr-gemma-artifacts"
    assert pod.spec.tolerations[0].key == "nvidia.com/gpu"
    assert pod.metadata.labels["tr-gemma/model-size"] == size


def test_pods_grow_with_the_model():
    launcher = KubernetesGpuLauncher(image=IMAGE)
    plans = [plan_pod(launcher, size, TRAIN) for size in GEMMA3_TEXT_CONFIGS]
    assert [p.per_gpu_bytes for p in plans] == sorted(p.per_gpu_bytes for p in plans)
    assert [p.host_memory_gib for p in plans] == sorted(p.host_memory_gib for p in plans)
    assert plans[-1].host_memory_gib > 2 * plans[0].host_memory_gib


def test_smaller_gpus_split_the_weights_over_several_gpus_with_torchrun():
    launcher = KubernetesGpuLauncher(image=IMAGE, gpu_memory_gib=16)
    usable = 16 * GIB * launcher.usable_memory_fraction
    counts = {}
    for size in GEMMA3_TEXT_CONFIGS:
        plan = plan_pod(launcher, size, TRAIN)
        counts[size] = plan.gpus
        assert plan.per_gpu_bytes <= usable
    # activation offloading (recipe default) fits 12B on one 16 GB card; 27B is sharded (FSDP, no offloading)
    assert counts == {"270m": 1, "1b": 1, "4b": 1, "12b": 1, "27b": 4}
    # 27B on 24 GB cards: one card with offloading, two (FSDP) without it
    card_24 = KubernetesGpuLauncher(image=IMAGE, gpu_memory_gib=24)
    assert plan_pod(card_24, "27b", TRAIN).gpus == 1
    no_offload = {"training": {"activation_offloading": False}}
    assert plan_pod(card_24, "27b", TRAIN, recipe=load_recipe("27b", no_offload).model_dump()).gpus == 2

    spec = build_trainer_pod_spec(launcher, "27b", TRAIN)
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m", TRAIN]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert container["resources"]["requests"]["cpu"] == "32"
    assert {"name": "TR_GEMMA_DISTRIBUTED_STRATEGY", "value": "fsdp"} in container["env"]
    # Scoring stays one process on one GPU.
    assert build_trainer_pod_spec(KubernetesGpuLauncher(image=IMAGE), "27b", EVAL)["containers"][0]["command"] == \
        ["python", "-m", EVAL]


def test_gpu_count_is_the_fewest_that_fit():
    launcher = KubernetesGpuLauncher(image=IMAGE, gpu_memory_gib=16)
    plan = plan_pod(launcher, "27b", TRAIN)
    usable = 16 * GIB * launcher.usable_memory_fraction
    from tr_gemma.training.memory import estimate_training_memory

    # sharded over several GPUs (FSDP), the trainer keeps its activations on the GPU (no offloading)
    # and PEFT's LoRA, which keeps each dropped-out input (fused_lora is off under FSDP)
    e = estimate_training_memory(GEMMA3_TEXT_CONFIGS["27b"], 2, 4096, 32, attention="packed_varlen", offloading=False,
                                 dropout_kept="copy")
    per_gpu = lambda n: e.activations + e.logits + e.fixed + (e.weights + e.lora) / n  # noqa: E731
    assert per_gpu(plan.gpus) <= usable < per_gpu(plan.gpus - 1)
    assert math.isclose(plan.per_gpu_bytes, per_gpu(plan.gpus))


def test_a_micro_batch_too_big_for_one_gpu_fails_before_any_pod():
    from tr_gemma.training.recipe import load_recipe

    launcher = KubernetesGpuLauncher(image=IMAGE, gpu_memory_gib=16)
    long = load_recipe("4b", {"training": {"max_length": 65536}}).model_dump()
    with pytest.raises(dg.Failure, match="more GPUs do not help.*per_device_train_batch_size or max_length"):
        plan_pod(launcher, "4b", TRAIN, recipe=long)
    with pytest.raises(dg.Failure, match="max_gpus_per_pod=2"):
        plan_pod(KubernetesGpuLauncher(image=IMAGE, gpu_memory_gib=16, max_gpus_per_pod=2), "27b", TRAIN)


def test_gpus_per_size_asks_for_more_gpus_never_fewer():
    launcher = KubernetesGpuLauncher(image=IMAGE, gpus_per_size={"27b": 4, "12b": 1})
    assert plan_pod(launcher, "27b", TRAIN).gpus == 4
    small = KubernetesGpuLauncher(image=IMAGE, gpu_memory_gib=16, gpus_per_size={"27b": 1})
    assert plan_pod(small, "27b", TRAIN).gpus == 4


def test_the_run_recipe_sizes_the_pod():
    from tr_gemma.training.recipe import load_recipe

    launcher = KubernetesGpuLauncher(image=IMAGE)
    default = plan_pod(launcher, "4b", TRAIN)
    short = plan_pod(launcher, "4b", TRAIN, recipe=load_recipe("4b", {"training": {"max_length": 1024}}).model_dump())
    assert short.per_gpu_bytes < default.per_gpu_bytes - 0.5 * GIB  # activations and loss scale with the length
    with pytest.raises(dg.Failure, match="more GPUs do not help"):
        plan_pod(launcher, "27b", TRAIN, recipe=load_recipe("27b", {"training": {"max_length": 131072}}))


def test_scoring_in_bf16_needs_the_full_weights():
    launcher = KubernetesGpuLauncher(image=IMAGE, gpu_memory_gib=40)
    assert plan_pod(launcher, "27b", EVAL, load_in_4bit=True).gpus == 1
    with pytest.raises(dg.Failure, match="load_in_4bit"):
        plan_pod(launcher, "27b", EVAL, load_in_4bit=False)
    bf16 = plan_pod(KubernetesGpuLauncher(image=IMAGE), "27b", EVAL, load_in_4bit=False)
    assert bf16.per_gpu_bytes > _bf16_checkpoint_bytes("27b")


def test_other_pipes_steps_get_a_gpu_only_when_they_ask_for_cuda():
    """E.g. the hand-off: merging into a bf16 copy runs on the CPU, generation on one GPU."""
    launcher = KubernetesGpuLauncher(image=IMAGE)
    merge = build_trainer_pod_spec(launcher, "27b", "tr_gemma.handoff.pipes_main", device="cpu")
    (container,) = merge["containers"]
    assert "nvidia.com/gpu" not in container["resources"]["requests"] | container["resources"]["limits"]
    assert "nodeSelector" not in merge and "tolerations" not in merge
    assert _gib(container["resources"]["limits"]["memory"]) * GIB >= 2 * _bf16_checkpoint_bytes("27b")
    generate = plan_pod(launcher, "27b", "tr_gemma.handoff.pipes_main", device="cuda")
    assert (generate.gpus, generate.role, generate.component) == (1, "worker", "worker")
    assert generate.per_gpu_bytes > _bf16_checkpoint_bytes("27b")


def test_tolerations_use_kubectl_taint_syntax():
    assert parse_toleration("nvidia.com/gpu:NoSchedule") == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert parse_toleration("pool=a100:NoExecute") == {"key": "pool", "operator": "Equal", "value": "a100", "effect": "NoExecute"}
    assert parse_toleration("dedicated") == {"key": "dedicated", "operator": "Exists"}


# --- which deployment --------------------------------------------------------------------------


def test_local_deployment_is_the_default(monkeypatch):
    from resources import build_resources
    from resources.gpu import GpuResource

    monkeypatch.delenv("TR_GEMMA_DEPLOYMENT", raising=False)
    resources = build_resources()
    assert type(resources["gpu"]) is GpuResource
    assert resources["artifacts"].root == "artifacts"
    assert resources["gemma_checkpoints"].cache_dir == ""


def test_kubernetes_deployment_is_selected_by_environment(monkeypatch):
    from resources import build_resources

    monkeypatch.setenv("TR_GEMMA_DEPLOYMENT", "kubernetes")
    monkeypatch.setenv("TR_GEMMA_K8S_IMAGE", IMAGE)
    monkeypatch.setenv("TR_GEMMA_K8S_GPU_MEMORY_GIB", "40")
    monkeypatch.setenv("TR_GEMMA_K8S_GPUS_PER_SIZE", "27b=6")
    monkeypatch.setenv("TR_GEMMA_K8S_GPU_NODE_SELECTOR", "cloud.google.com/gke-accelerator=nvidia-a100-80gb")
    monkeypatch.setenv("TR_GEMMA_K8S_GPU_TOLERATIONS", "")
    resources = build_resources()
    gpu = resources["gpu"]
    assert isinstance(gpu, KubernetesGpuLauncher)
    assert (gpu.image, gpu.gpu_memory_gib, gpu.gpus_per_size) == (IMAGE, 40.0, {"27b": 6})
    assert gpu.gpu_node_selector == {"cloud.google.com/gke-accelerator": "nvidia-a100-80gb"}
    assert gpu.gpu_tolerations == []
    # Artifacts and checkpoints live on the volumes the GPU pods mount.
    assert resources["artifacts"].root == "/data/artifacts"
    assert resources["gemma_checkpoints"].cache_dir == "/data/cache/tr_gemma"
    assert build_resources(deployment="local")["gpu"].__class__.__name__ == "GpuResource"


def test_unknown_deployment_or_setting_fails_loudly(monkeypatch):
    from resources import build_resources

    monkeypatch.setenv("TR_GEMMA_DEPLOYMENT", "k8s-cluster")
    with pytest.raises(ValueError, match="choose one of local, kubernetes"):
        build_resources()
    with pytest.raises(ValueError, match="TR_GEMMA_K8S_GPU_NODE_SELECTOR"):
        launcher_from_env({"TR_GEMMA_K8S_GPU_NODE_SELECTOR": "gpu"})


def test_cluster_code_location_loads_without_importing_kubernetes():
    code = (
        "import sys; import pipelines.definitions as d; "
        "from resources.kubernetes import KubernetesGpuLauncher; "
        "assert isinstance(d.defs.resources['gpu'], KubernetesGpuLauncher), d.defs.resources['gpu']; "
        "loaded = [m for m in ('dagster_k8s', 'kubernetes', 'torch') if m in sys.modules]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    env = {**os.environ, "TR_GEMMA_DEPLOYMENT": "kubernetes"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


# --- run_module through the real PipesK8sClient -----------------------------------------------------


class _RefusingApiServer:
    """Plays a Kubernetes API server whose RBAC refuses pod creation; records what it was sent."""

    def __init__(self):
        self.requests: list[tuple[str, str, bytes]] = []
        recorder = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, code: int, status: dict) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorder.append((self.command, self.path, self.rfile.read(length)))
                body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, **status}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                self._answer(403, {"reason": "Forbidden", "message": 'pods is forbidden: User "system:serviceaccount:'
                                   'tr-gemma:default" cannot create resource "pods" in API group "" in the namespace "tr-gemma"'})

            def do_GET(self):  # noqa: N802
                self._answer(404, {"reason": "NotFound", "message": "not found"})

            do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def kubeconfig(self, folder: Path) -> str:
        path = folder / "kubeconfig.yaml"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
            "clusters": [{"name": "stand-in", "cluster": {"server": f"http://127.0.0.1:{self.server.server_port}"}}],
            "users": [{"name": "stand-in", "user": {"token": "stand-in-service-account-token"}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}],
        }))
        return str(path)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_server(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with _RefusingApiServer() as server:
        yield server


def _launch(launcher, extras: dict, size: str = "1b", module: str = TRAIN) -> dg.ExecuteInProcessResult:
    from assets.partitions import model_sizes

    @dg.asset(partitions_def=model_sizes, name="gpu_step")
    def gpu_step(context: dg.AssetExecutionContext, gpu: KubernetesGpuLauncher):
        yield from gpu.run_module(context, module, extras).get_results()

    return dg.materialize([gpu_step], resources={"gpu": launcher}, partition_key=size, raise_on_error=False)


def test_run_module_submits_the_pod_through_pipes_k8s_client(api_server, tmp_path, monkeypatch):
    from tr_gemma.training.recipe import load_recipe

    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    launcher = KubernetesGpuLauncher(image=IMAGE, namespace="tr-gemma", kubeconfig_file=api_server.kubeconfig(tmp_path),
                                     poll_interval_s=0.1)
    extras = {"recipe": load_recipe("1b").model_dump(), "model_dir": "/data/cache/tr_gemma/hub/gemma-3-1b-pt",
              "data_path": "/data/artifacts/gemma_chat_dataset/data.parquet",
              "output_dir": "/data/artifacts/qlora_adapter/1b", "device": "cuda"}
    result = _launch(launcher, extras)

    assert not result.success
    assert "create, get, list, watch and delete on pods" in step_failure_message(result)  # the RBAC hint
    (method, path, body), = api_server.requests
    assert (method, path) == ("POST", "/api/v1/namespaces/tr-gemma/pods")
    assert PLANTED_TOKEN.encode() not in body
    pod = json.loads(body)
    assert pod["metadata"]["name"].startswith("dagster-")  # named by PipesK8sClient for this run and step
    assert pod["metadata"]["labels"]["tr-gemma/model-size"] == "1b"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "trainer"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python", "-m", TRAIN]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": HF_TOKEN_REF}
    assert "value" in env["DAGSTER_PIPES_CONTEXT"] and "value" in env["DAGSTER_PIPES_MESSAGES"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v] == \
        ["tr-gemma-artifacts", "tr-gemma-cache"]
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_run_module_submits_an_evaluator_pod_for_scoring(api_server, tmp_path):
    launcher = KubernetesGpuLauncher(image=IMAGE, namespace="tr-gemma", kubeconfig_file=api_server.kubeconfig(tmp_path))
    extras = {"model_dir": "/data/cache/tr_gemma/hub/gemma-3-27b-pt", "adapter_dir": "/data/artifacts/qlora_adapter/27b/adapter",
              "questions_path": "/data/artifacts/tr_mmlu_questions/data.parquet", "output_dir": "/data/artifacts/tr_mmlu_scores/27b",
              "num_fewshot": 0, "load_in_4bit": True, "batch_size": "auto", "device": "cuda", "limit": None}
    result = _launch(launcher, extras, size="27b", module=EVAL)
    assert "Kubernetes refused to create the evaluation pod" in step_failure_message(result)
    (_, _, body), = api_server.requests
    pod = json.loads(body)
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "evaluator"
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["python", "-m", EVAL]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1", "memory": f"{plan_pod(launcher, '27b', EVAL).host_memory_gib}Gi"}


def test_run_module_submits_a_cpu_pod_for_a_step_without_a_device(api_server, tmp_path):
    launcher = KubernetesGpuLauncher(image=IMAGE, namespace="tr-gemma", kubeconfig_file=api_server.kubeconfig(tmp_path))
    extras = {"task": "merge", "model_dir": "/data/cache/tr_gemma/hub/gemma-3-4b-pt",
              "adapter_dir": "/data/artifacts/qlora_adapter/4b/adapter", "output_dir": "/data/artifacts/merged_model/4b"}
    result = _launch(launcher, extras, size="4b", module="tr_gemma.handoff.pipes_main")
    assert "Kubernetes refused to create the worker pod" in step_failure_message(result)
    (_, _, body), = api_server.requests
    pod = json.loads(body)
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert b"nvidia.com/gpu" not in body
    assert "nodeSelector" not in pod["spec"]


def test_files_outside_the_mounted_volumes_are_refused_before_any_pod(api_server, tmp_path):
    launcher = KubernetesGpuLauncher(image=IMAGE, namespace="tr-gemma", kubeconfig_file=api_server.kubeconfig(tmp_path))
    result = _launch(launcher, {"model_dir": "/home/me/gemma-3-1b", "output_dir": "/data/artifacts/x"})
    assert not result.success
    assert "would not see {'model_dir': '/home/me/gemma-3-1b'}" in step_failure_message(result)
    assert api_server.requests == []


def test_no_image_and_no_code_location_image_is_refused(api_server, tmp_path):
    launcher = KubernetesGpuLauncher(namespace="tr-gemma", kubeconfig_file=api_server.kubeconfig(tmp_path))
    result = _launch(launcher, {"output_dir": "/data/artifacts/x"})
    assert "TR_GEMMA_K8S_IMAGE" in step_failure_message(result)
    assert api_server.requests == []


def test_the_training_asset_launches_its_trainer_as_a_gpu_pod(api_server, tmp_path, gemma_tokenizer_dir):
    """qlora_adapter as the cluster runs it: the Kubernetes launcher bound to `gpu`, files on the
    volumes; the pod it submits is sized from the checkpoint on the cache volume."""
    from assets.base_model import base_model
    from assets.chat_dataset import gemma_chat_dataset
    from assets.instructions import clean_instructions, raw_instructions
    from assets.qlora_adapter import qlora_adapter
    from resources import build_resources
    from tests.tiny_gemma import save_tiny_text_model

    artifacts, cache = tmp_path / "volumes/artifacts", tmp_path / "volumes/cache"
    launcher = KubernetesGpuLauncher(image=IMAGE, namespace="tr-gemma", kubeconfig_file=api_server.kubeconfig(tmp_path),
                                     artifacts_mount_path=str(artifacts), cache_mount_path=str(cache))
    resources = {**build_resources(artifacts_root=str(artifacts), cache_dir=launcher.checkpoint_cache_dir()), "gpu": launcher}
    assert dg.materialize([raw_instructions, clean_instructions, gemma_chat_dataset], resources=resources).success
    tiny = save_tiny_text_model(cache / "checkpoints/tiny", gemma_tokenizer_dir)
    assert dg.materialize([base_model], resources=resources, partition_key="1b",
                          run_config={"ops": {"base_model": {"config": {"source": "path", "path": str(tiny)}}}}).success

    result = dg.materialize([qlora_adapter], resources=resources, partition_key="1b", raise_on_error=False)
    assert "Kubernetes refused to create the training pod" in step_failure_message(result)
    (_, path, body), = api_server.requests
    assert path == "/api/v1/namespaces/tr-gemma/pods"
    (container,) = json.loads(body)["spec"]["containers"]
    assert container["command"] == ["python", "-m", TRAIN]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # Sized from the checkpoint on the volume (the tiny one), not from the published 1B shapes.
    tiny_plan = plan_pod(launcher, "1b", TRAIN, text_config=json.loads((tiny / "config.json").read_text()))
    assert container["resources"]["limits"]["memory"] == f"{tiny_plan.host_memory_gib}Gi"
    assert tiny_plan.host_memory_gib < plan_pod(launcher, "1b", TRAIN).host_memory_gib
    assert {m["mountPath"] for m in container["volumeMounts"]} == {str(artifacts), str(cache), "/dev/shm"}


# --- deployment files ------------------------------------------------------------------------------


def _helm_values() -> dict:
    return yaml.safe_load((ROOT / "deploy/helm/values.yaml").read_text(encoding="utf-8"))


def test_helm_values_deploy_this_code_location_with_k8s_run_launcher_and_postgres():
    import tomllib

    values = _helm_values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is True
    assert "postgresqlPassword" not in values["postgresql"]  # set at install, never committed
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert values["dagsterDaemon"]["runRetries"] == {"enabled": True, "maxRetries": 2, "retryOnAssetOrOpFailure": False}
    assert values["concurrency"]["pools"]["defaultLimit"] == 1

    users = values["dagster-user-deployments"]
    assert users["enabled"] is True
    (deployment,) = users["deployments"]
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["-m", module]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["TR_GEMMA_DEPLOYMENT"] == "kubernetes"
    assert {name.removeprefix("TR_GEMMA_K8S_") for name in env if name.startswith("TR_GEMMA_K8S_")} <= set(ENV_SETTINGS)

    # The run pods mount the volumes the GPU pods mount, at the same paths, and get the token Secret.
    launcher = launcher_from_env(env)
    volumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in deployment["volumeMounts"]}
    assert mounts == {launcher.artifacts_mount_path: launcher.artifacts_claim_name,
                      launcher.cache_mount_path: launcher.cache_claim_name}
    assert {"name": launcher.hf_token_secret_name} in deployment["envSecrets"]
    assert deployment["podSecurityContext"]["runAsUser"] == launcher.run_as_user

    # Run pods and the code server are CPU pods: nothing the chart starts asks for a GPU.
    assert "nvidia.com/gpu" not in json.dumps(values["runLauncher"]) + json.dumps(deployment.get("resources", {}))
    assert users["serviceAccount"]["name"] == _manifests("rbac.yaml")[1]["subjects"][0]["name"]


def _manifests(name: str) -> list[dict]:
    return list(yaml.safe_load_all((ROOT / "deploy/k8s" / name).read_text(encoding="utf-8")))


def test_kubernetes_manifests_match_the_launcher_defaults():
    launcher = KubernetesGpuLauncher()
    claims = {m["metadata"]["name"]: m["spec"] for m in _manifests("volumes.yaml")}
    assert set(claims) == {launcher.artifacts_claim_name, launcher.cache_claim_name}
    assert all(spec["accessModes"] == ["ReadWriteMany"] for spec in claims.values())

    (secret,) = _manifests("secret-example.yaml")
    assert secret["metadata"]["name"] == launcher.hf_token_secret_name
    assert list(secret["stringData"]) == [launcher.hf_token_secret_key]
    assert secret["stringData"][launcher.hf_token_secret_key] == "hf_replace_me"  # a placeholder, never a token

    role, binding = _manifests("rbac.yaml")
    rules = {tuple(rule["resources"]): set(rule["verbs"]) for rule in role["rules"]}
    assert rules[("pods",)] >= {"create", "get", "watch", "delete"}
    assert rules[("pods/log",)] >= {"get"}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_docs_describe_every_setting_and_the_helm_keys():
    docs = (ROOT / "docs/deployment.md").read_text(encoding="utf-8")
    for name in ENV_SETTINGS:
        assert f"TR_GEMMA_K8S_{name}" in docs, name
    for claim in ("K8sRunLauncher", "includeConfigInLaunchedRuns", "postgresql", "dagster-user-deployments",
                  "deploy/helm/values.yaml", "deploy/Dockerfile", "deploy/k8s/rbac.yaml", "PipesK8sClient",
                  "dagster-k8s/config", "TR_GEMMA_DEPLOYMENT"):
        assert claim in docs, claim
    assert "docs/deployment.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_image_installs_the_pinned_integrations():
    from importlib.metadata import version

    pins = dict(line.split("==") for line in (ROOT / "deploy/requirements-dagster-integrations.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["dagster-k8s"] == version("dagster-k8s")
    dockerfile = (ROOT / "deploy/Dockerfile").read_text(encoding="utf-8")
    assert "pip install --no-deps -r deploy/requirements-dagster-integrations.txt" in dockerfile
    assert "TR_GEMMA_DEPLOYMENT=kubernetes" in dockerfile
    assert f"USER {KubernetesGpuLauncher().run_as_user}:" in dockerfile
