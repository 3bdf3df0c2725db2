"""Site choices for the whole cluster: which service runs on which host, and the gateway aliases.

Tuned defaults (slots, timeouts, workers, retries, KV types, weights) live in aistack.model with
the finding behind each; write a value here only to depart from it. Moving a stack to another
host is a change of its `host:` line (the seed moved Gemma NX -> Orin and retrieval Orin -> NX).
"""

# Names this cluster for deploy.py and the CLI alike; `aistack switch` records lane choices in
# inventory/<cluster_name>.lanes.yaml.
cluster_name = "homelab"

services = {
    # main: the big lane, the gateway and the front door
    "chat-main": {"kind": "sglang", "host": "main", "model": "gpt-oss-20b", "quant": "mxfp4", "gpus": [0, 1]},
    "gateway": {
        "kind": "litellm",
        "host": "main",
        "aliases": {
            "fast": [{"service": "chat-main"}],
            "chat": [{"service": "chat-main"}],
            "agent": [{"service": "chat-main"}],
            # weights follow memory kind: edge's own VRAM 8, the Orin's unified memory 1 (overflow)
            "vision": [{"service": "gemma-edge"}, {"service": "gemma-orin"}],
            "embed": [{"service": "embed"}],
            "rerank": [{"service": "rerank"}],
            "stt": [{"service": "whisper"}],
            "tts": [{"service": "kokoro"}],
        },
    },
    "proxy": {"kind": "nginx", "host": "main"},
    "webui": {
        "kind": "openwebui",
        "host": "main",
        "vector_db": "qdrant",
        "embeddings": "embed",
        "reranker": "rerank",
        "stt": "stt",
        "tts": "tts",
    },
    # edge: vision lane on the 6 GB card, speech beside it
    "gemma-edge": {"kind": "llamacpp", "host": "edge", "role": "vision", "model": "gemma-4-e2b-it", "quant": "Q4_K_M", "mmproj": "mmproj-F16"},
    # Whisper base: two int8 copies beside Gemma on the 6 GB card (000)
    "whisper": {"kind": "asr", "host": "edge", "model": "faster-whisper-base"},
    "kokoro": {"kind": "tts", "host": "edge"},
    # orin: overflow vision lane, 8 slots at the edge's per-slot context; detection
    "gemma-orin": {
        "kind": "llamacpp", "host": "orin", "role": "vision", "model": "gemma-4-e2b-it", "quant": "Q4_K_M",
        "mmproj": "mmproj-F16", "ctx": 65536, "parallel": 8,
    },
    "nanoowl": {"kind": "detector", "host": "orin", "engine_mib": 300},
    # nx: retrieval
    "qdrant": {"kind": "qdrant", "host": "nx"},
    "embed": {"kind": "llamacpp", "host": "nx", "role": "embedding", "model": "bge-base-en-v1.5", "quant": "F16", "port": 8081, "ctx": 4096},
    "rerank": {"kind": "llamacpp", "host": "nx", "role": "rerank", "model": "bge-reranker-v2-m3", "quant": "Q8_0", "port": 8082, "ctx": 4096},
}
