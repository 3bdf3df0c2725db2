"""The four nodes of the seed's homelab (000). Hardware only: what runs where is group_data/all.py.

Addresses are from the documentation range (192.0.2.0/24): put your own LAN addresses here.
"""

gpu_servers = [
    (
        "main",
        {
            "ssh_hostname": "192.0.2.10",
            "ssh_user": "root",
            # 2x RTX PRO 4000 Blackwell, 24,467 MiB each as nvidia-smi reports them (000, 001)
            "node": {
                "platform": "x86-gpu",
                "ram_mib": 65536,
                "accelerators": [
                    {"model": "RTX PRO 4000 Blackwell", "memory_mib": 24467, "compute_capability": "12.0"},
                    {"model": "RTX PRO 4000 Blackwell", "memory_mib": 24467, "compute_capability": "12.0"},
                ],
            },
        },
    ),
    (
        "edge",
        {
            "ssh_hostname": "192.0.2.11",
            "ssh_user": "root",
            # RTX 2060, 6,144 MB as the seed's VRAM table reports it (000)
            "node": {
                "platform": "x86-gpu",
                "ram_mib": 32768,
                "accelerators": [{"model": "RTX 2060", "memory_mib": 6144, "compute_capability": "7.5"}],
            },
        },
    ),
]

jetsons = [
    (
        "orin",
        {
            "ssh_hostname": "192.0.2.12",
            "ssh_user": "root",
            # Orin Nano: Ampere, 7.6 GB unified memory, JetPack 6 / L4T r36 (000)
            "node": {
                "platform": "jetson",
                "arch": "aarch64",
                "l4t": "r36.4.0",
                "ram_mib": 7620,
                "docker_source": "jetpack",
                "accelerators": [{"model": "Orin Nano", "memory_mib": 7620, "memory": "unified", "compute_capability": "8.7"}],
            },
        },
    ),
    (
        "nx",
        {
            "ssh_hostname": "192.0.2.13",
            "ssh_user": "root",
            # Xavier NX: Volta, 6.7 GB unified memory, JetPack 5 / L4T r35 is its last release (000)
            "node": {
                "platform": "jetson",
                "arch": "aarch64",
                "l4t": "r35.4.1",
                "ram_mib": 6860,
                "docker_source": "jetpack",
                "accelerators": [{"model": "Xavier NX", "memory_mib": 6860, "memory": "unified", "compute_capability": "7.2"}],
            },
        },
    ),
]
