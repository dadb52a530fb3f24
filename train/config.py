"""The typed recipe tree: one dataclass per section, a docstring per field.

Sections owned by other packages (``data``, ``mix``, ``reward``, ``eval``) are defined there and
assembled here into :class:`Recipe`. What a type cannot say (allowed values, ranges, provenance, what each GRPO backend does with a key) is declared
in :mod:`train.keys` (the key table). Values that depend on others are filled in one place,
:func:`train.recipe.finalize`, never by ``x or default`` (an explicit 0 stays 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from data_mix.config import DataConfig, MixConfig
from eval_hooks.config import EvalConfig
from rewards.config import RewardConfig


@dataclass
class FreezeConfig:
    """Which module groups are frozen (see the per-architecture table in train/module_groups.py)."""

    vision: bool = True
    """Freeze the vision encoder (SpatialScore's SFT setting; the SpatialTree paper does not say)."""
    projector: bool = False
    """Freeze the vision-language projector (Qwen's patch merger)."""
    llm: bool = False
    """Freeze the language model (and its head)."""


@dataclass
class LoraConfig:
    """LoRA adapters on the language model through peft."""

    enabled: bool = False
    """Train LoRA adapters instead of the full language model."""
    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """Scaling numerator (lora_alpha)."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Linear layers of the language model that get adapters."""
    merge_on_save: bool = True
    """Merge adapters into the weights of the final checkpoint (a plain HF directory)."""


@dataclass
class ModelConfig:
    """The model to train."""

    name_or_path: str = "tiny-qwen2.5-vl"
    """Hub id, local directory, or ``tiny-qwen2.5-vl`` (the embedded tiny model, built on first use)."""
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    """Frozen module groups."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA on the language model."""
    attn_implementation: str = "auto"
    """``auto`` (flash_attention_2 when installed and on CUDA, else sdpa), ``sdpa``, ``eager`` or ``flash_attention_2``.
    ``flash_varlen_standin``: transformers' flash code path with CPU kernels (train/flash_standin.py; tests)."""
    dtype: str = "auto"
    """``auto`` (bf16 on GPU, fp32 on CPU), ``bf16``, ``fp16`` or ``fp32``."""
    trainable_fp32: bool | None = None
    """fp32 master weights for the trainable parameters (train/precision.py): null (auto) = on when the weights load
    in bf16/fp16 and ``train.deepspeed`` is null (DeepSpeed keeps its own), so AdamW's small updates are not rounded
    away; frozen parameters stay in ``dtype``. true/false force it."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    trust_remote_code: bool = False
    """Allow model code from the checkpoint directory (off unless the recipe turns it on)."""


@dataclass
class OptimConfig:
    """Optimizer and schedule (AdamW)."""

    lr: float = 1e-5
    """Learning rate of the language model."""
    projector_lr: float | None = None
    """Learning rate of the projector; None = ``lr``."""
    vision_lr: float | None = None
    """Learning rate of the vision encoder when it is trained; None = ``lr``."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon (the denominator's floor)."""
    warmup_ratio: float = 0.03
    """Share of the steps spent warming the learning rate up linearly, in [0, 1) (the Trainer gets it as a float
    warmup_steps, which transformers reads as a share when below 1)."""
    scheduler: str = "cosine"
    """``cosine``, ``linear`` or ``constant``."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 = no clipping)."""


@dataclass
class TrainConfig:
    """The training loop, checkpoints and logging."""

    output_dir: str = "runs/${name}"
    """Run directory: resolved recipe, metrics, checkpoints, eval results."""
    max_steps: int = 1000
    """Optimizer steps; -1 = run the mix's budget to its end."""
    per_device_batch_size: int = 8
    """Samples per device per micro-step."""
    grad_accum: int = 1
    """Micro-steps per optimizer step."""
    seed: int = 0
    """Seed of model init extras, data order and dropout."""
    deepspeed: str | None = None
    """null, ``zero2``, ``zero3`` (configs shipped in recipes/deepspeed/) or a JSON path."""
    packing: bool = False
    """Pack several samples into one sequence (no cross-sample attention)."""
    packing_max_length: int | None = None
    """Length of a packed sequence; None = ``data.max_length``."""
    save_steps: int = 500
    """Save a checkpoint every N steps (0 = only at the end)."""
    save_total_limit: int = 2
    """Checkpoints kept (the newest ones); 0 = keep all."""
    resume: str = "auto"
    """``auto``: continue the run in output_dir from its newest complete checkpoint when its recipe matches, refuse
    (exit 2, naming the differing keys) when it does not; ``never``: move an existing run aside to
    ``<output_dir>.prev-<time>`` and start over; or a checkpoint path (train/rerun.py). No rerun deletes a run."""
    logging_steps: int = 10
    """Log metrics every N steps."""
    report_to: list[str] = field(default_factory=lambda: ["jsonl", "tensorboard"])
    """Where metrics go: ``jsonl`` (run_dir/metrics.jsonl), ``tensorboard``, ``wandb`` (offline works without login)."""
    num_threads: int | None = None
    """torch CPU threads per process; None = leave torch's default."""
    device: str = "auto"
    """``auto`` (cuda when available), ``cpu`` or ``cuda``."""
    collective_timeout_s: int = 1800
    """Seconds a process waits in a collective (all-reduce, all-gather, barrier) for the other processes before
    it fails. A node that dies without closing its connections (power loss, a cut network) would otherwise hang
    the other nodes for this long; keep it above the longest gap between two collectives (a rank-0 save, an
    evaluation on rank 0). 1800 = torch's default."""


@dataclass
class PromptTemplates:
    """How a question is asked in each ``grpo.prompt_mode``: ``{question}`` is replaced by the sample's question
    text (the last text part of its user turn). Image placeholders stay where the sample put them; the processor's
    chat template turns them into the model's vision tokens."""

    think: str = ("{question}\nThink about the question step by step inside <think> </think>, "
                  "then give the final answer inside <answer> </answer>.")
    """``think`` (the paper's RL@think): always reason, then answer."""
    no_think: str = "{question}\nAnswer directly inside <answer> </answer>, without explaining."
    """``no_think``: answer directly."""
    auto_think: str = ("{question}\nIf the question needs reasoning, think inside <think> </think> first; "
                       "if it can be answered at a glance, answer directly. Give the final answer inside "
                       "<answer> </answer>.")
    """``auto_think`` (the paper's RL@auto-think): the model may think; the rewards shape when (``reward.levels``)."""


@dataclass
class VerlConfig:
    """The verl backend (``grpo.backend=verl``): its own environment, cluster shape and rollout engine."""

    python: str = ".venv-verl/bin/python"
    """Python of verl's environment (made by scripts/verl/setup_env.sh); relative to the repository root."""
    nnodes: int = 1
    """Nodes of the Ray cluster used by the run."""
    gpus_per_node: int = 8
    """GPUs per node."""
    rollout: str = "vllm"
    """Rollout engine: ``vllm`` or ``sglang`` (both GPU only)."""
    rollout_tp: int = 1
    """Tensor-parallel size of the rollout engine."""
    gpu_memory_utilization: float = 0.6
    """Share of GPU memory the rollout engine may take."""
    train_batch_size: int | None = None
    """Prompts per verl step; None = ``train.per_device_batch_size * train.grad_accum * nnodes * gpus_per_node``
    divided by ``grpo.num_generations`` (the same number of completions per step as the TRL backend)."""
    ppo_micro_batch_size_per_gpu: int = 2
    """Micro batch of the actor update and log-prob passes, per GPU."""
    val_fraction: float = 0.0
    """Share of the prompts held out as verl's validation set (0 = validate on a copy of 16 training prompts)."""
    overrides: list[str] = field(default_factory=list)
    """Extra verl Hydra overrides appended to the command, e.g. ["trainer.total_epochs=2"]."""


@dataclass
class GRPOConfig:
    """GRPO settings (launch/grpo.py). Data: the recipe's ``mix`` section picks the prompt sources
    (bench-format registry sources such as rl_l1..rl_l4); ``levels`` filters them."""

    backend: str = "trl"
    """``trl`` (one node, TRL's GRPOTrainer) or ``verl`` (Ray, many nodes)."""
    prompt_mode: str = "auto_think"
    """Prompt template: ``think``, ``no_think`` or ``auto_think`` (texts in ``templates``)."""
    templates: PromptTemplates = field(default_factory=PromptTemplates)
    """Prompt text per mode."""
    num_generations: int = 8
    """Completions per prompt (the group size). ``train.per_device_batch_size`` counts completions and
    (times processes and ``steps_per_generation``) must be a multiple of it."""
    loss_type: str = "dapo"
    """``dapo``, ``grpo``, ``dr_grpo`` or ``bnpo`` (TRL's loss normalisations)."""
    beta: float = 0.0
    """KL coefficient against the reference model (0 = no reference model is loaded)."""
    epsilon: float = 0.2
    """Lower clipping range."""
    epsilon_high: float | None = None
    """Upper clipping range (DAPO's clip-higher, e.g. 0.28); None = ``epsilon``."""
    temperature: float = 1.0
    """Sampling temperature of rollouts."""
    top_p: float = 1.0
    """Nucleus sampling of rollouts (1 = off)."""
    max_prompt_length: int = 1024
    """Longest prompt in tokens (template and image tokens included); longer prompts are rejected at load time
    (an error naming file:row, or a counted skip with ``data.on_bad_sample=skip``), never truncated."""
    max_completion_length: int = 256
    """Longest completion in tokens."""
    mask_truncated_completions: bool = True
    """Exclude truncated completions from the loss (DAPO)."""
    scale_rewards: str = "group"
    """``group``, ``batch`` or ``none``: how advantages are scaled by reward std (``none`` = Dr. GRPO)."""
    num_iterations: int = 1
    """Policy updates per generated batch (GRPO's mu)."""
    steps_per_generation: int | None = None
    """Optimizer micro-steps served by one generation round; None = ``train.grad_accum``."""
    use_vllm: bool = True
    """Roll out with vLLM when it is installed and a GPU is present (``vllm_mode``); otherwise HF generate.
    The choice and its reason are logged. False = always HF generate."""
    vllm_mode: str = "colocate"
    """``colocate`` (vLLM inside the training processes) or ``server`` (a separate ``trl vllm-serve``)."""
    vllm_gpu_memory_utilization: float = 0.3
    """Share of GPU memory vLLM may take when colocated."""
    levels: list[str] = field(default_factory=list)
    """Train only on these levels (e.g. ["L1"] for L1 RL@think); empty = every level the mix yields."""
    log_completions: bool = False
    """Print a sample of prompts/completions/rewards at each logging step (and a wandb table)."""
    ray_address: str | None = None
    """verl backend: an existing Ray cluster's address (``auto`` or host:port); None = start a local one."""
    verl: VerlConfig = field(default_factory=VerlConfig)
    """verl backend settings."""


@dataclass
class Recipe:
    """A whole recipe. ``bases`` are merged in order below the recipe's own keys."""

    name: str = "unnamed"
    """Run name (defaults to the recipe's file name)."""
    description: str = ""
    """One line on what the recipe is for."""
    bases: list[str] = field(default_factory=list)
    """Recipes merged first, in order (later ones win, the recipe itself wins over all)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
