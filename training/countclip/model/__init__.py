"""CLIP behind one interface (`ClipAdapter`): what the trainer, the evaluators and the exporter use.

    base.py               the interface, the tokenizer assets, model metadata on disk; no backend
    preprocess.py         `PreprocessConfig` and the image preprocessing the service reproduces
    hf_clip.py            transformers `CLIPModel` (hub ids, local directories, `random:ARCH`)
    open_clip_adapter.py  open_clip (`open_clip:ARCH/PRETRAINED`, `hf-hub:ORG/REPO`; optional package)
    conv_clip.py          the small convolutional CLIP of the synthetic world (`random:small-conv-64`)
    factory.py            `load_model(spec)`, `create_model(arch)`: the only module that imports backends

A new backend is one module beside these, built on base.py, and one branch in factory.py.
This file imports nothing, so `from countclip.model.preprocess import ...` loads no backend.
"""
