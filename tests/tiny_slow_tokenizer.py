"""A slow (pure-Python) tokenizer loaded as remote code, like InternLM2's sentencepiece tokenizer: words, single
spaces and characters; transformers gives it no offsets mapping. Copied into tiny model folders."""
import json
import os
import re

from transformers import PreTrainedTokenizer

PIECE = re.compile(r"\w+|\s|[^\w\s]")


class TinySlowTokenizer(PreTrainedTokenizer):
    """Known words are one token, anything else one token per character (<unk> for unknown characters)."""

    vocab_files_names = {"vocab_file": "vocab.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, **kwargs):
        with open(vocab_file, encoding="utf-8") as handle:
            self.vocab = json.load(handle)
        self.inverse = {index: token for token, index in self.vocab.items()}
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def get_vocab(self):
        return {**self.vocab, **self.added_tokens_encoder}

    def _tokenize(self, text, **kwargs):
        tokens = []
        for piece in PIECE.findall(text):
            tokens += [piece] if piece in self.vocab else list(piece)
        return tokens

    def _convert_token_to_id(self, token):
        return self.vocab.get(token, self.vocab["<unk>"])

    def _convert_id_to_token(self, index):
        return self.inverse.get(index, "<unk>")

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "vocab.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.vocab, handle)
        return (path,)
