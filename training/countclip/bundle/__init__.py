"""What ships: the model bundle the service loads, and the tools that make and read one.

    manifest.py     the bundle's layout, manifest and integrity check (`verify_bundle`)
    export.py       `countclip export`: a model (countclip.model) to ONNX towers + tokenizer + manifest
    quantize.py     int8 towers, kept only where they pass parity with fp32
    onnx_model.py   `BundleModel`: a verified bundle behind the adapter interface, through onnxruntime;
                    `load_any(spec)`: a bundle, else `countclip.model.factory.load_model(spec)`
    embed.py        `countclip embed`: a gallery's embeddings with a bundle, for POST /v1/index/import
    __main__.py     `python -m countclip.bundle DIR`: verify a bundle from the shell

Built on countclip.model (export loads models; onnx_model preprocesses as they do); imported by
the evaluators, never the other way round.
"""
