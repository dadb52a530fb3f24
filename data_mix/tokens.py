"""Tokens per sample: text tokens plus vision tokens, as a Qwen-VL processor would produce them.

Vision tokens: an image of h x w pixels is resized by Qwen's smart-resize (each side a multiple
of ``data.vision_token_pixels``, area within [image_min_pixels, image_max_pixels]) and costs
(h'/f) * (w'/f) tokens (f = patch 14 x merge 2 = 28 for Qwen2/2.5-VL); a video of T frames costs
ceil(T / 2) (temporal patch 2) x the tokens of one frame (area within video_max_pixels).

Text tokens: the tokenizer's chat template when a tokenizer (or processor) is given. Without one,
an estimate: ceil(UTF-8 bytes / 4) per text part, + 5 per message (role markers) and + 2 per image
or video (vision start/end). English BPE text averages 3.5-4.5 bytes per token, so the estimate is
within about 20% for English; both recipes of a token-matched comparison use the same counter.
"""

from __future__ import annotations

import math

from data_mix.media import image_size, video_file_info

TEMPORAL_PATCH = 2
BYTES_PER_TOKEN = 4


def smart_resize(h: int, w: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(h', w'): multiples of ``factor`` near (h, w) with min_pixels <= h'*w' <= max_pixels."""
    hb = max(factor, round(h / factor) * factor)
    wb = max(factor, round(w / factor) * factor)
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def image_tokens(w: int, h: int, data) -> int:
    f = data.vision_token_pixels
    hb, wb = smart_resize(h, w, f, data.image_min_pixels, data.image_max_pixels)
    return (hb // f) * (wb // f)


def video_tokens(n_frames: int, w: int, h: int, data) -> int:
    f = data.vision_token_pixels
    hb, wb = smart_resize(h, w, f, data.image_min_pixels, data.video_max_pixels)
    return math.ceil(n_frames / TEMPORAL_PATCH) * (hb // f) * (wb // f)


class TokenCounter:
    """Counts a sample's tokens; ``vision`` opens image headers (raises BadSample for bad media)."""

    def __init__(self, data, tokenizer=None):
        self.data = data
        tok = getattr(tokenizer, "tokenizer", tokenizer)  # a processor carries its tokenizer
        self.tokenizer = tok
        self.uses_template = bool(tok is not None and getattr(tok, "chat_template", None))
        self.kind = "estimate" if tok is None else ("chat_template" if self.uses_template else "tokenizer")

    def vision(self, sample) -> int:
        n = 0
        for img in sample.images:
            n += image_tokens(*image_size(img, sample.file, sample.row), self.data)
        for video in sample.videos:
            if isinstance(video, str):
                frames, w, h = video_file_info(video, self.data, sample.file, sample.row)
            else:
                frames = len(video)
                w, h = image_size(video[0], sample.file, sample.row)
            n += video_tokens(frames, w, h, self.data)
        return n

    def text(self, sample) -> int:
        n_media = len(sample.images) + len(sample.videos)
        if self.tokenizer is None:
            n = 5 * len(sample.messages) + 2 * n_media
            for m in sample.messages:
                for p in m["content"]:
                    if p.get("type") == "text":
                        n += math.ceil(len(p["text"].encode("utf-8")) / BYTES_PER_TOKEN)
            return n
        if self.uses_template:
            prompt_only = sample.messages[-1]["role"] != "assistant"
            out = self.tokenizer.apply_chat_template(sample.messages, tokenize=True,
                                                     add_generation_prompt=prompt_only)
            ids = out["input_ids"] if hasattr(out, "keys") else out
            return len(ids) - n_media  # one pad placeholder per image/video is replaced by vision tokens
        text = "\n".join(p.get("text", "") for m in sample.messages for p in m["content"])
        return len(self.tokenizer(text)["input_ids"]) + 5 * len(sample.messages) + 2 * n_media

    def __call__(self, sample) -> int:
        return self.text(sample) + self.vision(sample)
