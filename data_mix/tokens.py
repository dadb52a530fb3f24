"""Tokens per sample, counted as training encodes them.

With the model's processor (what training uses; ``kind`` ``processor``) the count is exact: the chat template
rendered with the template arguments of the model family (thinking off, as training, GRPO and evaluation render)
and tokenized by the processor (placeholders unexpanded; ``text``), plus for every image / video what the
processor's own expansion of its placeholder adds (``vision``). That expansion
is measured by running the processor on the bare placeholder with a blank image of the size the sample's image
has after loading (``data_mix.media.loaded_image_size``: ``data.image_max_pixels`` applied as ``load_media``
applies it), or blank frames for a video, with the same call arguments as the encoder
(``processor_media_kwargs``). So patch size, merge size, the processor's own pixel limits, video timestamps and
any family-specific expansion come from the processor itself; the result is cached per size.

Without a processor, an estimate (``kind`` ``tokenizer`` / ``estimate``): text from the tokenizer's chat
template (or ceil(UTF-8 bytes / 4) per text part + 5 per message + 2 per image or video), vision tokens as
(pixels after loading) / ``ESTIMATE_PIXELS_PER_TOKEN`` with a temporal patch of 2 for videos. English BPE text
averages 3.5-4.5 bytes per token; both recipes of a token-matched comparison must use the same counter.
"""

from __future__ import annotations

import math

from data_mix.media import fit_within, image_size, loaded_image_size, processor_media_kwargs, video_file_info

BYTES_PER_TOKEN = 4
ESTIMATE_PIXELS_PER_TOKEN = 28 * 28
"""Estimate only, when no processor is given (project choice: the 28 px token side of Qwen2/2.5-VL, the paper's
model); exact counts come from the processor."""
ESTIMATE_TEMPORAL_PATCH = 2


def template_kwargs(processor) -> dict:
    """The chat-template arguments training renders with: those of the model family recorded on the processor by
    the model loader (``model_family``, train/models: e.g. Qwen3.5's ``enable_thinking=False``; thinking off as
    in training, GRPO and evaluation); none for a processor or tokenizer without a recorded family."""
    family = getattr(processor, "model_family", None)
    return dict(family.chat_template_kwargs(thinking=False)) if family is not None else {}


class ProcessorVisionCounter:
    """Vision tokens of one image / video of a given size, through the processor (cached per size)."""

    def __init__(self, processor, data, chat_template_kwargs: dict | None = None):
        self.processor = processor
        self.data = data
        self.tokenizer = processor.tokenizer
        self.template_kwargs = template_kwargs(processor) if chat_template_kwargs is None else chat_template_kwargs
        self.cache: dict[tuple, int] = {}

    def text(self, messages: list, add_generation_prompt: bool) -> int:
        """Tokens of the rendered chat template as the processor tokenizes it (placeholders not expanded), with
        the template arguments training renders with."""
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                  **self.template_kwargs)
        return len(self.tokenizer(text)["input_ids"])  # as the processor's own tokenizer call

    def _expansion(self, placeholder: str, images: list, videos: list) -> int:
        base = len(self.tokenizer(placeholder)["input_ids"])
        out = self.processor(text=[placeholder], **processor_media_kwargs(images, videos, self.data.video_fps))
        return len(out["input_ids"][0]) - base

    def image(self, w: int, h: int) -> int:
        """Tokens an image of (w, h) adds beyond its placeholder's own tokens."""
        key = ("image", w, h)
        if key not in self.cache:
            from PIL import Image

            self.cache[key] = self._expansion(self.processor.image_token, [Image.new("RGB", (w, h))], [])
        return self.cache[key]

    def video(self, frames: int, w: int, h: int) -> int:
        key = ("video", frames, w, h)
        if key not in self.cache:
            from PIL import Image

            blank = Image.new("RGB", (w, h))
            self.cache[key] = self._expansion(self.processor.video_token, [], [[blank] * frames])
        return self.cache[key]


def estimate_image_tokens(w: int, h: int) -> int:
    return max(1, math.ceil(w * h / ESTIMATE_PIXELS_PER_TOKEN))


class TokenCounter:
    """Counts a sample's tokens; ``vision`` opens image headers (raises BadSample for bad media).

    ``tokenizer``: the model's processor (exact counts), a bare tokenizer, or None (estimates).
    ``chat_template_kwargs``: the template arguments training renders with (default: the processor's recorded
    family's, :func:`template_kwargs`)."""

    def __init__(self, data, tokenizer=None, chat_template_kwargs: dict | None = None):
        self.data = data
        has_vision = tokenizer is not None and hasattr(tokenizer, "image_processor")
        self.template_kwargs = template_kwargs(tokenizer) if chat_template_kwargs is None else chat_template_kwargs
        self.vision_counter = ProcessorVisionCounter(tokenizer, data, self.template_kwargs) if has_vision else None
        tok = getattr(tokenizer, "tokenizer", tokenizer)  # a processor carries its tokenizer
        self.tokenizer = tok
        self.uses_template = bool(tok is not None and getattr(tok, "chat_template", None))
        if self.vision_counter is not None and not self.uses_template:
            raise ValueError("a processor whose tokenizer has no chat template cannot count tokens exactly")
        self.kind = ("processor" if self.vision_counter is not None else
                     "estimate" if tok is None else ("chat_template" if self.uses_template else "tokenizer"))

    def media_sizes(self, sample) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
        """Images as (w, h) and videos as (frames, w, h), as ``load_media`` will give them to the processor."""
        images = [loaded_image_size(p, self.data, sample.file, sample.row) for p in sample.images]
        videos = []
        for video in sample.videos:
            if isinstance(video, str):
                frames, w, h = video_file_info(video, self.data, sample.file, sample.row)
                w, h = fit_within(w, h, self.data.video_max_pixels)
            else:
                frames = len(video)
                w, h = loaded_image_size(video[0], self.data, sample.file, sample.row, self.data.video_max_pixels)
            videos.append((frames, w, h))
        return images, videos

    def vision(self, sample) -> int:
        """Vision tokens: with a processor, the tokens the processor's expansion of the placeholders adds; else
        the estimate."""
        images, videos = self.media_sizes(sample)
        vc = self.vision_counter
        if vc is not None:
            return sum(vc.image(w, h) for w, h in images) + sum(vc.video(*v) for v in videos)
        n = sum(estimate_image_tokens(w, h) for w, h in images)
        n += sum(math.ceil(f / ESTIMATE_TEMPORAL_PATCH) * estimate_image_tokens(w, h) for f, w, h in videos)
        return n

    def text(self, sample) -> int:
        n_media = len(sample.images) + len(sample.videos)
        prompt_only = sample.messages[-1]["role"] != "assistant"
        if self.vision_counter is not None:
            return self.vision_counter.text(sample.messages, prompt_only)
        if self.tokenizer is None:
            n = 5 * len(sample.messages) + 2 * n_media
            for m in sample.messages:
                for p in m["content"]:
                    if p.get("type") == "text":
                        n += math.ceil(len(p["text"].encode("utf-8")) / BYTES_PER_TOKEN)
            return n
        if self.uses_template:
            out = self.tokenizer.apply_chat_template(sample.messages, tokenize=True,
                                                     add_generation_prompt=prompt_only, **self.template_kwargs)
            ids = out["input_ids"] if hasattr(out, "keys") else out
            return len(ids) - n_media  # one placeholder per image/video is replaced by vision tokens
        text = "\n".join(p.get("text", "") for m in sample.messages for p in m["content"])
        return len(self.tokenizer(text)["input_ids"]) + 5 * len(sample.messages) + 2 * n_media

    def __call__(self, sample) -> int:
        return self.text(sample) + self.vision(sample)


__all__ = ["TokenCounter", "ProcessorVisionCounter", "image_size"]
