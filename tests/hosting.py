"""A local stand-in for the weight hosts: an HTTP server on 127.0.0.1 that
serves checkpoints made here in the reference format (torch.save'd state
dicts named as the PyTorch releases were, safetensors as on the Hugging Face
Hub), and can fail as real hosts do."""

import hashlib
import http.server
import os
import threading

import numpy as np
import torch
from safetensors.numpy import save_file
from timm_reference import state_dict_arrays


class Server:
    """Serves files from a folder; `broken` maps a path to "503" or "cut"."""

    def __init__(self, root):
        self.root, self.broken, self.requests = root, {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                mode = server.broken.get(self.path)
                if mode == "503":
                    self.send_error(503, "Service Unavailable")
                    return
                path = os.path.join(server.root, self.path.lstrip("/"))
                if not os.path.exists(path):
                    self.send_error(404)
                    return
                data = open(path, "rb").read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # "cut": the connection drops halfway through the body
                self.wfile.write(data[: len(data) // 2] if mode == "cut" else data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def host_pth(server, model, stem):
    """torch.save a state dict (of `model`, or `model` itself: a dict) as the
    PyTorch releases did, named <stem>-<first 8 hex digits of its SHA-256>.pth."""
    tmp = os.path.join(server.root, "tmp.pth")
    torch.save(model if isinstance(model, dict) else model.state_dict(), tmp)
    digest = hashlib.sha256(open(tmp, "rb").read()).hexdigest()[:8]
    name = f"{stem}-{digest}.pth"
    os.replace(tmp, os.path.join(server.root, name))
    return name


def host_safetensors(server, model, folder):
    os.makedirs(os.path.join(server.root, folder), exist_ok=True)
    name = f"{folder}/model.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in state_dict_arrays(model).items()},
              os.path.join(server.root, name))
    return name


def cached_files(cache):
    """The files in the cache folder `cache` (a pathlib.Path)."""
    return sorted(os.listdir(cache)) if cache.exists() else []
