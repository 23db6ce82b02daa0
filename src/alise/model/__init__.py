"""The ALISE model and everything it knows about itself.

==================  ==============================================================================
module              what it holds
==================  ==============================================================================
``config``          :class:`~alise.model.config.ALISEConfig`, the architecture, and the facts derived
                    from it (``multiple``, ``uses_group_norm``)
``nn``              the building blocks: UNet, temporal Transformer, projector, decoder, latent projector
``losses``          the pre-training losses (Eq. 2, 5–7, 10–11)
``network``         :class:`~alise.model.network.ALISE` (encode / decode / pretrain_step)
``presets``         named configurations with their recipe: ``paper``, ``cpu-small``, ``tiny``
``directory``       the model directory format (``config.json`` + ``model.safetensors``): write, read, check
``io``              :func:`~alise.model.io.load` / :func:`~alise.model.io.load_model` (a directory or a
                    built-in name), :func:`~alise.model.io.reseal`
``builtin``         the pre-trained models shipped inside the package (``alise models``)
==================  ==============================================================================

Foreign weights (the authors' ONNX exports) are read by :mod:`alise.weights` into this model.
"""
