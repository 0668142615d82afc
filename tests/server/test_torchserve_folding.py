"""A stock vision handler's network with its batch norms folded into its convolutions: kept once its first
batch answers as the loaded network does, the loaded network kept otherwise."""

from __future__ import annotations

import logging

import pytest
import torch

from modelplane.runtimes.torchserve.folding import FoldedNetwork


class Handler:
    """What FoldedNetwork needs of a TorchServe handler: its `model`, and `inference` calling it."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def inference(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(batch)


def conv_bn_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, groups=8),
        torch.nn.BatchNorm2d(8),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    with torch.no_grad():  # statistics of their own, as a trained network has
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return net.eval()


class BranchesOnItsInput(torch.nn.Module):
    """A network torch.fx cannot trace: its code branches on a tensor's value."""

    def __init__(self):
        super().__init__()
        self.net = conv_bn_net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) if x.sum() > 0 else -self.net(x)


class AddsNoise(torch.nn.Module):
    """A network whose answers differ from one call to the next."""

    def __init__(self):
        super().__init__()
        self.net = conv_bn_net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + torch.rand(1)


def test_the_folded_network_is_kept_once_its_first_batch_answers_the_same(caplog):
    caplog.set_level(logging.INFO, "modelplane.server")
    loaded = conv_bn_net()
    handler = Handler(loaded)
    network = FoldedNetwork(handler, "m")
    batch = torch.rand(4, 3, 16, 16)
    expected = loaded(batch).detach()
    assert torch.equal(network.infer(handler.inference, batch), expected)
    assert handler.model is not loaded
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in handler.model.modules())
    assert "m: 2 batch norms folded" in caplog.text
    again = torch.rand(2, 3, 16, 16)
    assert torch.allclose(network.infer(handler.inference, again), loaded(again), atol=1e-5)


@pytest.mark.parametrize(
    "model",
    [
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()).eval(),  # no batch norm
        conv_bn_net().train(),
        conv_bn_net().double(),
        torch.jit.script(conv_bn_net()),
        BranchesOnItsInput().eval(),
    ],
    ids=["no-batch-norm", "training", "float64", "torchscript", "untraceable"],
)
def test_a_network_that_cannot_be_folded_is_served_as_loaded(model):
    handler = Handler(model)
    network = FoldedNetwork(handler, "m")
    batch = torch.rand(2, 3, 16, 16, dtype=next(model.parameters()).dtype)
    network.infer(handler.inference, batch)
    assert handler.model is model


def test_a_folded_network_that_answers_otherwise_is_dropped(caplog):
    caplog.set_level(logging.INFO, "modelplane.server")
    model = AddsNoise().eval()
    handler = Handler(model)
    network = FoldedNetwork(handler, "m")
    network.infer(handler.inference, torch.rand(2, 3, 16, 16))
    assert handler.model is model
    assert "served as loaded" in caplog.text


def test_the_network_s_own_failure_is_raised_and_the_check_waits_for_a_batch_it_takes():
    loaded = conv_bn_net()
    handler = Handler(loaded)
    network = FoldedNetwork(handler, "m")
    with pytest.raises(RuntimeError):
        network.infer(handler.inference, torch.rand(2, 5, 16, 16))  # 5 channels where it takes 3
    assert handler.model is loaded
    network.infer(handler.inference, torch.rand(2, 3, 16, 16))
    assert handler.model is not loaded
