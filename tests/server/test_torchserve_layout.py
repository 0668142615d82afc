"""The layout a stock vision handler's batch reaches the network in: channels-last on a CPU, the standard
layout for a network that needs it."""

from __future__ import annotations

import logging

import pytest
import torch

from modelplane.runtimes.torchserve.layout import BatchLayout


def conv_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    ).eval()


class ViewsItsInput(torch.nn.Module):
    """A network written for the standard layout: `view` refuses a channels-last tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], -1).sum(dim=1)


def test_a_batch_of_pictures_is_arranged_channels_last_and_answers_the_same():
    batch = torch.rand(4, 3, 16, 16)
    layout = BatchLayout("m")
    arranged = layout.arrange(batch)
    assert arranged.is_contiguous(memory_format=torch.channels_last) and not arranged.is_contiguous()
    net = conv_net()
    with torch.no_grad():
        assert torch.allclose(layout.infer(net, arranged), net(batch), atol=1e-6)
    assert layout.channels_last


def test_what_is_not_a_batch_of_pictures_is_left_as_it_is():
    layout = BatchLayout("m")
    for value in (torch.rand(4, 16), torch.randint(0, 9, (2, 3, 4, 4)), [1, 2], None):
        assert layout.arrange(value) is value


def test_a_network_that_needs_the_standard_layout_is_answered_and_kept_to_it(caplog):
    caplog.set_level(logging.INFO, "modelplane.server")
    batch = torch.rand(2, 3, 4, 4)
    layout = BatchLayout("viewer")
    net = ViewsItsInput()
    results = layout.infer(net, layout.arrange(batch))
    assert torch.allclose(results, batch.reshape(2, -1).sum(dim=1))
    assert not layout.channels_last
    assert "viewer" in caplog.text
    assert layout.arrange(batch) is batch


def test_a_network_s_own_failure_is_raised_and_changes_nothing():
    def fails(batch: torch.Tensor) -> torch.Tensor:
        raise ValueError("the network's own failure")

    layout = BatchLayout("m")
    with pytest.raises(ValueError, match="own failure"):
        layout.infer(fails, layout.arrange(torch.rand(2, 3, 4, 4)))
    assert layout.channels_last
