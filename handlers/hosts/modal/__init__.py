"""The Modal host, in one room: everything that is Modal-specific except the deployed file itself.

- `deployment`: the `IMAGEGEN_MODAL_*` settings (checked offline; `scripts/deploy.py` reads them too),
- `gpu`: what one model's GPU container runs (`GpuModel`), and the weights download,
- `engine`: the web front's Engine (`ModalEngine`), which sends Jobs to the GPU classes,
- `volume`: the temp-image store on a Modal Volume, shared by the front's containers,
- `web`: the web front's app, and the cleanup of expired images.

`modal_app.py` (at the top level, what `modal deploy` reads) declares the images, Volumes, Secret,
App and the decorated classes and functions; their bodies call in here. The front imports this
package too, and its image has no torch: the model side is imported inside `gpu`'s functions
only, and nothing here imports `modal` at import time but `gpu` (`engine` and `volume` import
on a machine without Modal).
"""
