"""The typed cluster: every knob, its tuned default and the finding behind it."""

from .cluster import (
    AlertThresholds,
    Cluster,
    Interconnect,
    Monitoring,
    RayLane,
    TimeoutChain,
    api_kind,
    platform_tag,
)
from .hosts import Accelerator, Host, Platform, Ssh, Storage, Tuning
from .services import (
    LLM_LANES,
    VLLM,
    Asr,
    Detector,
    Gateway,
    GpuExporter,
    GpuService,
    Grafana,
    LlamaCpp,
    NodeExporter,
    Prometheus,
    RayNode,
    Nginx,
    Qdrant,
    Route,
    SGLang,
    Tts,
    WebUI,
    Workload,
)

__all__ = [
    "LLM_LANES", "VLLM", "Accelerator", "AlertThresholds", "GpuExporter", "Grafana", "NodeExporter",
    "Prometheus", "RayNode", "Asr", "Cluster", "Detector", "Gateway", "GpuService", "Host",
    "Interconnect", "LlamaCpp", "Monitoring", "Nginx", "Platform", "Qdrant", "RayLane", "Route", "SGLang",
    "Ssh", "Storage", "TimeoutChain", "Tts", "Tuning", "WebUI", "Workload", "api_kind", "platform_tag",
]
