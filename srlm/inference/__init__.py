"""Decoders: how srlm answers a question (the `inference/` config group).

``direct`` asks the model once; best_of_n, self_consistency, cove, s2a and bsm are the
System-2 decoders (docs/system2.md). A new decoder is one class decorated with
``@register_decoder("name", schema=...)`` in a module of this package plus
``conf/inference/<name>.yaml``.
"""

from srlm.inference.base import Decoded, Decoder, Query, decoder_names, get_decoder

__all__ = ["Decoded", "Decoder", "Query", "decoder_names", "get_decoder"]
