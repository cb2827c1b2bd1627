"""torchvision.models' classification networks that train on a CPU in seconds."""
from .lenet import LeNet
from .resnet import BasicBlock, ResNet, resnet18, resnet34, resnet_small

__all__ = ["BasicBlock", "LeNet", "ResNet", "resnet18", "resnet34", "resnet_small"]
