"""Hub models against the same weights given with --weights: load time and parity.

For each of the project's architectures timm publishes, synthetic weights are written once in
torchvision's layout (.pth, .safetensors) and once as a hand-laid Hub cache in timm's layout
(config.json + model.safetensors); then it times reading each file and ``get_model`` on each
route, and checks that the Hub model's logits and a layer's input gradient equal the
``--weights`` model's bit for bit. Offline: nothing is downloaded.

    python benchmarks/bench_hub.py [--nets resnet50,inception_v3,vgg16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ["HF_HUB_OFFLINE"] = "1"
HERE = Path(__file__).resolve().parent


def best_of(repeat: int, fn, *args, **kwargs) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nets", default="resnet50,inception_v3,vgg16")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_hub_"))
    os.environ["HF_HOME"] = str(root / "hf")
    sys.path.insert(0, str(HERE.parent / "tests"))
    from safetensors.torch import save_file
    from test_hub import FakeHub, timm_config, timm_state  # the tests' synthetic layouts

    from inceptionism.models import get_model, get_spec
    from inceptionism.models.blocks import init_random
    from inceptionism.models.weights import read_safetensors, read_state_dict

    hub = FakeHub(root / "hf" / "hub")
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size} px")
    print("net            file MB  read .pth  read .st  get_model --weights  get_model hf:  equal")
    for name in args.nets.split(","):
        g = torch.Generator().manual_seed(0)
        own = init_random(get_spec(name).build(), g).state_dict()
        own = {k: v for k, v in own.items() if not k.startswith("AuxLogits.")}
        own = {k: v.contiguous() for k, v in own.items() if "num_batches" not in k}
        pth, st = root / f"{name}.pth", root / f"{name}.safetensors"
        torch.save(own, pth)
        save_file(own, str(st))
        repo = f"timm/{name}.tv_in1k"
        arch_cfg = timm_config(name, get_spec(name).mean, get_spec(name).std)
        hub.lay(repo, {"config.json": arch_cfg, "model.safetensors": timm_state(name)})
        t_pth = best_of(args.repeat, read_state_dict, pth)
        t_st = best_of(args.repeat, read_safetensors, st)
        t_local = best_of(args.repeat, get_model, name, weights=st)
        t_hub = best_of(args.repeat, get_model, f"hf:{repo}")
        a, b = get_model(name, weights=pth), get_model(f"hf:{repo}")
        x = torch.rand(1, 3, args.size, args.size, generator=g)
        layer = dict(a.spec.default_layers)
        deepest = list(layer)[-1]
        grads: list[torch.Tensor] = []
        for m in (a, b):
            xi = x.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(m.activations(xi, [deepest])[deepest].square().mean(), xi)
            grads.append(grad)
        with torch.no_grad():
            same = torch.equal(a(x), b(x)) and torch.equal(grads[0], grads[1])
        mb = st.stat().st_size / 1e6
        print(f"{name:14} {mb:7.0f}  {t_pth:8.2f}s  {t_st:7.2f}s  {t_local:18.2f}s  "
              f"{t_hub:12.2f}s  {same}")  # fmt: skip


if __name__ == "__main__":
    main()
