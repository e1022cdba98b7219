"""Build a tiny CLIP (random weights) saved in sentence-transformers format.

It goes through the same loading code as a real CLIP (``SentenceTransformer(path)``), so the
joint-space path is exercised end to end without downloading anything.
"""

from __future__ import annotations

from pathlib import Path

WORDS = ["the", "a", "of", "and", "to", "in", "is", "chart", "cat", "red", "blue", "page",
         "text", "photo", "image", "screenshot", "invoice"]


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            if pair not in merges:
                merges.append(pair)
            if pair[0] + pair[1] not in vocab:
                vocab.append(pair[0] + pair[1])
            parts = [pair[0] + pair[1], *parts[2:]]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def build_tiny_clip(root: Path, projection_dim: int = 16) -> Path:
    """Save a random tiny CLIP under ``root/st`` and return that directory."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(0)
    vocab, merges = _vocab_and_merges()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
            "eos_token_id": eos, "bos_token_id": vocab["<|startoftext|>"], "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
        },
        projection_dim=projection_dim,
    )
    hf_dir = root / "hf"
    CLIPModel(config).save_pretrained(hf_dir)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(hf_dir)
    st_dir = root / "st"
    SentenceTransformer(modules=[Transformer(str(hf_dir))], device="cpu").save(str(st_dir))
    return st_dir


def build_tiny_clip_hub_layout(root: Path, projection_dim: int = 16) -> Path:
    """The same tiny CLIP in the layout of the hub's ``sentence-transformers/clip-ViT-B-32``.

    That repo predates sentence-transformers v5: ``modules.json`` names the legacy
    ``sentence_transformers.models.CLIPModel`` module stored in ``0_CLIPModel/`` with a
    ``preprocessor_config.json`` and slow-tokenizer files (``vocab.json``, ``merges.txt``).
    """
    import json

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab, merges = _vocab_and_merges()
    module_dir = root / "0_CLIPModel"
    module_dir.mkdir(parents=True, exist_ok=True)
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
            "eos_token_id": eos, "bos_token_id": vocab["<|startoftext|>"], "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
        },
        projection_dim=projection_dim,
    )
    CLIPModel(config).save_pretrained(module_dir)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(module_dir)
    CLIPTokenizer(vocab=vocab, merges=merges).save_pretrained(module_dir)
    (module_dir / "vocab.json").write_text(json.dumps(vocab))
    (module_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    )
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_CLIPModel",
         "type": "sentence_transformers.models.CLIPModel"}
    ]))
    return root
