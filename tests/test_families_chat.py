"""Chat templates through the family seam: every rendering passes the family's template arguments, so a Qwen3.5
generation prompt (evaluation, GRPO on TRL, the token counts) closes its think block as its training samples were
rendered, and lmms-eval inputs carry the wrapper's own system turn and template arguments.

Qwen3.5's template thinks by default (its generation prompt opens ``<think>\\n``); SFT trains an answer without
reasoning as ``<think>\\n\\n</think>\\n\\n`` + answer, so a prompt that asks for no think block ends the same way
(``enable_thinking=False``, ``ModelFamily.chat_template_kwargs(thinking=False)``), while a prompt that asks for
``<think>`` (auto_think, think) opens the native block, which every trained answer continues (docs/MODELS.md).
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest
from test_families2 import load2

from data_mix.config import DataConfig
from data_mix.sample import Sample

REPO = Path(__file__).resolve().parents[1]
CLOSED_THINK = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
OPEN_THINK = "<|im_start|>assistant\n<think>\n"
SCANNED = ("train", "data_mix", "eval_hooks", "launch", "rewards", "bench", "sweeps")
# who may call apply_chat_template: the seam itself, and the token counter, which is handed the family's arguments
# (data_mix imports nothing of train/; the model loader records the family on the processor)
RENDERERS = ("train/models/", "data_mix/tokens.py")


def test_every_chat_template_call_goes_through_the_seam():
    found = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith(RENDERERS):
                continue
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "apply_chat_template":
                    found.append(f"{rel}:{node.lineno}")
    assert not found, f"render through train.models.render_chat / ModelFamily.render_chat: {found}"


@pytest.fixture(scope="module")
def prompt_sample(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("chat")
    Image.new("RGB", (96, 64), (200, 40, 40)).save(root / "red.png")
    user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which colour is the square?"}]}
    return Sample(id="p0", source="bench", messages=[user], images=[str(root / "red.png")], file="bench.jsonl",
                  row=0)


def test_qwen3_5_generation_prompts_close_the_think_block_as_training_rendered(prompt_sample):
    """tiny-qwen3.5: the evaluation prompt and the GRPO prompt (as TRL renders it with the backend's
    ``chat_template_kwargs``) end with the empty think block SFT trained; the training text of the same question
    starts with the evaluation prompt; the GRPO prompt's counted length (data_mix's counter and the GRPO prompt
    check) equals TRL's encoding; the thinking-on rendering differs (the check can fail)."""
    from PIL import Image

    from data_mix.tokens import TokenCounter
    from eval_hooks.generation import build_inputs
    from train.collate import SampleEncoder
    from train.grpo.dataset import PromptLengthCounter
    from train.grpo.prompts import build_prompt
    from train.grpo.trl_backend import trl_chat_template_kwargs

    processor = load2("tiny-qwen3.5").processor
    tok = processor.tokenizer
    data = DataConfig()

    # evaluation (eval.inputs=training)
    batch = build_inputs(processor, [prompt_sample], data)
    eval_text = tok.decode(batch["input_ids"][0])
    assert eval_text.endswith(CLOSED_THINK), eval_text[-60:]

    # SFT renders the answered question as that prompt + the answer
    trained = Sample(id="t0", source="sft", messages=[*prompt_sample.messages,
                                                      {"role": "assistant", "content": [{"type": "text", "text": "red"}]}],
                     images=prompt_sample.images)
    train_text = tok.decode(SampleEncoder(processor, data).encode(trained).input_ids)
    assert train_text == eval_text + "red<|im_end|>\n"

    # GRPO: the prompt check's text and count, TRL's own rendering with the backend's arguments, data_mix's count
    prompt = build_prompt(prompt_sample, "{question}\nAnswer inside <answer> </answer>.")
    counter = PromptLengthCounter(processor)
    assert counter.text(prompt).endswith(CLOSED_THINK)
    with Image.open(prompt_sample.images[0]) as im:
        image = im.convert("RGB")
    counted, image_tokens = counter.count(prompt, [image])
    kwargs = trl_chat_template_kwargs(processor)
    assert kwargs == {"enable_thinking": False}
    trl_prompt = copy.deepcopy(prompt)
    trl_prompt[0]["content"][0] = {"type": "image", "image": image}  # as TRL puts the row's image into its part
    trl = processor.apply_chat_template(conversation=[trl_prompt], add_generation_prompt=True, tokenize=True,
                                        return_dict=True, **kwargs)
    trl_ids = trl["input_ids"][0]
    assert tok.decode(trl_ids).endswith(CLOSED_THINK)
    assert len(trl_ids) == counted and image_tokens > 0
    mixed = Sample(id="p1", source="rl", messages=prompt, images=prompt_sample.images)
    assert TokenCounter(data, processor)(mixed) == counted

    # the negative control: thinking on opens the block and has another length
    thinking = processor.apply_chat_template(conversation=[trl_prompt], add_generation_prompt=True, tokenize=True,
                                             return_dict=True, enable_thinking=True)
    assert tok.decode(thinking["input_ids"][0]).endswith(OPEN_THINK)
    assert len(thinking["input_ids"][0]) != counted


def test_a_family_without_a_thinking_switch_renders_unchanged(prompt_sample):
    """tiny-internvl has no template arguments: the seam renders exactly what the bare template gives."""
    from train.models import family_for_processor, render_chat

    processor = load2("tiny-internvl").processor
    assert family_for_processor(processor).chat_template_kwargs(thinking=False) == {}
    plain = processor.apply_chat_template(prompt_sample.messages, tokenize=False, add_generation_prompt=True)
    assert render_chat(processor, prompt_sample.messages, add_generation_prompt=True) == plain


def test_qwen3_5_think_prompts_open_the_native_block_that_every_sft_sample_continues(prompt_sample):
    """A prompt that asks for ``<think>`` (the GRPO auto_think / think templates, an evaluation asked through them)
    renders with thinking on: tiny-qwen3.5's prompt opens ``<think>\\n``, which starts the training text of the same
    question with reasoning and without; thinking off (the negative control, the old rendering) closes the block
    empty, which only the answer without reasoning continues. The completion is read after the open block."""
    from eval_hooks.generation import build_inputs
    from rewards.completion import parse_completion
    from train.collate import SampleEncoder
    from train.config import PromptTemplates
    from train.grpo.dataset import PromptLengthCounter
    from train.grpo.prompts import build_prompt, prompt_thinking
    from train.grpo.trl_backend import trl_chat_template_kwargs
    from train.models import family_for_processor, thinking_for
    from train.recipe import load_recipe

    processor = load2("tiny-qwen3.5").processor
    tok, data, templates = processor.tokenizer, DataConfig(), PromptTemplates()
    assert thinking_for(templates.auto_think) and thinking_for(templates.think) and not thinking_for(templates.no_think)
    assert prompt_thinking(load_recipe("quickstart_grpo").grpo)
    assert not prompt_thinking(load_recipe("quickstart_grpo", ["grpo.prompt_mode=no_think"]).grpo)
    assert trl_chat_template_kwargs(processor, True) == {"enable_thinking": True}
    family = family_for_processor(processor)
    assert family.think_prefix(processor, True) == "<think>\n" and family.think_prefix(processor, False) == ""

    prompt = build_prompt(prompt_sample, templates.auto_think)
    on, off = PromptLengthCounter(processor, thinking=True), PromptLengthCounter(processor, thinking=False)
    assert on.text(prompt).endswith(OPEN_THINK) and off.text(prompt).endswith(CLOSED_THINK)
    # the evaluation asked through the auto_think template (eval.prompt_template) renders the same prompt
    grpo_text = tok.decode(build_inputs(processor, [prompt_sample], data, template=templates.auto_think)["input_ids"][0])
    assert grpo_text.endswith(OPEN_THINK)
    assert tok.decode(build_inputs(processor, [prompt_sample], data)["input_ids"][0]).endswith(CLOSED_THINK)

    def trained(target: str) -> str:
        sample = Sample(id="t", source="sft", images=prompt_sample.images,
                        messages=[*prompt, {"role": "assistant", "content": [{"type": "text", "text": target}]}])
        return tok.decode(SampleEncoder(processor, data).encode(sample).input_ids)

    closed = grpo_text[:-len(OPEN_THINK)] + CLOSED_THINK
    reasoned, direct = trained("<think>I compare.</think><answer>A</answer>"), trained("<answer>A</answer>")
    assert reasoned.startswith(grpo_text) and direct.startswith(grpo_text)
    assert direct.startswith(closed) and not reasoned.startswith(closed)  # why thinking off never thought
    end = "<|im_end|>\n"
    opened = family.think_prefix(processor, True)
    completion = reasoned[len(grpo_text):-len(end)]
    assert completion == "I compare.\n</think>\n\n<answer>A</answer>"
    assert parse_completion(completion, opened).has_think and not parse_completion(completion).has_think
    no_think = parse_completion(direct[len(grpo_text):-len(end)], opened)
    assert not no_think.has_think and no_think.answer == "A" and no_think.think == "\n\n"
