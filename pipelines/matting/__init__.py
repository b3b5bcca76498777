"""Matting, beside the families: the model that cuts a generated image's subject out for
`background: "transparent"`. It is not a family (no request names it, it makes no images of its
own): the worker runs it after the generator, on the same device, once per job on all its images.
Which models exist is the contract's (pipelines/contract/matting.py); `matte.py` loads and runs one.
"""
