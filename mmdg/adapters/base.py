"""The common contract of every adapter.

Two kinds exist, told apart by the class attribute ``target_kind``:

* ``'linear'`` (:class:`AdapterLinear`): a small module around one frozen ``nn.Linear``. It changes the
  layer's effective weight ``W`` (``d_out x d_in``) and keeps its bias. Operations: ``forward``,
  ``merged_weight`` (the plain weight it is equivalent to), ``trainable_parameters`` and ``aux_loss``
  (an optional regulariser, ``None`` by default). All of them are mergeable.
* ``'block'`` (:class:`BlockAdapter`): a module around one whole frozen transformer block that refines
  the block's output. Not mergeable into plain weights.

Fused projections (timm's ``qkv``, a ``3C x C`` Linear) are handled as ``num_slices`` independent
matrices stacked along the output dimension, because the q, k and v matrices of the reference recipes
are separate layers with their own adapters.

dtype policy: adapter parameters are created in float32 when the wrapped layer is float16 / bfloat16
(float32 master copies, as mixed-precision training keeps them), in the layer's dtype otherwise; the
adapter's computation runs in the parameters' dtype and its result is cast back to the input's dtype.
Casting the adapted model (``model.half()``, ``model.to(torch.bfloat16)``, what FSDP / DeepSpeed mixed
precision do to parameters) casts the masters with it: the adapters then run in that dtype.

A constructor may change only the module it wraps (``inject_adapters`` validates everything before it
builds, so a failing config leaves the model untouched).
"""
from __future__ import annotations

import inspect
import math
from typing import Callable, Dict, Iterator, Optional

import torch
from torch import nn

#: Registered adapter classes by name, in registration order; filled by :func:`register_adapter`.
ADAPTERS: Dict[str, type] = {}

HALF_DTYPES = (torch.float16, torch.bfloat16)


def register_adapter(name: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` available to ``inject_adapters`` as ``dict(type=name)``.

        >>> @register_adapter('MyMethod')
        ... class MyLinear(AdapterLinear): ...
    """
    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, (AdapterLinear, BlockAdapter))):
            raise TypeError(f'register_adapter({name!r}) needs a subclass of AdapterLinear or BlockAdapter, '
                            f'got {cls!r}')
        for key in list(ADAPTERS):
            if key.lower() != name.lower():
                continue
            # re-registering the same class (a module reload) is harmless; two classes under one name are not
            if ADAPTERS[key].__qualname__ != cls.__qualname__:
                raise KeyError(f'adapter name {name!r} is already registered for {ADAPTERS[key].__qualname__}')
            del ADAPTERS[key]
        ADAPTERS[name] = cls
        return cls
    return wrap


class AdapterContract:
    """What ``inject_adapters`` knows about a method, declared once with its default here; a method class
    overrides only what differs (both :class:`AdapterLinear` and :class:`BlockAdapter` carry it)."""

    #: What the injector wraps: one ``nn.Linear`` per matched name (``'linear'``) or whole blocks (``'block'``).
    target_kind: str = 'linear'
    #: Whether the adapter folds into a plain ``nn.Linear`` (``merge_adapters``).
    mergeable: bool = True
    #: The method's config fields and their defaults (``inject_adapters`` fills missing fields from these):
    #: read from the constructor's keyword defaults, where each is written once (a class whose constructor
    #: takes ``**method_kwargs`` declares the dict itself).
    defaults: Dict = {}
    #: Whether the recipe trains the bias of an adapted layer.
    train_bias: bool = False
    #: Name under which ``aux_loss()`` reaches the training loss dict (``None``: no auxiliary loss).
    aux_loss_name: Optional[str] = None
    #: Whether the initialisation reads the wrapped pre-trained weights (an SVD): inject after loading them;
    #: on the meta device such a method gets shapes only.
    needs_weights: bool = False
    #: Whether sibling layers reading one input share one branch (the injector passes ``tie_to``).
    shares_input_branch: bool = False
    #: Which linears of a block a config without ``targets`` adapts: ``'all'``, ``'input'`` (those reading
    #: the normalised input) or ``'attention'`` (see ``mmdg.adapters.families``).
    default_targets: str = 'all'

    #: Constructor arguments that the injector passes and that are not config fields.
    _INJECTOR_ARGS = ('self', 'base', 'block', 'num_slices', 'train_bias', 'name', 'shared', 'tie_to', 'index',
                      'num_blocks')

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if 'defaults' not in cls.__dict__:
            params = inspect.signature(cls.__init__).parameters.values()
            cls.defaults = {p.name: p.default for p in params if p.name not in cls._INJECTOR_ARGS
                            and p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty}

    @staticmethod
    def make_shared(cfg: Dict, like: torch.Tensor):
        """Parameters shared by all adapters of one injection (built once, passed as ``shared``); ``None``:
        the method has none."""
        return None


def master_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype adapter parameters are kept in for a wrapped layer of ``dtype``."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def check_alpha(alpha: float, owner: str) -> None:
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f'{owner}: alpha must be a finite number > 0 (the scale is alpha / r), got {alpha!r}')


class AdapterLinear(AdapterContract, nn.Module):
    """Base class. Subclasses implement :meth:`delta` (the adapter's additive output) and
    :meth:`delta_weight`, or override :meth:`forward` / :meth:`merged_weight` for other forms."""

    target_kind = 'linear'
    mergeable = True

    def __init__(self, base: nn.Linear, num_slices: int = 1, train_bias: Optional[bool] = None,
                 name: str = ''):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f'{type(self).__name__} wraps an nn.Linear, got {type(base).__name__} at {name!r}')
        if base.out_features % num_slices:
            raise ValueError(f'{name!r}: {base.out_features} outputs cannot be split into {num_slices} slices')
        self.base = base
        self.num_slices = num_slices
        self.layer_name = name
        self.bias_trainable = self.train_bias if train_bias is None else bool(train_bias)
        #: parameters trained with this layer that live outside it (EVA's separate q/v biases)
        self.outside_parameters = []
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(self.bias_trainable)

    @property
    def param_dtype(self) -> torch.dtype:
        """dtype of the adapter's own parameters, the one its computation runs in: float32 masters for a
        half-precision layer when built, and whatever a later ``model.half()`` / ``model.to(dtype)`` made of
        them (that cast moves the masters too, so a cast model runs its adapters in the cast dtype)."""
        own = next((p for n, p in self.named_parameters() if not n.startswith('base.')), None)
        return own.dtype if own is not None else master_dtype(self.base.weight.dtype)

    def param_kwargs(self) -> Dict:
        return dict(device=self.base.weight.device, dtype=self.param_dtype)

    # --- shapes -----------------------------------------------------------------------------------
    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def slice_out(self) -> int:
        """Output size of one slice (``d_out`` when the layer is not fused)."""
        return self.base.out_features // self.num_slices

    def check_rank(self, r: int) -> None:
        limit = min(self.slice_out, self.in_features)
        if not 1 <= r <= limit:
            raise ValueError(f'{type(self).__name__} rank r={r} is invalid for {self.layer_name!r}: its '
                             f'{self.slice_out}x{self.in_features} matrices allow 1 <= r <= {limit}')

    def slices(self, weight: torch.Tensor):
        """The ``num_slices`` matrices (views) of a ``d_out x d_in`` weight."""
        return weight.view(self.num_slices, self.slice_out, weight.shape[1])

    # --- the four operations ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.delta(x.to(self.param_dtype)).to(x.dtype)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def delta_weight(self) -> torch.Tensor:
        """``W' - W`` as a ``d_out x d_in`` matrix."""
        raise NotImplementedError

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        # summed in float32 at least, then rounded once to the layer's dtype
        w = self.base.weight
        return (w.to(master_dtype(w.dtype)) + self.delta_weight().to(master_dtype(w.dtype))).to(w.dtype)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters this adapter trains (shared parameters included, once per adapter)."""
        return (p for p in (*self.parameters(), *self.outside_parameters) if p.requires_grad)

    def aux_loss(self) -> Optional[torch.Tensor]:
        return None

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing what this adapter computes."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        linear.weight.copy_(self.merged_weight())
        if self.base.bias is not None:
            linear.bias.copy_(self.base.bias)
        linear.requires_grad_(False)
        return linear

    def extra_repr(self) -> str:
        return f'in={self.in_features}, out={self.out_features}, slices={self.num_slices}'


def block_diag_slices(b: torch.Tensor) -> torch.Tensor:
    """``(S, m, r)`` -> block-diagonal ``(S*m, S*r)``; the identity for ``S == 1``."""
    return b[0] if b.shape[0] == 1 else torch.block_diag(*b.unbind(0))


class LowRankLinear(AdapterLinear):
    """``W' = W + s * B A`` per slice, with ``A`` (``S, r, d_in``) and ``B`` (``S, d_out/S, r``).

    The shared machinery of LoRA, PiSSA and SoRA, which differ only in how ``A``, ``B`` and the frozen
    residual are initialised.
    """

    def __init__(self, base: nn.Linear, r: int = 16, alpha: float = 16, num_slices: int = 1,
                 train_bias: Optional[bool] = None, name: str = ''):
        super().__init__(base, num_slices=num_slices, train_bias=train_bias, name=name)
        self.check_rank(r)
        check_alpha(alpha, f'{type(self).__name__} at {name!r}')
        self.r = r
        self.scale = alpha / r
        self.lora_A = nn.Parameter(torch.zeros(num_slices, r, self.in_features, **self.param_kwargs()))
        self.lora_B = nn.Parameter(torch.zeros(num_slices, self.slice_out, r, **self.param_kwargs()))

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lora_A.reshape(-1, self.in_features)
        return (x @ a.t()) @ block_diag_slices(self.lora_B).t() * self.scale

    def delta_weight(self) -> torch.Tensor:
        return block_diag_slices(self.lora_B) @ self.lora_A.reshape(-1, self.in_features) * self.scale

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, r={self.r}, scale={self.scale:g}'


class BlockAdapter(AdapterContract, nn.Module):
    """Base class of adapters around one whole transformer block: ``refine(block(x, ...))``.

    ``inject_adapters`` builds one per block of the range with ``index`` (the block's position),
    ``num_blocks`` (the model's depth), ``name`` and ``shared`` (from the class's optional
    ``make_shared(method_kwargs, like)``, called once per injection). Subclasses implement
    :meth:`refine`; the wrapped block stays frozen. Block adapters are not mergeable.
    """

    target_kind = 'block'
    mergeable = False

    def __init__(self, block: nn.Module, index: int, num_blocks: int, name: str = '', shared=None,
                 **method_kwargs):
        super().__init__()
        if method_kwargs:
            raise TypeError(f'{type(self).__name__} got unexpected arguments {sorted(method_kwargs)}')
        if not 0 <= index < num_blocks:
            raise ValueError(f'{type(self).__name__}: block index {index} outside [0, {num_blocks})')
        self.block = block
        self.index = index
        self.num_blocks = num_blocks
        self.layer_name = name
        block.requires_grad_(False)

    def forward(self, x: torch.Tensor, *args, **kwargs):
        return self.refine(self.block(x, *args, **kwargs))

    def refine(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters this adapter trains (shared parameters included, once per adapter)."""
        return (p for p in self.parameters() if p.requires_grad)

    def aux_loss(self) -> Optional[torch.Tensor]:
        return None

    def extra_repr(self) -> str:
        return f'index={self.index}, num_blocks={self.num_blocks}'
