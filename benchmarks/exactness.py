"""Are an image's numbers independent of what it is batched with? (what the unit cache relies on)

    python benchmarks/exactness.py [--arch resnet50] [--size 224] [--batch 64] [--device auto]

At one batch shape and one memory layout, computes logits and input gradients of images placed
at other positions among other companions (and zero padding) and counts the images whose bits
differ from their first computation. 0 means cached per-image results are exact on this
device (docs/architecture.md, "Units and the cache").
"""

from __future__ import annotations

import argparse

from workloads import make_images, make_model  # first: sets the process up as the CLI does

# isort: split
import torch

from lwise_build.device import pick_device
from lwise_build.models.inference import padded


def grads(model: torch.nn.Module, x: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    xb = padded(x, size).requires_grad_(True)
    out = model(xb)
    (g,) = torch.autograd.grad(out[:, 0].sum(), xb)
    return out.detach()[: len(x)], g[: len(x)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="smallcnn")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    model = make_model(args.arch, device, args.channels).eval().requires_grad_(False)
    pool = make_images(args.batch * 2, args.size, args.channels).to(device)
    ref_out, ref_g = grads(model, pool[: args.batch], args.batch)
    bad = total = 0
    gen = torch.Generator().manual_seed(0)
    for _ in range(args.trials):
        k = int(torch.randint(1, args.batch + 1, (1,), generator=gen))
        pick = torch.randperm(args.batch, generator=gen)[:k]
        mix = torch.cat([pool[pick], pool[args.batch:][: args.batch - k]])[torch.randperm(args.batch, generator=gen)]
        out, g = grads(model, mix[: max(k, 1) + (args.batch - k) // 2], args.batch)  # companions + padding
        for i, img in enumerate(mix[: len(out)]):
            hit = (pool[: args.batch] == img).flatten(1).all(1).nonzero()
            if len(hit):
                j = int(hit[0])
                total += 1
                bad += int(not (torch.equal(out[i], ref_out[j]) and torch.equal(g[i], ref_g[j])))
    print(f"{device}: {args.arch} {args.size}px batch {args.batch}: {bad} of {total} images differ "
          f"when batched with others (0 = exact per image)")


if __name__ == "__main__":
    main()
