"""ColourNet: the small convolutional network the image-classifier examples serve.

Its weights are set by hand (`examples/pytorch_models.py`) rather than learned, so that the examples
answer something a person can check without downloading a trained model: the first layer copies each
colour channel (and its negation), the pooling averages them over the picture, and the last layer
weighs the averages into one score per class.
"""

import torch
from torch import nn


class ColourNet(nn.Module):
    def __init__(self, classes: int = 2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, kernel_size=3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.classifier = nn.Linear(6, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(images), 1))
