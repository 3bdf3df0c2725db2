"""The rendered nginx site passes the real `nginx -t` and carries the streaming defaults (000)."""

import shutil
import subprocess

import pytest

from aistack.inventory import load_cluster
from aistack.render import render_cluster
from tests.conftest import HOMELAB

# nginx -t binds its listen sockets: test on loopback, on a free high port.
LOCAL = ["hosts.main.address=127.0.0.1", "services.proxy.port=18080"]


def nginx_conf(tmp_path, overrides=()):
    cluster = load_cluster(HOMELAB, [*LOCAL, *overrides])
    files = render_cluster(cluster)["main"].files
    conf = tmp_path / "nginx.conf"
    conf.write_text(files["/srv/aistack/stacks/proxy/nginx.conf"].content)
    return conf


def test_rendered_nginx_passes_nginx_t(tmp_path):
    assert shutil.which("nginx"), "nginx is installed by scripts/bootstrap.sh"
    conf = nginx_conf(tmp_path)
    result = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_broken_nginx_is_caught_by_nginx_t(tmp_path):
    conf = nginx_conf(tmp_path)
    conf.write_text(conf.read_text().replace("proxy_read_timeout", "proxy_read_timeoutt"))
    result = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode != 0


def test_streaming_defaults_and_timeouts_follow_the_model(tmp_path):
    text = nginx_conf(tmp_path).read_text()
    for line in ("proxy_buffering off;", "proxy_cache off;", "proxy_read_timeout 300s;", "proxy_send_timeout 300s;",
                 "keepalive 128;", "client_max_body_size 64m;", "proxy_http_version 1.1;", 'proxy_set_header Connection "";'):
        assert line in text
    scaled = nginx_conf(tmp_path, ["timeouts.nginx_s=7", "timeouts.webui_client_s=5", "timeouts.gateway_s=5", "timeouts.backend_s=5"]).read_text()
    assert "proxy_read_timeout 7s;" in scaled


@pytest.mark.parametrize("path", ["/v1/", "/"])
def test_routes_to_gateway_and_webui(tmp_path, path):
    text = nginx_conf(tmp_path).read_text()
    assert f"location {path} {{" in text
