"""Models: the registry (registry.py: `register_model`, options, inspection), the zoo it holds (zoo.py: mlp,
cnn, resnet9, resnet18, ImageNet ResNet18 / MobileNetV2, with the hand-written ResNets in resnet.py), the
`custom` CNN builder with its analytic summary (builder.py, layers.py), looking models up and building them by
name (catalog.py) and code generation (codegen.py, codegen_models.py: the plain PyTorch of any config).
"""
