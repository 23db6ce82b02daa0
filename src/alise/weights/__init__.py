"""Foreign weights into :class:`alise.model.network.ALISE`: the authors' published encoders.

``onnx``       reads an ONNX export's initialisers under the exporting modules' names (the one
               definition of the export's tensor prefixes)
``malice``     the rename rules from those names to ours, the MALICE configuration, loading
               through the strict check of :func:`alise.model.directory.check_state`
``published``  infers the architecture variant from the tensors and builds the model
               (:func:`~alise.weights.published.import_onnx`, ``alise import-onnx``)
"""
