"""The KV cache of a decoder as an op kind the cost model prices: "kv_cache" (default unit "digital").

A decoder's attention reads the keys and values of every earlier token from a cache and writes the new
tokens' keys and values into it. On a chip that is data movement through memory, paid per value. One
op of kind "kv_cache" is one such step for one tensor (K or V) of one layer:

* ``in_shape`` = (heads, new, head_dim): the new tokens' keys (or values), written to the cache;
* ``out_shape`` = (heads, cached + new, head_dim): every key attention reads, the ``cached`` earlier
  ones read back from the cache;
* ``elements`` = heads x (cached + new) x head_dim = values read (cached) + values written (new).

It is priced as the embedding table lookup is (``registry.EVENTS["embedding"]``: one digital "lookup",
a word read from an SRAM table, per value; a write is priced as a read), plus the buffer and wire
traffic every digital op pays for its input and output (``cost.events``): no constant of its own.
Prefill of L tokens writes heads x L x head_dim values per tensor and layer; a decode step after L
tokens reads heads x L x head_dim and writes heads x head_dim.

The torch side: ``cimkit.workload.zoo_nn.KVCache`` (a module holding the cached keys) is matched by the
op rule registered here, so ``Workload.from_torch`` of a decoder built with it lists the same op.
Importing this module registers the kind and the rule, once (the "digital" unit runs it as its default
unit: ``UnitType.kinds``); ``cimkit.workload`` imports it with the zoo.
"""

from __future__ import annotations

from .registry import EVENTS, KINDS, OP_RULES, digital_op, register_kind, register_op

KIND = "kv_cache"


def kv_cache_events(op) -> dict[str, float]:
    """One table-word access per value read from or written to the cache (``op.elements``), counted with
    the embedding lookup's formula (``EVENTS["embedding"]``)."""
    e = int(op.elements)
    return {k: float(v) for k, v in EVENTS["embedding"](e, e, e).items() if v}


if KIND not in KINDS:
    register_kind(
        KIND,
        default_unit="digital",
        events=kv_cache_events,
        description="a decoder's key or value cache: values read (cached tokens) and written (new tokens), "
        "one memory word each",
    )
if f"{KIND}:{KIND}" not in OP_RULES:
    register_op(KIND, KIND, modules=("cimkit.workload.zoo_nn.KVCache",))


def kv_cache_op(name: str, heads: int, cached: int, new: int, head_dim: int):
    """The cache step of one K or V tensor: ``new`` tokens' ``heads`` x ``head_dim`` values written after
    ``cached`` earlier tokens' values read (the shapes ``zoo_nn.KVCache`` takes and returns, batch 1)."""
    x, y = (1, heads, new, head_dim), (1, heads, cached + new, head_dim)
    return digital_op(name, OP_RULES.get(f"{KIND}:{KIND}"), x, y)


__all__ = ["KIND", "kv_cache_events", "kv_cache_op"]
